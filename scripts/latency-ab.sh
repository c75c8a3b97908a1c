#!/usr/bin/env bash
# One stream's socket round trip (one character per feed) for two recurd binaries side by side,
# alternating ROUNDS times, so that a change's effect is measured on the same machine state:
#   scripts/latency-ab.sh OLD_RECURD NEW_RECURD [ROUNDS (default 3)]
# Uses the release recur-bench of this checkout and the committed Shakespeare model.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-3}
swift build -c release --product recur-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/recur-bench
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for round in $(seq "$rounds"); do
  for who in old new; do
    binary=${!who}
    sock=$dir/$who-$round.sock
    "$binary" --model samples/shakespeare-lstm.safetensors --socket "$sock" --log-level warning &
    daemon=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    result=$("$bench" --only latency --socket "$sock" --tokens 3000)
    kill "$daemon"; wait "$daemon" 2>/dev/null || true
    python3 - "$round" "$who" "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[3])
p50, p99 = r["socket_feed_1token_p50_us"], r["socket_feed_1token_p99_us"]
print(f"round {sys.argv[1]} {sys.argv[2]:3s}  p50 {p50:6.1f} us  p99 {p99:7.1f} us  errors {r['errors']}")
PY
  done
done
