#!/usr/bin/env python3
"""recurd under abusive load (docs/PERFORMANCE.md, "Abusive clients").

    python3 scripts/abuse-bench.py [--recurd .build/release/recurd] [--model MODEL]
                                   [--only storm,stalled,pipelining] [--extra "recurd flags"]...

With --extra given more than once, each scenario runs once per set of flags (e.g. --extra=""
--extra="--prompt-rows 0" compares fair admission of rows with plain turns in one run).

Each scenario runs against a fresh recurd on a Unix socket in a temporary directory:

  storm       3 storms in a row of 1000 clients connecting at the same instant (asyncio), each
              sending one feed and reading its reply; every client must be served (0 errors).
  stalled     200 clients each send 1 MiB of feed requests (lines of about 1 KiB of text) and
              never read a byte of the reply; the daemon's resident memory is compared to idle.
  pipelining  20 clients send feed requests as fast as their socket takes them for 10 s and
              never read.

While the load is on, a probe client times small feeds (round trip), compared with the same
probe on the idle daemon before. Resident memory is VmRSS from /proc/PID/status (the highest
seen while the load was on). Prints a table; exits 1 when a target is missed (any storm error,
stalled > 150 MB over idle, pipelining > 1 MiB per client over idle). Standard library only,
loopback Unix sockets only, bounded in time (a few minutes at most).
"""
import argparse, asyncio, json, os, resource, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
HAMLET = open(os.path.join(ROOT, "samples", "hamlet.txt")).read().replace("\n", " ")
MIB = 1 << 20


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Daemon:
    def __init__(self, args, directory, extra=""):
        self.socket = os.path.join(directory, "d.sock")
        command = [args.recurd, "--model", args.model, "--socket", self.socket, "--log-level", "error"] + extra.split()
        self.process = subprocess.Popen(command)
        deadline = time.time() + 60
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.socket)
                s.close()
                return
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise SystemExit("recurd did not start accepting connections")
                time.sleep(0.02)

    def rss(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise SystemExit("no VmRSS for recurd")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.process.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, limit=20):
        """Waits until the daemon uses under 10% of a core over half a second; returns the seconds waited."""
        start = time.time()
        while time.time() - start < limit:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if self.cpu_seconds() - before < 0.05:
                break
        return time.time() - start

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def feed_line(text, k=None, stream=None):
    request = {"op": "feed", "text": text}
    if k is not None:
        request["k"] = k
    if stream is not None:
        request["stream"] = stream
    return (json.dumps(request) + "\n").encode()


class Probe:
    """One client timing small feeds (each round trip up to its done reply)."""

    def __init__(self, daemon):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(daemon.socket)
        self.file = self.sock.makefile("rb")
        self.position = 0

    def once(self):
        text = HAMLET[self.position:self.position + 16]
        self.position = (self.position + 16) % (len(HAMLET) - 16)
        start = time.perf_counter()
        self.sock.sendall(feed_line(text, stream="probe"))
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("the probe's connection was closed")
            message = json.loads(line)
            if "error" in message:
                raise SystemExit("the probe got an error: %s" % message)
            if message.get("op") == "feed" and message.get("done"):
                return time.perf_counter() - start

    def sample(self, count, seconds=None):
        """`count` timings, or as many as fit in `seconds` (at least 20)."""
        timings = []
        deadline = time.time() + seconds if seconds else None
        while len(timings) < count and (deadline is None or time.time() < deadline or len(timings) < 20):
            timings.append(self.once())
            time.sleep(0.01)
        return timings


def percentiles(timings):
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def storm_client(path, index, errors):
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
        writer.write(feed_line(HAMLET[index % 500:index % 500 + 12], k=1))
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("end of file before the reply")
            message = json.loads(line)
            if "error" in message:
                raise RuntimeError(message["error"]["code"])
            if message.get("op") == "feed" and message.get("done"):
                break
        writer.close()
        await writer.wait_closed()
    except Exception as error:  # any failure counts, by kind
        kind = type(error).__name__ + (" " + str(error) if isinstance(error, RuntimeError) else "")
        errors[kind] = errors.get(kind, 0) + 1


async def storm(path, clients, errors):
    await asyncio.wait_for(asyncio.gather(*(storm_client(path, i, errors) for i in range(clients))), timeout=120)


def run_storm(args, daemon, probe):
    results = []
    for round in range(3):
        errors = {}
        start = time.time()
        try:
            asyncio.run(storm(daemon.socket, 1000, errors))
        except asyncio.TimeoutError:
            errors["timeout after 120 s"] = 1
        results.append((time.time() - start, errors))
    return results


def stalled_clients(path, count, total_bytes, text_bytes):
    """`count` connections that each send `total_bytes` of feed lines and never read; returns them and bytes sent."""
    text = (HAMLET * (text_bytes // len(HAMLET) + 1))[:text_bytes]
    line = feed_line(text)
    payload = line * (total_bytes // len(line) + 1)
    payload = payload[:total_bytes - total_bytes % len(line)]
    sockets = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX)
        # The kernel, not the daemon, should hold what the daemon has not read yet: a send
        # buffer (root: forced) as large as what the client sends.
        try:
            s.setsockopt(socket.SOL_SOCKET, 32, 2 * total_bytes)  # SO_SNDBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * total_bytes)
        s.connect(path)
        s.setblocking(False)
        sockets.append([s, 0])
    deadline = time.time() + 30
    pending = list(sockets)
    while pending and time.time() < deadline:
        progressed = False
        for entry in pending:
            try:
                n = entry[0].send(payload[entry[1]:entry[1] + 65536])
                entry[1] += n
                progressed = progressed or n > 0
            except BlockingIOError:
                pass
        pending = [e for e in pending if e[1] < len(payload)]
        if not progressed:
            time.sleep(0.05)
    return sockets, sum(e[1] for e in sockets)


def watch_rss(daemon, seconds, probe):
    """Highest RSS and probe timings over `seconds` of load."""
    peak = daemon.rss()
    timings = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        timings.append(probe.once())
        peak = max(peak, daemon.rss())
        time.sleep(0.02)
    return peak, timings


def pipelining(path, count, seconds, daemon, probe):
    stop = threading.Event()
    sent = [0] * count
    line = feed_line(HAMLET[:200])

    def client(i):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.settimeout(0.2)
        try:
            while not stop.is_set():
                try:
                    sent[i] += s.send(line * 16)
                except socket.timeout:
                    pass
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    settled = daemon.settle()  # the queues fill, then the clients are stalled
    peak, timings = watch_rss(daemon, seconds, probe)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    return peak, timings, sum(sent), settled


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recurd", default=os.path.join(ROOT, ".build", "release", "recurd"))
    parser.add_argument("--model", default=os.path.join(ROOT, "samples", "shakespeare-lstm.safetensors"))
    parser.add_argument("--only", default="storm,stalled,pipelining")
    parser.add_argument("--extra", action="append", help="more recurd flags; repeat to run each scenario once per set")
    parser.add_argument("--stalled-text", type=int, default=1000, help="bytes of text in each stalled client's feed")
    args = parser.parse_args()
    variants = args.extra or [""]
    raise_fd_limit()
    rows = []
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for scenario, extra in [(s, e) for s in args.only.split(",") for e in variants]:
            label = lambda name: name + (" [%s]" % extra.strip() if len(variants) > 1 else "")
            daemon = Daemon(args, directory, extra)
            try:
                probe = Probe(daemon)
                probe.sample(50)  # warm up
                idle_rss = daemon.rss()
                before = percentiles(probe.sample(200))
                if scenario == "storm":
                    results = run_storm(args, daemon, probe)
                    _, during = watch_rss(daemon, 2, probe)
                    peak = daemon.rss()
                    errors = sum(sum(e.values()) for _, e in results)
                    detail = "; ".join("%.1f s, %s" % (t, ", ".join("%s %d" % kv for kv in e.items()) or "0 errors")
                                       for t, e in results)
                    failed |= errors > 0
                    rows.append((label("storm 3x1000"), idle_rss, peak, before, percentiles(during), detail))
                elif scenario == "stalled":
                    sockets, sent = stalled_clients(daemon.socket, 200, MIB, args.stalled_text)
                    # The daemon serves what the clients' queues can take, then they are stalled.
                    settled = daemon.settle()
                    peak, during = watch_rss(daemon, 5, probe)
                    for s, _ in sockets:
                        s.close()
                    failed |= peak - idle_rss > 150 * MIB
                    rows.append((label("stalled 200x1MiB"), idle_rss, peak, before, percentiles(during),
                                 "sent %.0f MiB in all; %.0f KiB per client over idle; stalled after %.1f s" % (sent / MIB, (peak - idle_rss) / 1024 / 200, settled)))
                elif scenario == "pipelining":
                    peak, during, sent, settled = pipelining(daemon.socket, 20, 10, daemon, probe)
                    failed |= peak - idle_rss > 20 * MIB
                    rows.append((label("pipelining 20"), idle_rss, peak, before, percentiles(during),
                                 "sent %.1f MiB in all; %.0f KiB per client over idle; stalled after %.1f s" % (sent / MIB, (peak - idle_rss) / 1024 / 20, settled)))
                else:
                    raise SystemExit("unknown scenario %r" % scenario)
            finally:
                daemon.stop()
    print("| scenario | idle RSS (MB) | peak RSS (MB) | delta (MB) | probe p50/p99 idle (ms) | probe p50/p99 during (ms) | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, idle, peak, before, during, notes in rows:
        print("| %s | %.1f | %.1f | %.1f | %.2f / %.2f | %.2f / %.2f | %s |" % (
            name, idle / 1e6, peak / 1e6, (peak - idle) / 1e6, before[0], before[1], during[0], during[1], notes))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
