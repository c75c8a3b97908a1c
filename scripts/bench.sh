#!/usr/bin/env bash
# recur beside PyTorch on this machine, in one run: both benchmarks alternate ROUNDS times per
# cell so that machine noise hits both alike; medians and ratios are printed at the end.
#   scripts/bench.sh [ROUNDS (default 5)] [CELLS (default "lstm rnn")]
# Needs ../shared/peers (the PyTorch peer) and a venv with torch: PEER_PYTHON, default
# ~/.venv-peers/bin/python (created with `python3 -m venv ~/.venv-peers &&
# ~/.venv-peers/bin/pip install torch numpy safetensors` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cells=${2:-lstm rnn}
peer_dir=${PEER_DIR:-../shared/peers}
py=${PEER_PYTHON:-$HOME/.venv-peers/bin/python}
if [ ! -x "$py" ]; then
  python3 -m venv "$HOME/.venv-peers"
  "$HOME/.venv-peers/bin/pip" install -q torch numpy safetensors
  py=$HOME/.venv-peers/bin/python
fi
swift build -c release --product recur-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/recur-bench
out=$(mktemp)
for cell in $cells; do
  for i in $(seq "$rounds"); do
    echo "{\"who\":\"recur\",\"round\":$i,\"r\":$("$bench" --cell "$cell")}" | tee -a "$out" >&2
    echo "{\"who\":\"torch\",\"round\":$i,\"r\":$("$py" "$peer_dir/torch_rnn_bench.py" --cell "$cell" --hidden 256 --layers 2 --vocab 65)}" | tee -a "$out" >&2
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = [("single_stream_us_per_token", "one stream, us/token (lower is better)", -1),
        ("batched_B1000_tokens_per_s", "1000 streams, tokens/s", 1),
        ("train_tokens_per_s", "training B=32 T=100, tokens/s", 1)]
print(f"{'cell':5} {'measure':40} {'recur':>12} {'pytorch':>12} {'ratio':>8}")
for cell in dict.fromkeys(r["r"]["cell"] for r in rows):
    for k, label, sign in keys:
        a = st.median(r["r"][k] for r in rows if r["who"] == "recur" and r["r"]["cell"] == cell)
        b = st.median(r["r"][k] for r in rows if r["who"] == "torch" and r["r"]["cell"] == cell)
        ratio = b / a if sign < 0 else a / b
        print(f"{cell:5} {label:40} {a:12.1f} {b:12.1f} {ratio:7.2f}x")
rounds = max(r["round"] for r in rows)
print(f"(medians of {rounds} alternating runs of each side per cell; ratio > 1 means recur is faster)")
PY
