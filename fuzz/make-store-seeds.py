#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/store-record: snapshot records in the layout of
Sources/RecurStore/StreamSnapshot+Codec.swift, each after the harness's first byte (1: the
harness recomputes the checksum, 0: it keeps the record's own)."""
import os, struct, zlib

def record(name, offset, scored, loss, owner, state, logprobs, pending, version=1):
    body = b"RCSN" + struct.pack("<HH", version, 0 if owner is None else 1)
    body += struct.pack("<QQQQ", 0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321, offset, scored)
    body += struct.pack("<ddd", loss, 1_764_000_000.25, 1_764_000_100.5)
    body += struct.pack("<I", owner or 0)
    n = name.encode()
    body += struct.pack("<I", len(n)) + n
    body += struct.pack("<I", len(state)) + struct.pack(f"<{len(state)}f", *state)
    body += struct.pack("<I", len(logprobs)) + struct.pack(f"<{len(logprobs)}f", *logprobs)
    body += struct.pack("<I", len(pending)) + pending
    return body + struct.pack("<I", zlib.crc32(body))

seeds = {
    "new-stream": record("web-1", 0, 0, 0.0, 1000, [0.0] * 8, [], b""),
    "fed-lstm": record("demo", 9, 8, 18.24, 0, [0.1 * i - 0.4 for i in range(16)], [-2.3, -0.7, -4.1, -1.2, -3.3], b""),
    "no-owner": record("logs/host-2", 3, 2, 4.5, None, [0.5, -0.5, 0.25, 1.0], [-1.0, -2.0, -0.5], b""),
    "pending-utf8": record("\u6f22\u5b57 stream", 5, 4, 7.0, 65534, [0.0, 1.0], [-0.1, -3.0], "\u20ac".encode()[:2]),
    "pending-word": record("words", 12, 11, 30.0, 1001, [0.3] * 6, [-1.5] * 7, b"hamle"),
}
directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "store-record")
os.makedirs(directory, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(directory, f"seed-{name}"), "wb") as f:
        f.write(b"\x01" + data)
with open(os.path.join(directory, "seed-own-checksum"), "wb") as f:
    f.write(b"\x00" + seeds["fed-lstm"])
