#!/usr/bin/env python3
"""A recurd client in plain Python (standard library only): surprisal per line.

Connects to a running `recurd --socket PATH`, feeds a file (or stdin) line by line to one
stream, and prints each line's mean surprisal -- the average of -log p over its tokens, in
nats per token -- before the line itself. Lines the model did not expect stand out with high
numbers. With --top N it also lists the N most surprising lines at the end.

    recurd --model samples/logs.safetensors --socket /tmp/recurd.sock &
    python3 samples/client.py --socket /tmp/recurd.sock app.log
    tail -f app.log | python3 samples/client.py --socket /tmp/recurd.sock --stream app

The protocol is newline-delimited JSON (docs/PROTOCOL.md): one request a line, and for a feed
one event per token, then a reply with "done". Every reply echoes the request's "id".
"""

import argparse
import heapq
import json
import os
import socket
import sys


def printable(text):
    """`text` safe for a terminal: control characters (escape sequences, NULs, a carriage
    return) and undecodable bytes (U+FFFD) as \\xNN or \\uNNNN escapes; tabs stay."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t" or (code >= 0x20 and code != 0x7F and not 0x80 <= code <= 0x9F and code != 0xFFFD):
            out.append(ch)
        elif code == 0xFFFD:
            out.append("\\uFFFD")
        else:
            out.append(f"\\x{code:02X}")
    return "".join(out)


class Recurd:
    """One connection to the daemon, reading its replies a line at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.next_id = 1

    def request(self, message):
        """Sends one request; yields its per-token events, then returns its final reply.
        Raises RuntimeError with the daemon's code and message when the request fails."""
        request_id = self.next_id
        self.next_id += 1
        message = dict(message, id=request_id)
        self.sock.sendall(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        while True:
            line = self.reader.readline()
            if not line:
                raise RuntimeError("recurd closed the connection")
            reply = json.loads(line)
            if "notice" in reply:  # a stream expired or was evicted, ended or reset by another client
                print(f"notice: stream {reply['stream']!r} {reply['notice']}: {reply['message']}", file=sys.stderr)
                continue
            if reply.get("id") != request_id:
                continue
            if "error" in reply:
                raise RuntimeError(f"{reply['error']['code']}: {reply['error']['message']}")
            if "token" in reply and "offset" in reply:
                yield reply
            else:
                return reply

    def feed(self, text, stream=None):
        """The events of `text` absorbed into `stream` (the connection's private one if None)."""
        message = {"op": "feed", "text": text, "k": 0}
        if stream is not None:
            message["stream"] = stream
        return list(self.request(message))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="text to feed, one line at a time (default: stdin)")
    parser.add_argument("--socket", default=os.environ.get("RECURD_SOCKET", "/tmp/recurd.sock"),
                        help="the daemon's socket (default: $RECURD_SOCKET or /tmp/recurd.sock)")
    parser.add_argument("--stream", help="a named stream, which outlives the connection (default: a private one)")
    parser.add_argument("--top", type=int, default=0, metavar="N", help="at the end, list the N most surprising lines")
    args = parser.parse_args()

    try:
        daemon = Recurd(args.socket)
    except OSError as error:
        sys.exit(f"client.py: cannot connect to {args.socket}: {error.strerror}; is recurd running with --socket {args.socket}?")

    source = open(args.file, "rb") if args.file else sys.stdin.buffer
    worst = []  # a min-heap of (surprisal, line number, text): the N largest so far
    number = 0
    for raw in source:
        number += 1
        text = raw.decode("utf-8", errors="replace")  # JSON carries text; odd bytes become U+FFFD
        try:
            events = daemon.feed(text, args.stream)
        except RuntimeError as error:
            print(f"client.py: line {number}: {error}", file=sys.stderr)
            continue
        scored = [event["logprob"] for event in events if event["logprob"] is not None]
        if not scored:
            continue
        surprisal = -sum(scored) / len(scored)
        shown = printable(text.rstrip("\n"))
        print(f"{surprisal:7.3f}\t{shown}", flush=True)
        if args.top > 0:
            item = (surprisal, number, shown)
            if len(worst) < args.top:
                heapq.heappush(worst, item)
            else:
                heapq.heappushpop(worst, item)
    if args.top > 0:
        print(f"\nthe {len(worst)} most surprising lines (mean nats/token, line number):")
        for surprisal, line_number, shown in sorted(worst, reverse=True):
            print(f"{surprisal:7.3f}  {line_number:6d}  {shown[:120]}")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a pipeline stage should. Python
        # would complain again flushing stdout at exit, so point stdout at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a C program killed by the broken pipe reports
    except KeyboardInterrupt:
        sys.exit(130)
