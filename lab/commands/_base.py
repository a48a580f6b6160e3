"""The pieces every command is made of: a parser that raises instead of
exiting, the :class:`Command` base, and helpers for text and patterns.

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from lab.errors import CommandError
from lab.protocols._base import Message

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = [
    "Command",
    "CommandParser",
    "Result",
    "Statement",
    "parse_pattern",
    "split_statements",
    "unescape",
]


class CommandParser(argparse.ArgumentParser):
    """argparse that raises :class:`CommandError` instead of exiting."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(exit_on_error=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message}", hint=f"usage: {self.format_usage().strip()[7:]}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise CommandError(message or f"{self.prog}: cannot parse")


@dataclass(frozen=True)
class Statement:
    """One command line, split into words; ``text`` is what the user typed."""

    words: tuple[str, ...]
    text: str
    line: int = 1


@dataclass
class Result:
    """What a command produced: ``value`` for programs, ``text`` for people."""

    command: str
    value: Any
    text: str

    def __str__(self) -> str:
        return self.text


def split_statements(script: str) -> list[Statement]:
    """Split a script on newlines and ``;`` into statements of words.

    Words follow shell quoting; ``#`` at the start of a word starts a
    comment (so ``px#1`` is a word, as in a shell).
    """
    out: list[Statement] = []
    for lineno, line in enumerate(script.splitlines() or [script], 1):
        lexer = shlex.shlex(_without_comment(line), posix=True, punctuation_chars=";")
        lexer.whitespace_split = True
        lexer.commenters = ""
        words: list[str] = []
        try:
            for token in lexer:
                if token and set(token) == {";"}:
                    if words:
                        out.append(Statement(tuple(words), shlex.join(words), lineno))
                    words = []
                else:
                    words.append(token)
        except ValueError as exc:
            raise CommandError(f"line {lineno}: {exc}", hint="close the quote") from None
        if words:
            out.append(Statement(tuple(words), shlex.join(words), lineno))
    return out


def _without_comment(line: str) -> str:
    """``line`` up to a ``#`` that begins a word outside quotes."""
    quote = ""
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t;"):
            return line[:i]
    return line


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[\\rnt0\"'e]|.)", re.DOTALL)
_SIMPLE = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "0": "\0", '"': '"', "'": "'", "e": "\x1b"}


def _escaped(m: re.Match[str]) -> str:
    code = m.group(1)
    if code.startswith("x") and len(code) == 3:
        return chr(int(code[1:], 16))
    if code in _SIMPLE:
        return _SIMPLE[code]
    raise CommandError(f"unknown escape \\{code}", hint="use \\r \\n \\t \\0 \\xHH or \\\\")


def unescape(text: str) -> bytes:
    """C-style escapes (``\\r \\n \\t \\0 \\xHH \\\\``) to bytes; other
    characters are UTF-8 encoded."""
    parts = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        parts.append(text[pos : m.start()].encode("utf-8"))
        parts.append(_escaped(m).encode("latin-1"))
        pos = m.end()
    parts.append(text[pos:].encode("utf-8"))
    return b"".join(parts)


def unescape_text(text: str) -> str:
    """The same escapes in text (``\\xHH`` is the character U+00HH)."""
    return _ESCAPE.sub(_escaped, text) if "\\" in text else text


def add_payload_args(parser: CommandParser) -> None:
    """TEXT... [-n] [--hex], as send and inject take them."""
    parser.add_argument("text", nargs="*", help="words joined by spaces; escapes like \\r \\n \\xHH work")
    parser.add_argument("-n", "--no-newline", action="store_true",
                        help="do not add the protocol's line ending (added over TCP by default)")
    parser.add_argument("--hex", action="store_true", help="TEXT is hex digits")


def payload(args: argparse.Namespace, line_ending: bytes | None, example: str) -> bytes:
    """The bytes :func:`add_payload_args` describe; ``line_ending`` is
    added unless ``-n`` (``None``: never, as over UDP)."""
    text = " ".join(args.text)
    if args.hex:
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise CommandError("--hex needs pairs of hex digits", hint=f"e.g. {example}") from None
    data = unescape(text)
    if line_ending is not None and not args.no_newline and not data.endswith(b"\n"):
        data += line_ending
    return data


def parse_pattern(text: str) -> Any:
    """A pattern word to something :func:`lab.connection.match` takes.

    ``/regex/`` (``/regex/i`` ignores case) is a regular expression; a
    number (``250``) matches a reply code or, in protocols without codes,
    the text; anything else is a substring, with escapes.
    """
    m = re.fullmatch(r"/(.*)/(i?)", text, re.DOTALL)
    if m:
        try:
            return re.compile(m.group(1), re.IGNORECASE if m.group(2) else 0)
        except re.error as exc:
            raise CommandError(f"bad regular expression {text}: {exc}") from None
    if text.isdigit():
        code = int(text)

        def code_or_text(msg: Message) -> bool:
            if hasattr(msg, "code"):
                return msg.code == code
            return text in msg.text

        code_or_text.__name__ = text
        return code_or_text
    return unescape(text).decode("utf-8", "replace")


def take_name(words: Sequence[str]) -> tuple[list[str], str | None]:
    """Split ``as NAME`` off the words: at the end, or before options
    (``serve smtp as mx --port 2525``)."""
    items = list(words)
    if items and items[-1] == "as":
        raise CommandError("`as` needs a name after it", hint="e.g. `serve echo as e1`")
    at = [i for i in range(len(items) - 1) if items[i] == "as" and not items[i + 1].startswith("-")]
    if len(at) > 1:
        raise CommandError("`as NAME` given twice", hint="name the endpoint once")
    if not at:
        return items, None
    i = at[0]
    return items[:i] + items[i + 2:], items[i + 1]


class Command:
    """One verb of the command language.

    A subclass sets ``name``, ``summary`` and ``examples``, declares its
    arguments in :meth:`configure`, and does its work in :meth:`run`
    against the Lab.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    examples: ClassVar[tuple[str, ...]] = ()
    takes_name: ClassVar[bool] = False

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        """Add this command's arguments; ``words`` are the ones typed, for
        commands whose arguments depend on them (``serve`` adds the
        protocol's options)."""

    def parser(self, words: Sequence[str] = ()) -> CommandParser:
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in self.examples) if self.examples else None
        parser = CommandParser(prog=self.name, description=self.summary, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        self.configure(parser, words)
        if self.takes_name:
            parser.usage = parser.format_usage()[7:].strip() + " [as NAME]"
        return parser

    def parse(self, words: Sequence[str]) -> argparse.Namespace:
        if self.takes_name:
            rest, name = take_name(words)
        else:
            rest, name = list(words), None
        try:
            args = self.parser(rest).parse_intermixed_args(rest)
        except argparse.ArgumentError as exc:
            raise CommandError(f"{self.name}: {exc}",
                               hint=f"`help {self.name}` shows the arguments") from None
        if self.takes_name:
            args.name = name
        return args

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        raise NotImplementedError

    def help(self) -> str:
        return self.parser().format_help()

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        """Candidates for the word being typed after ``words``."""
        return iter(())
