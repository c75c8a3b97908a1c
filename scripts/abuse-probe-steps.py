#!/usr/bin/env python3
"""How a probe's feed is stepped while 200 clients that never read load recurd
(docs/PERFORMANCE.md, "Abusive clients").

    python3 scripts/abuse-probe-steps.py ["recurd flags"]    # e.g. "--prompt-rows 0"

Starts a release recurd (Shakespeare LSTM), connects the stalled clients of
scripts/abuse-bench.py (200 x 1 MiB of feeds, never read), then times eight 16-character probe
feeds, reading `stats` just before and after each: the steps the probe took, the mean rows per
step meanwhile, and the tokens per second the daemon stepped. Standard library only.
"""
import importlib.util, json, os, socket, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("abuse_bench", os.path.join(HERE, "abuse-bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


class Arguments:
    recurd = os.path.join(bench.ROOT, ".build", "release", "recurd")
    model = os.path.join(bench.ROOT, "samples", "shakespeare-lstm.safetensors")


def stats(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    s.sendall(b'{"op":"stats"}\n')
    reply = json.loads(s.makefile("rb").readline())
    s.close()
    return reply


def main():
    extra = sys.argv[1] if len(sys.argv) > 1 else ""
    bench.raise_fd_limit()
    with tempfile.TemporaryDirectory() as directory:
        daemon = bench.Daemon(Arguments(), directory, extra)
        try:
            probe = bench.Probe(daemon)
            idle = sorted(probe.once() for _ in range(21))
            bench.stalled_clients(daemon.socket, 200, bench.MIB, 1000)
            start = time.time()
            for _ in range(8):
                before = stats(daemon.socket)
                took = probe.once()
                after = stats(daemon.socket)
                steps = after["steps"] - before["steps"]
                rows = after["mean_batch"] * after["steps"] - before["mean_batch"] * before["steps"]
                print("t=%.1f s  probe %.0f ms, %d steps, %.1f rows per step, %.0f tokens/s" % (
                    time.time() - start, took * 1000, steps, rows / max(steps, 1), (after["tokens"] - before["tokens"]) / took),
                    flush=True)
            print("idle probe median %.0f ms" % (idle[10] * 1000))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
