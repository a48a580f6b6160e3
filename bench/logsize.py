#!/usr/bin/env python3
"""What the event log costs on disk: the JSONL spill against the bytes
that crossed the wire, at full capture.

    python bench/logsize.py            # about 20 s
    python bench/logsize.py --quick    # a smoke test

A lab echo server spills its log to a file (as ``--log-file`` does) while
a client on a plain socket sends each workload and reads the echo back:
bulk text, bulk binary (every byte value), and small lines.  Reports the
file's size over the bytes of both directions, and bytes per event (what
a small message costs however short it is).  The file is then read back
(``lab.logfile``) and every payload compared, so a compact file is never
bought with a lossy one.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.eventlog import EventKind
from lab.lab import Lab
from lab.logfile import iter_events
from lab.pcap import StreamRebuilder


def workloads(scale: int) -> Iterator[tuple[str, list[bytes]]]:
    text = b"the quick brown fox jumps over the lazy dog " * 1489 + b"\r\n"
    binary = bytes(range(256)) * 256
    yield "bulk text (64 KiB lines)", [text] * (20 * scale)
    yield "bulk binary (64 KiB)", [binary] * (20 * scale)
    yield "small lines (14 B)", [b"hello lab %04d\r\n" % (i % 10_000) for i in range(2000 * scale)]


def measure(name: str, chunks: list[bytes]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        with Lab.start() as lab:
            lab.log.spill_to(path)
            server = lab.serve("echo", name="e")
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                for chunk in chunks:
                    sock.sendall(chunk)
                    got = 0
                    while got < len(chunk):
                        data = sock.recv(1 << 20)
                        if not data:
                            raise SystemExit(f"{name}: the echo server hung up")
                        got += len(data)
            deadline = time.monotonic() + 30
            while not any(e.kind is EventKind.CLOSE and e.conn == "e#1" for e in lab.log):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: the close never reached the log")
                time.sleep(0.01)
            lab.log.flush()
        size = os.path.getsize(path)
        events = 0
        back = bytearray()
        stream = StreamRebuilder()
        for event in iter_events(path):
            events += 1
            if event.conn == "e#1" and event.direction.value == "in" and event.raw is not None:
                added, _ = stream.add(event.kind, event.raw)
                back += added
    wire = 2 * sum(len(c) for c in chunks)
    return {"wire": wire, "file": size, "events": events, "exact": float(bytes(back) == b"".join(chunks))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the traffic")
    args = parser.parse_args(argv)
    scale = 1 if args.quick else 10
    print(f"{'workload':<26} {'wire':>11} {'file':>11} {'file/wire':>9} {'events':>8} {'B/event':>8}  read back")
    for name, chunks in workloads(scale):
        print(f"  {name} ...", file=sys.stderr, flush=True)
        r = measure(name, chunks)
        print(f"{name:<26} {int(r['wire']):>11,} {int(r['file']):>11,} {r['file'] / r['wire']:>9.2f}"
              f" {int(r['events']):>8,} {r['file'] / r['events']:>8.0f}  {'exact' if r['exact'] else 'DIFFERS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
