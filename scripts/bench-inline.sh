#!/usr/bin/env bash
# The one-token socket round trip (recur-bench --only latency: one client, one character per
# feed, k 5, TOKENS timed feeds) of recurd with every request handed to the engine thread
# (--inline-turns 0) and with a lone request stepped on its connection's thread (the default),
# at fp32 and bf16, alternating ROUNDS times in one invocation; prints each run and the medians.
#   scripts/bench-inline.sh [ROUNDS (default 5)] [TOKENS (default 3000)]
# Release builds of recurd and recur-bench. docs/ENGINE.md, "Inline turns".
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} tokens=${2:-3000}
swift build -c release --product recur-bench >/dev/null
swift build -c release --product recurd >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d)
daemon=''
trap 'kill $daemon 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
for round in $(seq "$rounds"); do
  for turns in 0 5; do
    for precision in fp32 bf16; do
      sock=$dir/r.sock
      rm -f "$sock"
      "$bin/recurd" --model samples/shakespeare-lstm.safetensors --socket "$sock" --inline-turns "$turns" \
        --precision "$precision" 2>/dev/null &
      daemon=$!
      for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
      result=$("$bin/recur-bench" --only latency --socket "$sock" --tokens "$tokens" --stream bench)
      kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=''
      echo "{\"inline_turns\":$turns,\"precision\":\"$precision\",\"round\":$round,\"r\":$result}" | tee -a "$dir/results" >&2
    done
  done
done
python3 - "$dir/results" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
for precision in ("fp32", "bf16"):
    for turns, what in ((0, "--inline-turns 0 (engine thread)"), (5, "--inline-turns 5 (default)")):
        rs = [r["r"] for r in rows if r["precision"] == precision and r["inline_turns"] == turns]
        p50s = [r["socket_feed_1token_p50_us"] for r in rs]
        print(f"{precision}  {what:34s} p50 {st.median(p50s):6.1f} us   p99 {st.median(r['socket_feed_1token_p99_us'] for r in rs):7.1f} us"
              f"   errors {sum(r['errors'] for r in rs)}   (p50s {', '.join(f'{x:.0f}' for x in p50s)})")
print(f"(medians of {rounds} alternating runs each)".replace("{rounds}", str(len(rows) // 4)))
PY
