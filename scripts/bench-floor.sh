#!/usr/bin/env bash
# The machine's floor under recurd's one-token round trip: a one-byte ping-pong between two
# processes over a Unix socket (what the client and the daemon's event loop cost at least) and
# between two threads over a condition variable (what each hand-off between the event loop and
# the engine thread costs at least), ROUNDS times, with the CPU. docs/PERFORMANCE.md
# ("The round trip's floor") explains the sum.
#   scripts/bench-floor.sh [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=$(command -v clang || command -v cc || command -v gcc) || { echo "bench-floor: needs a C compiler (clang comes with Swift)" >&2; exit 1; }
"$cc" -O2 -pthread scripts/bench-floor.c -o "$out/floor"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
for _ in $(seq "$rounds"); do "$out/floor"; done
