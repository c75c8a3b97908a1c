#!/usr/bin/env bash
# The quality cost of --precision: the sample Shakespeare LSTM scored at fp32, bf16 and int8 on
# the validation split (the last 10% of tinyshakespeare, 111,540 characters, one stream from the
# zero state, as `recur train` validates), and the difference from fp32 in nats/char.
#   scripts/precision-quality.sh [MODEL (default samples/shakespeare-lstm.safetensors)] [CORPUS (default ../shared/data/tinyshakespeare.txt)]
# Uses the release build's recur (built if missing); the numbers are the same in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-samples/shakespeare-lstm.safetensors}
corpus=${2:-../shared/data/tinyshakespeare.txt}
swift build -c release --product recur >/dev/null
recur=$(swift build -c release --show-bin-path)/recur
size=$(wc -c < "$corpus")
val=$(mktemp)
trap 'rm -f "$val"' EXIT
tail -c $((size - size * 9 / 10)) "$corpus" > "$val"   # the trainer's split: the first 90% (rounded down) trains
printf '%-9s %12s %12s %10s\n' precision nats/char "- fp32" seconds
fp32=
for p in fp32 bf16 int8; do
  start=$(date +%s.%N)
  loss=$("$recur" eval "$model" "$val" --precision "$p" --json 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["loss_nats"])')
  end=$(date +%s.%N)
  fp32=${fp32:-$loss}
  python3 -c "print(f'{\"$p\":9} {$loss:12.6f} {$loss - $fp32:+12.6f} {$end - $start:10.1f}')"
done
echo "($(wc -c < "$val") characters of $corpus, $model; recur eval --precision P)"
