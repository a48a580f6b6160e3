"""``record start FILE [--name N] [--force]``, ``record stop``, ``record``.

Tests: tests/scenarios/test_recorder.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.errors import CommandError

if TYPE_CHECKING:
    from lab.lab import Lab


class RecordCommand(Command):
    name = "record"
    summary = "record this session as a scenario file (commands become steps, replies expectations)"
    examples = ("record start session.yaml", "record", "record stop")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("action", nargs="?", choices=("start", "stop", "status"), default="status")
        parser.add_argument("file", nargs="?", help="the scenario file to write (start)")
        parser.add_argument("--name", help="the scenario's name (default: the file name)")
        parser.add_argument("--description", help="what the scenario shows")
        parser.add_argument("--force", action="store_true", help="replace FILE if it exists")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        from lab.scenarios._recorder import RECORDER, Recorder

        current = lab.services.find(RECORDER)
        if args.action == "status":
            text = current.status() if current is not None and current.active else "not recording"
            return Result(self.name, current, text)
        if args.action == "stop":
            if current is None or not current.active:
                raise CommandError("not recording", hint="`record start FILE` starts")
            current.stop()
            lab.services.set(RECORDER, None)
            return Result(self.name, current.path, f"recorded {current.steps} steps to {current.path}")
        if not args.file:
            raise CommandError("record start needs a file", hint="e.g. `record start session.yaml`")
        if current is not None and current.active:
            raise CommandError(f"already recording to {current.path}", hint="`record stop` first")
        path = lab.jail.path(args.file) if lab.jail is not None else args.file
        recorder = Recorder(lab, path, name=args.name, description=args.description)
        recorder.start(overwrite=args.force)
        lab.services.set(RECORDER, recorder)
        return Result(self.name, recorder.path, f"recording to {recorder.path} (`record stop` ends)")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from ("start", "stop", "status")


COMMAND = RecordCommand()
