#!/usr/bin/env bash
# The receiver's share of the collector's CPU (docs/benchmarks.md, "The receiver alone"):
# the emulator serves a backlog of N alerts to a collector whose pipeline is the receiver,
# memory_limiter and the debug exporter (no Collective Insights mapping, queue or storage
# writes but the checkpoint). Prints the collector's CPU (utime + stime) per alert once the
# emulator has served every alert and the last page had 2 s to pass through.
# Usage: test/floor/run.sh <collector binary> [N=100000]
set -uo pipefail
bin=$(realpath "$1"); n=${2:-100000}
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill -TERM ${col:-} 2>/dev/null; kill -INT ${emu:-} 2>/dev/null; wait; rm -rf "$work"' EXIT
go build -o "$work/emulator" ./cmd/emulator || exit 1
"$work/emulator" -alerts "$n" -lookback 24h -quiet -summary-interval 1s \
  -ca-file "$work/ca.pem" -env-file "$work/emulator.env" >"$work/emulator.log" 2>&1 &
emu=$!
for _ in $(seq 600); do [ -s "$work/emulator.env" ] && break; sleep 0.2; done
set -a; source "$work/emulator.env"; set +a
DEMO_DIR=$work "$bin" --config test/floor/config.yaml >"$work/collector.log" 2>&1 &
col=$!
until served=$(grep -o 'served [0-9]* alerts' "$work/emulator.log" | tail -1 | tr -dc 0-9) && [ "${served:-0}" -ge "$n" ]; do
  kill -0 $col 2>/dev/null || { echo "collector exited:"; tail "$work/collector.log"; exit 1; }
  sleep 0.2
done
sleep 2
read -r -a st </proc/$col/stat
ticks=$((st[13] + st[14]))
awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$n" -v s="$served" -v b="$(basename "$bin")" \
  'BEGIN { printf "%s: collector CPU %.2f s for %d alerts served (%d in the backlog): %.1f µs per alert\n", b, t/hz, s, n, t/hz*1e6/n }'
