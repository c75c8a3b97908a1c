#!/usr/bin/env bash
# recur beside PyTorch on this machine, in one run: recur at each precision and the PyTorch peer
# (fp32) alternate ROUNDS times per cell so that machine noise hits all alike; medians and ratios
# are printed at the end, under the machine (CPU model), the kernel paths and the precisions.
#   scripts/bench.sh [ROUNDS (default 5)] [CELLS (default "lstm rnn")] [PRECISIONS (default "fp32 bf16 int8")]
# Training is measured at fp32 only (--precision is an inference choice). Beside each recur run,
# recur-bench also measures the machine's sgemm rate on the batched step's shape, and the
# report gives the batched figures in GFLOP/s and as a share of that rate. PyTorch's figures are
# re-measured in every round of this run, never taken from an earlier one.
# Needs ../shared/peers (the PyTorch peer) and a venv with torch: PEER_PYTHON, default
# ~/.venv-peers/bin/python (created with `python3 -m venv ~/.venv-peers &&
# ~/.venv-peers/bin/pip install torch numpy safetensors` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cells=${2:-lstm rnn}
precisions=${3:-fp32 bf16 int8}
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
trap 'rm -f "$out"' EXIT
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
for cell in $cells; do
  for i in $(seq "$rounds"); do
    for p in $precisions; do
      # fp32 also measures training; the other precisions only inference.
      only=$([ "$p" = fp32 ] && echo all || echo inference)
      echo "{\"who\":\"recur\",\"round\":$i,\"r\":$("$bench" --cell "$cell" --precision "$p" --only "$only")}" | tee -a "$out" >&2
    done
    echo "{\"who\":\"torch\",\"round\":$i,\"r\":$("$py" "$peer_dir/torch_rnn_bench.py" --cell "$cell" --hidden 256 --layers 2 --vocab 65)}" | tee -a "$out" >&2
  done
done
python3 - "$out" "$torch_version" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
first = next(r["r"] for r in rows if r["who"] == "recur")
print(f"machine: {first['cpu']}, {first['threads']} threads; kernels: fp32 {first['fp32_path']}, "
      f"bf16/int8 {first['bf16_int8_path']}, training GEMMs {first['blas']}; PyTorch {sys.argv[2]} (fp32), measured in this run")
def med(who, cell, key, precision=None):
    v = [r["r"][key] for r in rows if r["who"] == who and r["r"]["cell"] == cell and key in r["r"]
         and (precision is None or r["r"].get("precision") == precision)]
    return st.median(v) if v else None
keys = [("single_stream_us_per_token", "one stream, us/token (lower is better)", -1),
        ("batched_B1000_tokens_per_s", "1000 streams, tokens/s", 1),
        ("train_tokens_per_s", "training B=32 T=100, tokens/s", 1)]
precisions = list(dict.fromkeys(r["r"]["precision"] for r in rows if r["who"] == "recur"))
def sgemm_rate(cell):
    # The machine's sgemm rate on the batched step's shape, measured beside every recur run.
    v = [x for r in rows if r["who"] == "recur" and r["r"]["cell"] == cell
         for k, x in r["r"].items() if k.startswith("sgemm_gflops_")]
    return st.median(v) if v else None
print(f"{'cell':5} {'measure':40} {'precision':9} {'recur':>12} {'pytorch':>12} {'ratio':>8}")
for cell in dict.fromkeys(r["r"]["cell"] for r in rows):
    for k, label, sign in keys:
        b = med("torch", cell, k)
        for p in precisions:
            a = med("recur", cell, k, p)
            if a is None: continue
            ratio = b / a if sign < 0 else a / b
            print(f"{cell:5} {label:40} {p:9} {a:12.1f} {b:12.1f} {ratio:7.2f}x")
            if k == "batched_B1000_tokens_per_s":
                flops, peak = med("recur", cell, "step_flops_per_token", p), sgemm_rate(cell)
                if flops and peak:
                    label2 = f"  GFLOP/s; share of sgemm's {peak:.0f}"
                    print(f"{'':5} {label2:40} {p:9} {a * flops / 1e9:12.1f} {b * flops / 1e9:12.1f} {a * flops / 1e9 / peak:8.0%}")
rounds = max(r["round"] for r in rows)
print(f"(medians of {rounds} alternating runs of each side per cell; ratio > 1 means recur is faster; PyTorch is fp32)")
PY
