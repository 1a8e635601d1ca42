# otelcol-defender-ci: Microsoft 365 Defender -> Recorded Future Collective Insights.
# `make demo` and `make test` are the two commands a newcomer needs (README.md).

SHELL       := /bin/bash
GO          ?= go
OCB_VERSION := v0.161.0
TOOLS       := $(CURDIR)/.tools
OCB         := $(TOOLS)/builder
DIST        := _build
BINARY      := $(DIST)/otelcol-defender-ci
# Everything the binary is built from (the emulator is not): a change to any of them rebuilds it.
SOURCES     := $(shell find receiver exporter internal -name '*.go' -not -name '*_test.go' -not -path 'internal/emulator/*' 2>/dev/null) go.mod go.sum builder-config.yaml

.PHONY: all build test unit e2e faults lint generate demo run check-env bench bench-go bench-e2e clean

all: build

$(OCB):
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

build: $(BINARY)

$(BINARY): $(OCB) $(SOURCES)
	$(OCB) --config builder-config.yaml
	@touch $(BINARY)

generate:
	$(GO) generate ./...

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/

unit:
	$(GO) test -race ./...

# End to end: the built collector binary against the in-process emulator.
e2e: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 15m -v -run 'TestEndToEnd' ./test/e2e/

# The time-scaled fault suite (issue 5): faults, crashes, secret hygiene.
faults: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 20m -v -run 'TestFault|TestCrash|TestSecret' ./test/e2e/

test: lint unit e2e faults

demo: $(BINARY)
	./demo/run.sh

# Production: real Microsoft Graph and Recorded Future, secrets from the environment.
# The variables are checked before anything is built.
run: check-env $(BINARY)
	STORAGE_DIR=$${STORAGE_DIR:-./data} $(BINARY) --config collector-config.yaml

check-env:
	@for v in MS_TENANT MS_CLIENT_ID MS_CLIENT_SECRET RF_API_KEY; do \
	  if [ -z "$${!v}" ]; then echo "make run: environment variable $$v is not set (see README.md, 'Running it for real')" >&2; exit 2; fi; \
	done

bench: bench-go bench-e2e

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./receiver/... ./exporter/...

bench-e2e: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestBench' ./test/e2e/

clean:
	rm -rf $(DIST) .demo
