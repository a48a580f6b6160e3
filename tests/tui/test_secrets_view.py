"""Secrets in the console: a password sent in cleartext is masked in the traffic view, the detail and
the clipboard until `v` shows it as sent; `v` again masks it."""

from __future__ import annotations

from tui_support import SIZE, command, static_text, until

from lab import Lab
from lab.tui.app import NetlabApp
from lab.tui.traffic import _segments


def row_text(app: NetlabApp, index: int) -> str:
    event = app.traffic.rows[index]
    return "".join(seg.text for seg in _segments(event, reveal=app.traffic.reveal))


async def test_v_reveals_and_masks_a_cleartext_password(lab: Lab) -> None:
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve pop3 --user alice=wonderland as s; connect s as c; expect c +OK;"
                             " send c 'USER alice'; expect c +OK; send c 'PASS wonderland'; expect c +OK")
        await until(pilot, lambda: any(e.conn == "s#1" and e.summary.startswith("PASS") for e in app.traffic.rows),
                    what="the PASS at the server")
        index = next(i for i, e in enumerate(app.traffic.rows) if e.conn == "s#1" and e.summary.startswith("PASS"))
        assert "wonderland" not in row_text(app, index) and "sent in cleartext" in row_text(app, index)
        app.traffic.focus()
        app.traffic.select_index(index + 1)
        await pilot.press("up")
        await until(pilot, lambda: app.query_one("#detail").event is app.traffic.rows[index],  # type: ignore[attr-defined]
                    what="the PASS in the detail")
        assert "wonderland" not in static_text(app, "#hex") and "|PASS ***|" in static_text(app, "#hex")
        await pilot.press("y")
        assert "wonderland" not in app.clipboard
        await pilot.press("v")
        assert "wonderland" in row_text(app, index)
        await until(pilot, lambda: "|PASS won|" in static_text(app, "#hex"), what="the bytes as sent")
        await pilot.press("y")
        assert "wonderland" in app.clipboard
        await pilot.press("v")
        assert "wonderland" not in row_text(app, index)
        await until(pilot, lambda: "|PASS ***|" in static_text(app, "#hex"), what="the bytes masked again")
