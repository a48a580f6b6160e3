"""Regenerate docs/netlab-tui.svg, the README's picture of the console.

It shows the still lab (lab/tui/still.py): real servers and clients on
in-memory pipes with fixed ports, addresses and times, so running this
again changes the picture only when the console itself changes.

    python docs/screenshot.py [OUT.svg]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from lab.tui.app import NetlabApp
from lab.tui.still import pose, still_lab

SIZE = (120, 40)


async def shoot(out: Path) -> None:
    lab = still_lab()
    app = NetlabApp(lab, title="netlab — demo lab", stats_interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            pose(app)
            await pilot.pause(0.3)
            out.write_text(app.export_screenshot(title="netlab"), encoding="utf-8")
    finally:
        lab.reactor.loop.close()


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("netlab-tui.svg")
    os.environ["TZ"] = "UTC"  # the still lab's clock reads 00:00 everywhere
    time.tzset()
    asyncio.run(shoot(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
