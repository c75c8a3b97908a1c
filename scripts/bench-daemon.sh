#!/usr/bin/env bash
# recurd's figures beside PyTorch, in one run (LSTM 2x256, vocab 65: the committed Shakespeare
# model, and a random model of the same shape for the in-process engine):
#   1. the engine stepping 1000 streams in process vs the PyTorch peer's 1000-stream batched step,
#      alternating ROUNDS times;
#   2. one client over the socket, one character per feed: round-trip p50/p99;
#   3. 1000 concurrent clients over the socket: tokens/s, errors, disconnects, as a share of (1);
#   4. (2) again with a state store, --durability batched and strict (state under $TMPDIR).
#   scripts/bench-daemon.sh [ROUNDS (default 3)]
# Needs ../shared/peers and a venv with torch (see scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
peer_dir=${PEER_DIR:-../shared/peers}
py=${PEER_PYTHON:-$HOME/.venv-peers/bin/python}
ulimit -n 4096
swift build -c release --product recur-bench >/dev/null
swift build -c release --product recurd >/dev/null
bin=$(swift build -c release --show-bin-path)
out=$(mktemp)
for i in $(seq "$rounds"); do
  echo "{\"who\":\"recur\",\"r\":$("$bin/recur-bench" --only engine --batch 1000)}" | tee -a "$out" >&2
  echo "{\"who\":\"torch\",\"r\":$("$py" "$peer_dir/torch_rnn_bench.py" --cell lstm --hidden 256 --layers 2 --vocab 65)}" | tee -a "$out" >&2
done
dir=$(mktemp -d)
sock=$dir/recurd.sock
"$bin/recurd" --model samples/shakespeare-lstm.safetensors --socket "$sock" --max-connections 2000 --log-level warning &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir" "$out"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
echo "{\"who\":\"socket\",\"r\":$("$bin/recur-bench" --only latency --socket "$sock" --tokens 3000)}" | tee -a "$out" >&2
echo "{\"who\":\"clients\",\"r\":$("$bin/recur-bench" --only clients --socket "$sock" --clients 1000 --feeds 10)}" | tee -a "$out" >&2
# The same one-stream round trip with a state store (docs/ENGINE.md, "Durability"): every feed
# waits for its tokens to be in the write-ahead log before it is stepped and acknowledged.
for durability in batched strict; do
  dsock=$dir/$durability.sock
  "$bin/recurd" --model samples/shakespeare-lstm.safetensors --socket "$dsock" --state-dir "$dir/state-$durability" \
    --durability $durability --log-level warning &
  durable=$!
  for _ in $(seq 100); do [ -S "$dsock" ] && break; sleep 0.1; done
  echo "{\"who\":\"$durability\",\"r\":$("$bin/recur-bench" --only latency --socket "$dsock" --tokens 3000)}" | tee -a "$out" >&2
  kill $durable; wait $durable 2>/dev/null || true
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
eng = st.median(r["r"]["engine_B1000_tokens_per_s"] for r in rows if r["who"] == "recur")
pt = st.median(r["r"]["batched_B1000_tokens_per_s"] for r in rows if r["who"] == "torch")
lat = next(r["r"] for r in rows if r["who"] == "socket")
cl = next(r["r"] for r in rows if r["who"] == "clients")
print(f"engine, 1000 streams (in process)        {eng:10.0f} tokens/s   PyTorch batched B=1000 {pt:10.0f} tokens/s   ratio {eng/pt:.2f}x")
print(f"socket, one stream, 1 char per feed      p50 {lat['socket_feed_1token_p50_us']:.0f} us   p99 {lat['socket_feed_1token_p99_us']:.0f} us   errors {lat['errors']}")
print(f"socket, {cl['clients']} concurrent clients         {cl['clients_tokens_per_s']:10.0f} tokens/s = {cl['clients_tokens_per_s']/eng:.0%} of the engine;"
      f" {cl['clients_tokens']} tokens, errors {cl['clients_errors']}, disconnects {cl['clients_disconnects']}, feed p50 {cl['clients_feed_p50_ms']:.1f} ms")
for d in ("batched", "strict"):
    r = next(r["r"] for r in rows if r["who"] == d)
    print(f"socket, one stream, --durability {d:8s} p50 {r['socket_feed_1token_p50_us']:.0f} us   p99 {r['socket_feed_1token_p99_us']:.0f} us   errors {r['errors']}")
print(f"(engine and PyTorch: medians of {sum(r['who'] == 'recur' for r in rows)} alternating runs each)")
PY
