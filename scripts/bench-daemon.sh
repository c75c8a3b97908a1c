#!/usr/bin/env bash
# recurd's figures beside PyTorch, in one run (LSTM 2x256, vocab 65: the committed Shakespeare
# model, and a random model of the same shape for the in-process engine):
#   1. the engine stepping 1000 streams in process at each of PRECISIONS vs the PyTorch peer's
#      (fp32) 1000-stream batched step, alternating ROUNDS times (PyTorch re-measured in this run);
#   2. one client over the socket, one character per feed: round-trip p50/p99;
#   3. 1000 concurrent clients over the socket: tokens/s, errors, disconnects, as a share of (1);
#   4. (2) again with a state store, --durability batched and strict (state under $TMPDIR).
# (2)-(4) run recurd with --precision $PRECISION (environment; default fp32). The report starts with the
# machine (CPU model) and the kernel paths chosen.
#   scripts/bench-daemon.sh [ROUNDS (default 3)] [PRECISIONS (default "fp32 bf16 int8")]
# Needs ../shared/peers and a venv with torch (see scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
precisions=${2:-fp32 bf16 int8}
precision=${PRECISION:-fp32}
case " $precisions " in *" $precision "*) ;; *) precisions="$precisions $precision" ;; esac
peer_dir=${PEER_DIR:-../shared/peers}
py=${PEER_PYTHON:-$HOME/.venv-peers/bin/python}
ulimit -n 4096
swift build -c release --product recur-bench >/dev/null
swift build -c release --product recurd >/dev/null
bin=$(swift build -c release --show-bin-path)
out=$(mktemp)
for i in $(seq "$rounds"); do
  for p in $precisions; do
    echo "{\"who\":\"recur\",\"r\":$("$bin/recur-bench" --only engine --batch 1000 --precision "$p")}" | tee -a "$out" >&2
  done
  echo "{\"who\":\"torch\",\"r\":$("$py" "$peer_dir/torch_rnn_bench.py" --cell lstm --hidden 256 --layers 2 --vocab 65)}" | tee -a "$out" >&2
done
dir=$(mktemp -d)
sock=$dir/recurd.sock
"$bin/recurd" --model samples/shakespeare-lstm.safetensors --socket "$sock" --max-connections 2000 --precision "$precision" --log-level warning &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir" "$out"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
echo "{\"who\":\"socket\",\"r\":$("$bin/recur-bench" --only latency --socket "$sock" --tokens 3000 --precision "$precision")}" | tee -a "$out" >&2
echo "{\"who\":\"clients\",\"r\":$("$bin/recur-bench" --only clients --socket "$sock" --clients 1000 --feeds 10 --precision "$precision")}" | tee -a "$out" >&2
# The same one-stream round trip with a state store (docs/ENGINE.md, "Durability"): every feed
# waits for its tokens to be in the write-ahead log before it is stepped and acknowledged.
for durability in batched strict; do
  dsock=$dir/$durability.sock
  "$bin/recurd" --model samples/shakespeare-lstm.safetensors --socket "$dsock" --state-dir "$dir/state-$durability" \
    --durability $durability --precision "$precision" --log-level warning &
  durable=$!
  for _ in $(seq 100); do [ -S "$dsock" ] && break; sleep 0.1; done
  echo "{\"who\":\"$durability\",\"r\":$("$bin/recur-bench" --only latency --socket "$dsock" --tokens 3000 --precision "$precision")}" | tee -a "$out" >&2
  kill $durable; wait $durable 2>/dev/null || true
done
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
python3 - "$out" "$precision" "$torch_version" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
precision = sys.argv[2]
first = next(r["r"] for r in rows if r["who"] == "recur")
print(f"machine: {first['cpu']}, {first['threads']} threads; kernels: fp32 {first['fp32_path']}, "
      f"bf16/int8 {first['bf16_int8_path']}; PyTorch {sys.argv[3]} (fp32), measured in this run; recurd --precision {precision}")
pt = st.median(r["r"]["batched_B1000_tokens_per_s"] for r in rows if r["who"] == "torch")
for p in dict.fromkeys(r["r"]["precision"] for r in rows if r["who"] == "recur"):
    e = st.median(r["r"]["engine_B1000_tokens_per_s"] for r in rows if r["who"] == "recur" and r["r"]["precision"] == p)
    print(f"engine, 1000 streams (in process), {p:4s}  {e:10.0f} tokens/s   PyTorch batched B=1000 {pt:10.0f} tokens/s   ratio {e/pt:.2f}x")
eng = st.median(r["r"]["engine_B1000_tokens_per_s"] for r in rows if r["who"] == "recur" and r["r"]["precision"] == precision)
lat = next(r["r"] for r in rows if r["who"] == "socket")
cl = next(r["r"] for r in rows if r["who"] == "clients")
print(f"socket, one stream, 1 char per feed      p50 {lat['socket_feed_1token_p50_us']:.0f} us   p99 {lat['socket_feed_1token_p99_us']:.0f} us   errors {lat['errors']}")
print(f"socket, {cl['clients']} concurrent clients         {cl['clients_tokens_per_s']:10.0f} tokens/s = {cl['clients_tokens_per_s']/eng:.0%} of the engine;"
      f" {cl['clients_tokens']} tokens, errors {cl['clients_errors']}, disconnects {cl['clients_disconnects']}, feed p50 {cl['clients_feed_p50_ms']:.1f} ms")
for d in ("batched", "strict"):
    r = next(r["r"] for r in rows if r["who"] == d)
    print(f"socket, one stream, --durability {d:8s} p50 {r['socket_feed_1token_p50_us']:.0f} us   p99 {r['socket_feed_1token_p99_us']:.0f} us   errors {r['errors']}")
print(f"(engine and PyTorch: medians of {sum(r['who'] == 'torch' for r in rows)} alternating runs each; socket rows: recurd --precision {precision})")
PY
