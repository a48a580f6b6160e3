"""The telnet server's and client's options: what ``serve telnet`` and
``connect telnet -o NAME=VALUE`` take.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lab.errors import LocalProtocolError
from lab.protocols._options import Options, integer, option, seconds
from lab.protocols.telnet._codec import Subnegotiation

__all__ = ["Mode", "Negotiate", "TelnetClientOptions", "TelnetOptions"]

E = TypeVar("E", bound=enum.Enum)


class Mode(enum.Enum):
    """What the server offers once options are settled."""

    ECHO = "echo"
    CONSOLE = "console"


class Negotiate(enum.Enum):
    """Who answers the server's option questions on a client."""

    AUTO = "auto"  # the client, as a terminal would
    MANUAL = "manual"  # nobody: the user, by hand


def _choice(kind: type[E]) -> Callable[[str], E]:
    words = " or ".join(str(m.value) for m in kind)

    def parse(text: str) -> E:
        try:
            return kind(text.strip().lower())
        except ValueError:
            raise ValueError(f"wants {words}, got {text!r}") from None

    return parse


def parse_password(text: str) -> str:
    """Non-empty printable text, without spaces around it."""
    if not text or text != text.strip() or any(ord(c) < 0x20 for c in text):
        raise ValueError("wants non-empty printable text without spaces around it")
    return text


def read_password_file(path: str) -> str:
    """The first line of ``path``, so the password stays off command lines."""
    try:
        first = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first or not first[0].strip():
        raise ValueError(f"wants a file with the password on its first line; {path} has none")
    return parse_password(first[0].strip())


def read_password_env(name: str) -> str:
    """The value of environment variable ``name``, so the password stays
    out of lab files."""
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set: set it to the console password")
    return parse_password(value)


def parse_terminal(text: str) -> str:
    """A terminal type as RFC 1091 allows it."""
    try:
        Subnegotiation.ttype_is(text)
    except LocalProtocolError:
        raise ValueError(f"wants 1-40 printing ASCII characters, got {text!r}") from None
    return text


@dataclass(frozen=True, kw_only=True)
class TelnetOptions(Options):
    """``serve telnet`` options."""

    # option() makes a dataclass field, and an enum default is immutable: RUF009 does not apply
    mode: Mode = option(Mode.ECHO,  # noqa: RUF009
                        help="echo: a line echo service; console: the lab's command language",
                        parse=_choice(Mode), metavar="echo|console", example="console")
    password: str | None = option(help="the console password (required by --mode console)",
                                  parse=parse_password, metavar="SECRET")
    password_file: str | None = option(help="read the console password from the first line of FILE",
                                       parse=read_password_file, metavar="FILE")
    password_env: str | None = option(help="read the console password from environment variable NAME",
                                      parse=read_password_env, metavar="NAME")
    allow_remote: bool = option(False, help="let the console listen on and accept non-loopback addresses",
                                flag=True)
    login_attempts: int = option(3, help="console password attempts per connection", parse=integer(1, 100),
                                 metavar="N")
    greeting_wait: float = option(1.0, help="seconds to wait for answers to the option questions before"
                                  " greeting anyway", parse=seconds(0, 300), metavar="SECONDS", show_default="1")


@dataclass(frozen=True, kw_only=True)
class TelnetClientOptions(Options):
    """``connect telnet -o NAME=VALUE`` options, known before the server asks."""

    terminal: tuple[str, ...] = option(help="terminal types to report, in order (RFC 1091; repeat for several)",
                                       parse=parse_terminal, multiple=True, metavar="TYPE", example="xterm",
                                       show_default="dumb")
    width: int = option(80, help="window columns to report (NAWS)", parse=integer(1, 0xFFFF, what="1-65535"),
                        metavar="N", example="120")
    height: int = option(24, help="window rows to report (NAWS)", parse=integer(1, 0xFFFF, what="1-65535"),
                         metavar="N", example="40")
    negotiate: Negotiate = option(Negotiate.AUTO,  # noqa: RUF009
                                  help="auto: answer option questions as a terminal would;"
                                  " manual: answer nothing (send DO/WILL by hand)",
                                  parse=_choice(Negotiate), metavar="auto|manual")
