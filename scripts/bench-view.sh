#!/usr/bin/env bash
# The daemon's one-token socket round trip (recur-bench --only latency: one client, one
# character per feed, k 5) with and without the live view, alternating ROUNDS times on the same
# machine state, medians:
#   plain  recurd without --http;
#   http   recurd --http 127.0.0.1:0, nobody watching (what /metrics costs the feeds);
#   view   recurd --http 127.0.0.1:0 with a live-view watcher (GET /events, k 5, every hidden
#          unit, what the page asks for) attached to the measured stream and reading every event.
#   [VIEWER_NICE=N] scripts/bench-view.sh [ROUNDS (default 5)] [TOKENS per run (default 3000)]
# Release builds of recurd and recur-bench; needs python3. Each run's line goes to stderr; the
# summary to stdout. The watcher counts what it received in hundreds (recur-bench feeds 200
# warm-up tokens, then TOKENS) and how often it was cut off for falling behind: the HTTP
# surface runs at the lowest CPU priority, so on a busy machine the viewer loses events, not
# the feeders time.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} tokens=${2:-3000}
# The watcher stands in for a browser, which runs on the viewer's machine: by default it runs
# at nice 19 so that its own reading does not take the daemon's CPU on a small machine.
# VIEWER_NICE=0 runs it beside the daemon at the same priority.
viewer_nice=${VIEWER_NICE:-19}
swift build -c release --product recur-bench >/dev/null
swift build -c release --product recurd >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d)
daemon='' watcher=''
trap 'kill $watcher $daemon 2>/dev/null || true; rm -rf "$dir"' EXIT
model=samples/shakespeare-lstm.safetensors

# Reads the live view's events of stream 'bench' until killed, as a browser's EventSource
# does: a watcher cut off for falling behind (`event: end`, reason overflow) connects again
# at once. Writes "EVENTS CUTOFFS" into $3 every 100 events, at each cut-off and when killed.
cat > "$dir/watch.py" <<'PY'
import signal, sys, urllib.request
address, token, count_file = sys.argv[1:4]
n = cutoffs = 0
def report():
    open(count_file, "w").write(f"{n} {cutoffs}\n")
def stop(*_):
    report()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    request = urllib.request.Request(f"http://{address}/events?stream=bench&k=5&units=all",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:
        for line in response:
            if line.startswith(b"data: {\"stream\""):
                n += 1
                if n % 100 == 0:
                    report()
            elif line.startswith(b"data: {\"reason\":\"overflow\""):
                cutoffs += 1
                report()
                break
            elif line.startswith(b"data: {\"reason\""):
                sys.exit(0)
PY

metric() {  # metric ADDRESS NAME: its value in /metrics
  python3 -c 'import sys, urllib.request
for l in urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode().splitlines():
    if l.startswith(sys.argv[2] + " "): print(l.split()[1])' "$1" "$2"
}

for round in $(seq "$rounds"); do
  for mode in plain http view; do
    sock=$dir/$mode-$round.sock
    flags=()
    [ "$mode" != plain ] && flags=(--http 127.0.0.1:0)
    "$bin/recurd" --model "$model" --socket "$sock" --log-level info "${flags[@]}" 2> "$dir/$mode-$round.err" &
    daemon=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"{\"op\":\"feed\",\"stream\":\"bench\",\"text\":\"T\",\"k\":0}\n"); s.recv(65536)' "$sock"
    if [ "$mode" = view ]; then
      address=$(sed -n 's/.*HTTP listening on \([^ ]*\).*/\1/p' "$dir/$mode-$round.err" | head -1)
      nice -n "$viewer_nice" python3 "$dir/watch.py" "$address" "$(cat "$sock.http-token")" "$dir/count" &
      watcher=$!
      for _ in $(seq 100); do [ "$(metric "$address" recurd_view_watchers)" = 1.0 ] && break; sleep 0.1; done
    fi
    result=$("$bin/recur-bench" --only latency --socket "$sock" --tokens "$tokens" --stream bench)
    attached='' received=0 cutoffs=0
    if [ "$mode" = view ]; then
      attached=$(metric "$address" recurd_view_watchers)
      sleep 0.5  # the last frame's events reach the watcher
      kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; watcher=''
      read -r received cutoffs < "$dir/count" 2>/dev/null || { received=0; cutoffs=0; }; rm -f "$dir/count"
    fi
    kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=''
    echo "{\"mode\":\"$mode\",\"round\":$round,\"attached\":\"$attached\",\"received\":$received,\"cutoffs\":$cutoffs,\"r\":$result}" | tee -a "$dir/results" >&2
  done
done
python3 - "$dir/results" "$tokens" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
tokens_fed = int(sys.argv[2]) + 200  # recur-bench's warm-up, then TOKENS
for mode, what in (("plain", "recurd without --http"), ("http", "--http, nobody watching"),
                   ("view", "--http, a live-view watcher on the stream")):
    rs = [r for r in rows if r["mode"] == mode]
    p50 = st.median(r["r"]["socket_feed_1token_p50_us"] for r in rs)
    p99 = st.median(r["r"]["socket_feed_1token_p99_us"] for r in rs)
    errors = sum(r["r"]["errors"] for r in rs)
    extra = "" if mode != "view" else (f"   the watcher received {st.median(r['received'] for r in rs):.0f} of {tokens_fed} events,"
                                        f" cut off {st.median(r['cutoffs'] for r in rs):.0f} times (medians)")
    print(f"{what:45s} p50 {p50:6.1f} us   p99 {p99:7.1f} us   errors {errors}{extra}")
print(f"(medians of {len(rows) // 3} alternating runs each)")
PY
