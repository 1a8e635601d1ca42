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
# The CPU profile the compiler optimises the binary for (profile-guided optimisation, see
# `make pgo-profile`).
PGO         := pgo/default.pgo
SOURCES     := $(shell find receiver exporter internal -name '*.go' -not -name '*_test.go' -not -path 'internal/emulator/*' 2>/dev/null) go.mod go.sum builder-config.yaml $(PGO)

.PHONY: all build image test unit e2e faults deploy-test lint generate demo run check-env bench bench-go bench-e2e bench-ab pgo-profile clean

all: build

$(OCB):
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

build: $(BINARY)

# ocb generates and tidies the distribution; before compiling (with ocb's own flags), its main
# package gets Go's fallback CA roots, so the binary verifies Microsoft's and Recorded Future's
# certificates in a FROM-scratch image with no OS trust store (deploy/Containerfile). The version
# of golang.org/x/crypto/x509roots/fallback is pinned in go.mod.
$(BINARY): $(OCB) $(SOURCES)
	$(OCB) --config builder-config.yaml --skip-compilation
	printf '%s\n' 'package main' '' '// Public CA roots for hosts without a trust store (see the Makefile).' 'import _ "golang.org/x/crypto/x509roots/fallback"' > $(DIST)/roots.go
	cd $(DIST) && $(GO) mod tidy -compat=1.25 && CGO_ENABLED=0 $(GO) build -trimpath -pgo=$(CURDIR)/$(PGO) -o otelcol-defender-ci -ldflags='-s -w' .
	@touch $(BINARY)

# The container image (deploy/Containerfile) from the binary above, built with podman
# (docker works too: CONTAINER=docker). The context is a staging directory holding only
# what the image needs.
IMAGE       ?= otelcol-defender-ci:$(shell sed -n 's/^  version: *//p' builder-config.yaml)
CONTAINER   ?= podman
IMAGE_CTX   := $(DIST)/image

image: $(BINARY)
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/state
	cp $(BINARY) $(IMAGE_CTX)/otelcol-defender-ci
	cp collector-config.yaml $(IMAGE_CTX)/config.yaml
	$(CONTAINER) build -f deploy/Containerfile -t $(IMAGE) \
	  --build-arg VERSION=$(lastword $(subst :, ,$(IMAGE))) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  --build-arg CREATED=$$(git log -1 --format=%cI 2>/dev/null || echo unknown) \
	  $(IMAGE_CTX)

generate:
	$(GO) generate ./...

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/
	cd test/deploy && $(GO) vet ./...

unit:
	$(GO) test -race ./...
	# Shutdown while the pipeline holds a page: a race shows only now and then.
	$(GO) test -race -count=20 -run 'TestShutdownMidPage' ./receiver/m365defenderreceiver/

# End to end: the built collector binary against the in-process emulator.
e2e: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 15m -v -run 'TestEndToEnd' ./test/e2e/

# The time-scaled fault suite (issue 5): faults, crashes, secret hygiene.
faults: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 20m -v -run 'TestFault|TestCrash|TestSecret' ./test/e2e/

# The deployment artifacts (issue 12): Kubernetes manifests, Helm values, systemd unit and
# the examples against the built binary (test/deploy, a module of its own), then the image:
# inspected and its binary run from the exported root file system. Needs podman and
# systemd-analyze (.ci/run installs them).
deploy-test: $(BINARY) image
	cd test/deploy && OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -count=1 -timeout 5m ./...
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) OTELCOL_IMAGE=$(IMAGE) $(GO) test -tags e2e -count=1 -timeout 5m -v -run 'TestImage' ./test/e2e/

test: lint unit e2e faults deploy-test

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

# Sizes and knobs: test/e2e/bench_test.go and docs/benchmarks.md. The 1,000,000-alert size is
# opt-in and never in CI: BENCH_ALERTS=1000000 make bench-e2e (~15 min and ~4 GB here).
bench-e2e: $(BINARY)
	OTELCOL_BINARY=$(CURDIR)/$(BINARY) $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestBench' ./test/e2e/

# Compares two builds: the machine's speed drifts with its neighbours, so only runs minutes
# apart compare; this alternates A and B (collector binaries) ROUNDS times and prints each run's
# TestBench line (its "collector / emulator+test CPU" column is the figure to compare).
ROUNDS ?= 3
bench-ab:
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then echo "usage: make bench-ab A=<binary> B=<binary> [ROUNDS=3] [BENCH_ALERTS=100000]" >&2; exit 2; fi
	@for r in $$(seq $(ROUNDS)); do for b in $(A) $(B); do \
	  line=$$(BENCH_ALERTS=$${BENCH_ALERTS:-100000} OTELCOL_BINARY=$$(realpath $$b) $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestBench$$' ./test/e2e/ \
	    | grep -E '^ *bench_test.go:[0-9]+: \| [0-9]' | sed 's/^ *bench_test.go:[0-9]*: //'); \
	  echo "$$b $$line"; \
	done; done

# Profile-guided optimisation: the compiler inlines and devirtualises what a CPU profile of
# the collector shows hot (3–5 % less CPU per alert, docs/benchmarks.md). The profile is the
# end-to-end benchmark's 100,000-alert backlog; take it again after the hot paths change.
pgo-profile: $(BINARY)
	rm -rf $(DIST)/pgo && mkdir -p $(DIST)/pgo
	BENCH_ALERTS=100000 BENCH_PPROF_DIR=$(CURDIR)/$(DIST)/pgo BENCH_PPROF_SECONDS=14 OTELCOL_BINARY=$(CURDIR)/$(BINARY) \
	  $(GO) test -tags e2e -count=1 -timeout 30m -run 'TestBench$$' ./test/e2e/
	cp $(DIST)/pgo/cpu-100000.pprof $(PGO)

clean:
	rm -rf $(DIST) .demo
