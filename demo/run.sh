#!/usr/bin/env bash
# make demo: the local emulator (Microsoft identity + Graph + Collective Insights)
# and the collector built by `make build`. The emulator prints what Graph served
# and what Collective Insights accepted as it happens; Ctrl-C stops both and the
# emulator prints a summary table. Collector logs: .demo/collector.log.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR="$PWD/.demo"
rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR"
go build -o "$DEMO_DIR/emulator" ./cmd/emulator

"$DEMO_DIR/emulator" -alerts 300 -lookback 48h -live-interval 10s \
  -ca-file "$DEMO_DIR/ca.pem" -env-file "$DEMO_DIR/emulator.env" &
emulator_pid=$!
collector_pid=""

stop() {
  trap - INT TERM
  if [ -n "$collector_pid" ]; then kill -TERM "$collector_pid" 2>/dev/null || true; wait "$collector_pid" 2>/dev/null || true; fi
  kill -INT "$emulator_pid" 2>/dev/null || true   # SIGINT: the emulator prints its summary table
  wait "$emulator_pid" 2>/dev/null || true
  echo "collector log: $DEMO_DIR/collector.log"
  exit "${1:-0}"
}
trap stop INT TERM

for _ in $(seq 100); do [ -s "$DEMO_DIR/emulator.env" ] && break; sleep 0.1; done
set -a; source "$DEMO_DIR/emulator.env"; set +a
export DEMO_DIR

_build/otelcol-defender-ci --config demo/config.yaml >"$DEMO_DIR/collector.log" 2>&1 &
collector_pid=$!
echo "collector running (pid $collector_pid); Ctrl-C to stop"
wait "$collector_pid" || { echo "collector exited; last lines of its log:"; tail -20 "$DEMO_DIR/collector.log"; stop 1; }
