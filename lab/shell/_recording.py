"""What the front-ends show of a recording, and how they end one on exit.

The recorder itself is the scenarios package's (``record start FILE``);
this module only reads its state and stops it through the command
language, so every front-end records the same way.
"""

from __future__ import annotations

from lab.commands import Interpreter
from lab.errors import LabError
from lab.lab import Lab
from lab.scenarios._recorder import RECORDER, Recorder

__all__ = ["active_recorder", "finish_recording", "recording_badge"]


def active_recorder(lab: Lab) -> Recorder | None:
    """The recorder writing this lab's session, or None."""
    recorder = lab.services.find(RECORDER)
    return recorder if isinstance(recorder, Recorder) and recorder.active else None


def recording_badge(lab: Lab) -> str:
    """``REC FILE (N steps)`` while recording, else an empty string."""
    recorder = active_recorder(lab)
    if recorder is None:
        return ""
    return f"REC {recorder.path.name} ({recorder.steps} steps)"


def finish_recording(interp: Interpreter, timeout: float = 10.0) -> str | None:
    """Stop a recording still running (``record stop``); its one-line
    outcome, or None when nothing was recording.  Called on the way out so
    the file ends cleanly, not merely truncated at the last step."""
    lab = interp.lab
    if active_recorder(lab) is None or lab._closed or not lab.reactor.running:
        return None
    try:
        (result,) = interp.execute("record stop", timeout)
    except LabError as exc:
        return f"recording not closed cleanly: {exc}"
    return result.text
