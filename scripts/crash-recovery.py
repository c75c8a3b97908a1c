#!/usr/bin/env python3
"""Crash recovery of a real recurd (docs/PERFORMANCE.md, "Durable streams").

    python3 scripts/crash-recovery.py RECURD MODEL STATE_DIR SOCKET [SECONDS]

500 streams over 50 connections feed 8 characters of Hamlet at a time for SECONDS (default 3);
then recurd gets kill -9 and is restarted on the same state directory, and every stream is
brought back with `info`. Prints one JSON line: tokens acknowledged before the kill, restored
after it, lost tokens (must be 0), streams behind their client, the restart-to-accepting time
and the time until every stream was restored. EXTRA="--durability batched" adds recurd flags.
Standard library only. STATE_DIR's parent must exist.
"""
import socket, json, sys, time, threading, subprocess, os, signal
recurd, model, state, sock = sys.argv[1:5]
def start():
    p = subprocess.Popen([recurd, "--model", model, "--socket", sock, "--state-dir", state, "--log-level", "error"] + os.environ.get("EXTRA", "").split())
    t = time.time()
    while True:
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(sock); s.close(); return p, time.time() - t
        except OSError: time.sleep(0.005)
text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "hamlet.txt")).read() * 8
seen = [0] * 500; stop = False
def client(c):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(200):
        try: s.connect(sock); break
        except OSError: time.sleep(0.02)
    f = s.makefile("rw"); sent = [0] * 10
    try:
        while True:
            for i in range(10):
                st = c * 10 + i; piece = text[sent[i]:sent[i] + 8]; sent[i] += 8
                f.write(json.dumps({"op": "feed", "stream": "s%d" % st, "text": piece, "k": 1}) + "\n")
            f.flush(); done = 0
            while done < 10:
                l = f.readline()
                if not l: return
                m = json.loads(l)
                if "offset" in m and "stream" in m: seen[int(m["stream"][1:])] = max(seen[int(m["stream"][1:])], m["offset"])
                if "done" in m or "error" in m: done += 1
    except Exception: return
p, _ = start()
ts = [threading.Thread(target=client, args=(c,)) for c in range(50)]
[t.start() for t in ts]
time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 3)
p.send_signal(signal.SIGKILL); p.wait(); [t.join() for t in ts]
t0 = time.time(); p, ready = start()
got = [0] * 500
def restore(c):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); f = s.makefile("rw")
    for st in range(c, 500, 50):
        f.write(json.dumps({"op": "info", "stream": "s%d" % st}) + "\n"); f.flush()
        got[st] = json.loads(f.readline())["offset"]
rs = [threading.Thread(target=restore, args=(c,)) for c in range(50)]
[t.start() for t in rs]; [t.join() for t in rs]
total = time.time() - t0
lost = sum(max(0, a - b) for a, b in zip(seen, got))
print(json.dumps({"streams": 500, "acknowledged": sum(seen), "restored": sum(got), "lost_tokens": lost,
                  "streams_behind": sum(1 for a, b in zip(seen, got) if b < a), "restart_to_ready_s": round(ready, 3),
                  "all_restored_s": round(total, 3)}))
p.send_signal(signal.SIGTERM); p.wait()
