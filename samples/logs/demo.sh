#!/usr/bin/env bash
# The log-anomaly demo: a fresh synthetic service log with a few unusual lines slipped in
# (stack traces, odd paths, SQL fragments, hex dumps, binary junk) goes through
# `recurd --stdin`, and the lines with the highest mean surprisal (nats per byte, -log p
# averaged over the line's bytes) are printed. The model never saw the injected kinds of
# line; they rise to the top by surprisal alone.
#
#   bash samples/logs/demo.sh            # 10 injected lines, top 10, seed 7
#   bash samples/logs/demo.sh 20 20 3    # INJECT TOP SEED
#
# Environment: RECURD (default .build/release/recurd, built when missing), MODEL (default
# samples/logs.safetensors), BYTES (size of the generated log, default 100000).
set -euo pipefail

inject=${1:-10}
top=${2:-10}
seed=${3:-7}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
recurd=${RECURD:-$root/.build/release/recurd}
model=${MODEL:-$root/samples/logs.safetensors}
bytes=${BYTES:-100000}

if [ ! -x "$recurd" ]; then
    echo "building recurd (swift build -c release --product recurd) ..." >&2
    (cd "$root" && swift build -c release --product recurd >&2)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$here/generate_logs.py" --bytes "$bytes" --seed "$seed" --inject "$inject" \
    --truth "$work/injected.txt" > "$work/app.log"
lines=$(wc -l < "$work/app.log")
echo "generated $lines log lines ($(wc -c < "$work/app.log") bytes, seed $seed) with $inject unusual ones injected"

# One event per byte: offset, token, logprob, top-k (TSV). k=0: only the logprobs matter here.
start=$(date +%s%N)
"$recurd" --model "$model" --stdin --format tsv --top-k 0 < "$work/app.log" > "$work/events.tsv" 2> "$work/recurd.err"
end=$(date +%s%N)
echo "recurd: $(tail -n 1 "$work/recurd.err" | sed 's/^recurd: //') in $(( (end - start) / 1000000 )) ms"

# Mean surprisal per line: a line's tokens run up to and including its newline (\x0A for a
# byte model, \n for a character model). The first token of the log has no prediction ("-").
awk -F'\t' '
    $3 != "-" { sum[line] -= $3; count[line]++ }
    { if ($2 == "\\x0A" || $2 == "\\n") line++ }
    END { for (l in sum) printf "%d\t%.4f\n", l + 1, sum[l] / count[l] }
' line=0 "$work/events.tsv" | sort -t "$(printf '\t')" -k2,2gr > "$work/ranked.tsv"
head -n "$top" "$work/ranked.tsv" > "$work/top.tsv"

echo
echo "the $top most surprising lines (mean nats/byte; * = injected):"
hits=0
while IFS="$(printf '\t')" read -r number surprisal; do
    mark=" "
    if grep -qx "$number" "$work/injected.txt"; then mark="*"; hits=$((hits + 1)); fi
    text=$(sed -n "${number}p" "$work/app.log" | LC_ALL=C tr -d '\n' | LC_ALL=C tr -c '[:print:]' '?' | cut -c1-110)
    printf '%s %7.3f  %6d  %s\n' "$mark" "$surprisal" "$number" "$text"
done < "$work/top.tsv"
echo
echo "$hits of the $inject injected lines are among the top $top (of $lines lines)"
