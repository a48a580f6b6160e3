#!/usr/bin/env python3
"""TUI benchmark: how many events per second the console absorbs while
it still answers a key within 100 ms, and its memory after a million.

    python bench/tui.py                    # rate steps of 4 s, then 1,000,000 events
    python bench/tui.py --quick            # shorter steps, 200,000 events: a smoke test
    python bench/tui.py --rates 5000,10000 --seconds 6 --json tui.json

The app runs headless (Textual's ``run_test``, 120x40) over a lab whose
reactor runs in its own thread, exactly as ``netlab`` runs it.  A feeder
coroutine on the reactor emits decoded echo messages into the lab's event
log at a fixed rate; the UI takes them the way it takes real traffic.
Meanwhile a key (``z``, bound to a no-op action) is pressed every ``--probe`` seconds and the time
from the key being posted to its action running is recorded.

A rate counts as **sustained** when, over the step, the UI absorbed at
least 98 % of what was offered, no event fell out of the UI's queue, and
the 95th-percentile key latency stayed under 100 ms.

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from textual.binding import Binding, BindingType  # noqa: E402
from textual.widgets import Static  # noqa: E402

from lab.eventlog import Direction, EventKind, EventLog  # noqa: E402
from lab.filtering import parse_filter  # noqa: E402
from lab.lab import Lab  # noqa: E402
from lab.protocols._base import Message, Role, Transport  # noqa: E402
from lab.protocols.echo import SPEC as ECHO  # noqa: E402
from lab.tui.app import NetlabApp  # noqa: E402

SIZE = (120, 40)
KEY_BUDGET = 0.100
LINES = [b"hello, lab\r\n", b"ping\r\n", b"the quick brown fox jumps over the lazy dog\r\n",
         b"GET / HTTP/1.0\r\n", b"echo... echo...\r\n"]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BenchApp(NetlabApp):
    """The console, noting when the probe key's action runs (``z``, bound
    like every other key; it puts a counter in the title bar) and when the
    next frame is drawn after it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("z", "probe", "Probe", show=False)]

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.handled: list[float] = []
        self.shown: list[float] = []
        self._awaiting_frame = False
        self.frames = 0
        self.terminal_bytes = 0

    def _display(self, screen: Any, renderable: Any) -> None:
        # headless Textual composes every frame but skips turning it into
        # escape sequences: do that part too, so the cost of a real
        # terminal's output is counted (only the write itself is left out)
        super()._display(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            self.frames += 1
            self.terminal_bytes += len(renderable.render_segments(self.console))
            if self._awaiting_frame:
                self._awaiting_frame = False
                self.shown.append(time.perf_counter())

    def action_probe(self) -> None:
        self.handled.append(time.perf_counter())
        self._panel("#titlebar", Static).update(f" probe {len(self.handled)}")
        self._awaiting_frame = True


def messages() -> list[tuple[Direction, bytes, Message]]:
    codec = ECHO.codec(Role.SERVER, Transport.TCP)
    out = []
    for i, line in enumerate(LINES * 2):
        (msg,) = codec.feed(line)
        out.append((Direction.IN if i % 2 == 0 else Direction.OUT, line, msg))
    return out


async def feed(log: EventLog, rate: float | None, seconds: float | None, count: int | None) -> tuple[int, float]:
    """Emit events at ``rate``/s for ``seconds`` (or ``count`` as fast as
    the loop allows); runs on the reactor.  Returns (sent, elapsed)."""
    loop = asyncio.get_running_loop()
    emit = log.emit
    samples = messages()
    start = loop.time()
    sent = 0
    msg_kind = EventKind.MESSAGE
    while True:
        now = loop.time()
        if seconds is not None and now - start >= seconds:
            break
        if count is not None and sent >= count:
            break
        due = (int(rate * (now - start)) - sent) if rate else 5000
        if count is not None:
            due = min(due, count - sent)
        for i in range(max(0, min(due, 100_000))):
            direction, raw, msg = samples[(sent + i) % len(samples)]
            emit(msg_kind, "bench", f"bench#{(sent + i) // 50 % 20}", direction, "echo", None, raw, msg)
        sent += max(0, due)
        await asyncio.sleep(0.005 if rate else 0)
    return sent, loop.time() - start


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@dataclass
class Step:
    rate: float
    offered: float = 0.0
    absorbed: float = 0.0
    dropped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    missed_keys: int = 0

    @property
    def frame_p95(self) -> float:
        return _p95(self.frame_ms)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p95(self) -> float:
        return _p95(self.latencies_ms)

    @property
    def worst(self) -> float:
        return max(self.latencies_ms, default=float("nan"))

    @property
    def sustained(self) -> bool:
        return (self.absorbed >= 0.98 * self.offered and self.dropped == 0 and not self.missed_keys
                and self.frame_p95 <= KEY_BUDGET * 1000)


async def probe_keys(app: BenchApp, until: asyncio.Future[Any], every: float, step: Step) -> None:
    """Press ``z`` every ``every`` seconds and time its handling."""
    while not until.done():
        before, frames_before = len(app.handled), len(app.shown)
        posted = time.perf_counter()
        app.simulate_key("z")
        deadline = posted + 5.0
        while len(app.shown) == frames_before and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        if len(app.handled) == before or len(app.shown) == frames_before:
            step.missed_keys += 1
        else:
            step.latencies_ms.append((app.handled[before] - posted) * 1000)
            step.frame_ms.append((app.shown[frames_before] - posted) * 1000)
        await asyncio.sleep(every)


async def run_step(app: BenchApp, lab: Lab, rate: float, seconds: float, probe: float) -> Step:
    step = Step(rate)
    await asyncio.sleep(0.5)  # let the previous step's tail drain
    absorbed0, dropped0 = app.absorbed, app.feed.dropped
    fut = asyncio.wrap_future(lab.reactor.submit(feed(lab.log, rate, seconds, None)))
    prober = asyncio.create_task(probe_keys(app, fut, probe, step))
    sent, elapsed = await fut
    await prober
    # what the UI took during the step, plus at most one tick's lag
    await asyncio.sleep(app.tick * 2)
    step.offered = sent / elapsed
    step.absorbed = (app.absorbed - absorbed0) / elapsed
    step.dropped = app.feed.dropped - dropped0
    return step


async def flood(app: BenchApp, lab: Lab, total: int, probe: float) -> dict[str, Any]:
    """``total`` events as fast as the reactor emits them; RSS along the way."""
    gc.collect()
    marks: list[tuple[int, float]] = [(lab.log.total, rss_mb())]
    step = Step(0)
    chunk = max(1, total // 4)
    started = time.perf_counter()
    for _ in range(4):
        fut = asyncio.wrap_future(lab.reactor.submit(feed(lab.log, None, None, chunk)))
        prober = asyncio.create_task(probe_keys(app, fut, probe, step))
        await fut
        await prober
        await asyncio.sleep(0.3)
        marks.append((lab.log.total, rss_mb()))
        say(f"  {lab.log.total:,} events in the log so far, RSS {marks[-1][1]:.0f} MB")
    elapsed = time.perf_counter() - started
    traffic = app.traffic
    return {
        "events": total,
        "seconds": round(elapsed, 1),
        "rss_mb": [(n, round(mb, 1)) for n, mb in marks],
        "log_kept": len(lab.log),
        "log_capacity": lab.log.capacity,
        "log_payload_mb": round(lab.log.payload_bytes / 2**20, 1),
        "view_rows": len(traffic.rows),
        "view_window": traffic.window,
        "ui_queue": len(app.feed),
        "ui_queue_dropped": app.feed.dropped,
        "absorbed": app.absorbed,
        "key_p50_ms": round(step.p50, 1),
        "key_p95_ms": round(step.p95, 1),
        "key_worst_ms": round(step.worst, 1),
        "frame_p95_ms": round(step.frame_p95, 1),
        "missed_keys": step.missed_keys,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    lab = Lab.start()
    app = BenchApp(lab)
    steps: list[Step] = []
    frames0 = 0
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            if args.filter:
                app.traffic.set_filter(parse_filter(args.filter))
            for rate in args.rates:
                say(f"rate {rate:,.0f} events/s for {args.seconds} s ...")
                step = await run_step(app, lab, rate, args.seconds, args.probe)
                steps.append(step)
                say(f"  offered {step.offered:,.0f}/s, absorbed {step.absorbed:,.0f}/s, dropped {step.dropped:,},"
                    f" key p95 {step.p95:.1f} ms")
            say(f"flood: {args.events:,} events as fast as the reactor emits them ...")
            memory = await flood(app, lab, args.events, args.probe)
            memory["frames"] = app.frames - frames0
            memory["terminal_mb"] = round(app.terminal_bytes / 2**20, 1)
    finally:
        lab.close()
    return {"steps": steps, "memory": memory}


def report(result: dict[str, Any]) -> None:
    steps: list[Step] = result["steps"]
    print("rate steps: events offered by the reactor thread; key = from posting a key to its action running;"
          " frame = to the next frame drawn after it")
    print(f"{'target/s':>9} {'offered/s':>10} {'absorbed/s':>11} {'dropped':>8} {'key p50 ms':>11} "
          f"{'key p95 ms':>11} {'key max ms':>11} {'frame p95 ms':>13}  sustained")
    for s in steps:
        print(f"{s.rate:>9,.0f} {s.offered:>10,.0f} {s.absorbed:>11,.0f} {s.dropped:>8,} {s.p50:>11.1f} "
              f"{s.p95:>11.1f} {s.worst:>11.1f} {s.frame_p95:>13.1f}  {'yes' if s.sustained else 'NO'}")
    best = max((s.absorbed for s in steps if s.sustained), default=0.0)
    print(f"\nsustained: {best:,.0f} events/s absorbed with key-to-frame p95 <= {KEY_BUDGET * 1000:.0f} ms "
          f"(target 10,000: {'met' if best >= 10_000 else 'NOT met'})")
    m = result["memory"]
    print(f"\nmemory after {m['events']:,} events ({m['seconds']} s):")
    print("  RSS MB by events logged: " + ", ".join(f"{n:,}: {mb:.0f}" for n, mb in m["rss_mb"]))
    print(f"  log keeps {m['log_kept']:,} of capacity {m['log_capacity']:,} ({m['log_payload_mb']} MB payload);"
          f" view keeps {m['view_rows']:,} rows of window {m['view_window']:,}; UI queue {m['ui_queue']:,}"
          f" ({m['ui_queue_dropped']:,} fell out of it)")
    print(f"  {m['frames']:,} frames drawn in all, {m['terminal_mb']} MB of terminal output")
    print(f"  key during the flood: p50 {m['key_p50_ms']} ms, p95 {m['key_p95_ms']} ms, "
          f"max {m['key_worst_ms']} ms, to the next frame p95 {m['frame_p95_ms']} ms, missed {m['missed_keys']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="2000,5000,10000,15000,20000,30000",
                        help="comma-separated events/s to try (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each rate step")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the memory flood")
    parser.add_argument("--probe", type=float, default=0.1, help="seconds between key presses")
    parser.add_argument("--filter", default="", help="a traffic filter to keep on (e.g. 'p:echo /fox/')")
    parser.add_argument("--quick", action="store_true", help="1.5 s steps and 200,000 events")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if args.quick:
        args.seconds, args.events = 1.5, 200_000
    result = asyncio.run(main_async(args))
    report(result)
    if args.json:
        out = {"steps": [asdict(s) | {"p50": s.p50, "p95": s.p95, "frame_p95": s.frame_p95,
                                      "sustained": s.sustained}
                         for s in result["steps"]], "memory": result["memory"]}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
