"""``save FILE [--free-ports] [--force]``: the live lab's servers as a lab
file, which ``netlab up FILE`` starts again.

Tests: tests/scenarios/test_up_save.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.commands._base import Command, CommandParser, Result
from lab.errors import CommandError

if TYPE_CHECKING:
    from lab.lab import Lab


class SaveCommand(Command):
    name = "save"
    summary = "write the live lab's servers to a lab file (`netlab up FILE` restarts them)"
    examples = ("save lab.yaml", "save lab.yaml --free-ports --force")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("file", help="the lab file to write (.yaml)")
        parser.add_argument("--free-ports", action="store_true",
                            help="write port 0 (any free port) instead of the ports in use")
        parser.add_argument("--name", help="the lab's name (default: the file name)")
        parser.add_argument("--force", action="store_true", help="replace FILE if it exists")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        import yaml

        from lab.scenarios._recorder import secrets_left_out, server_entry

        path = Path(args.file)
        if lab.jail is not None:
            path = lab.jail.path(args.file)
        if path.exists() and not args.force:
            raise CommandError(f"{path} exists", hint="pick another name, or add --force")
        servers = {s.name: server_entry(s, keep_port=not args.free_ports) for s in lab.servers}
        if not servers:
            raise CommandError("the lab has no servers to save", hint="`serve` something first")
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        body: dict[str, Any] = {"name": args.name or path.stem,
                                "description": f"A lab of {len(servers)} servers, saved on {when}."}
        text = f"# Saved by netlab; `netlab up {path.name}` starts these servers again.\n"
        text += "".join(note + "\n" for s in lab.servers for note in secrets_left_out(s))
        text += yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
        text += yaml.safe_dump({"lab": servers}, default_flow_style=None, sort_keys=False, allow_unicode=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)  # never a half-written lab file
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        return Result(self.name, path, f"saved {len(servers)} servers to {path}")


COMMAND = SaveCommand()
