"""Telnet (RFC 854/855, with 857 ECHO, 858 SGA, 1073 NAWS, 1091 TTYPE):
the network virtual terminal, its commands and option negotiation.

* ``_codec`` — the wire format, sans-IO: NVT text as :class:`Text` and
  :class:`Line`, :class:`Command`, :class:`Negotiation` and
  :class:`Subnegotiation` messages, shown decoded in the log
  (``DO ECHO``, ``SB NAWS 120x40``, ``SB TTYPE IS xterm``).
* ``_options`` — RFC 1143's Q method, so negotiation never loops.
* ``_server`` — ``--mode echo`` (a line echo service) and ``--mode
  console`` (the lab's command language behind a password).
* ``_client`` — verbs: ``read_until``, ``send_line``, ``login``, ``run``,
  ``request``, ``configure`` and raw ``send_raw``/``send_command``.

Tests: tests/protocols/test_telnet.py, tests/interop/test_telnet_peers.py
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.errors import ConfigError, LocalProtocolError
from lab.protocols._base import Codec, Option, ProtocolSpec, Role, Transport
from lab.protocols._options import integer, seconds, yes_no
from lab.protocols.telnet._client import TelnetClient
from lab.protocols.telnet._codec import (
    MAX_CLIENT_LINE,
    MAX_LINE,
    MAX_SUBNEGOTIATION,
    Command,
    Line,
    Negotiation,
    Subnegotiation,
    TelnetCodec,
    Text,
    nvt_bytes,
    option_code,
    option_name,
)
from lab.protocols.telnet._options import Negotiator, Q, Side
from lab.protocols.telnet._server import CONSOLE_SERVICE, LineEditor, Mode, Stage, TelnetServer

__all__ = [
    "CONSOLE_SERVICE",
    "MAX_CLIENT_LINE",
    "MAX_LINE",
    "MAX_SUBNEGOTIATION",
    "SPEC",
    "Command",
    "Line",
    "LineEditor",
    "Mode",
    "Negotiation",
    "Negotiator",
    "Q",
    "Side",
    "Stage",
    "Subnegotiation",
    "TelnetClient",
    "TelnetCodec",
    "TelnetServer",
    "Text",
    "make_codec",
    "nvt_bytes",
    "option_code",
    "option_name",
]


def make_codec(role: Role, transport: Transport) -> Codec:
    """The server reads typed lines (capped at :data:`MAX_LINE` bytes); the
    client reads the server's output, which may run longer."""
    return TelnetCodec(MAX_LINE if role is Role.SERVER else MAX_CLIENT_LINE)


def parse_mode(text: str) -> Mode:
    try:
        return Mode(text.strip().lower())
    except ValueError:
        raise ConfigError(f"telnet: unknown mode {text!r}", hint="use --mode echo or --mode console") from None


def parse_password(text: str) -> str:
    if not text or text != text.strip() or any(ord(c) < 0x20 for c in text):
        raise ConfigError("telnet: the password must be non-empty printable text without surrounding spaces")
    return text


def read_password_file(path: str) -> str:
    """The first line of ``path``, so the password stays off command lines."""
    try:
        first = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"telnet: cannot read the password file {path}: {exc.strerror or exc}") from None
    if not first or not first[0].strip():
        raise ConfigError(f"telnet: the password file {path} is empty", hint="put the password on its first line")
    return parse_password(first[0].strip())


parse_attempts = integer("telnet: --login-attempts", 1, 100)
parse_greeting_wait = seconds("telnet: --greeting-wait", 0, 300, hint="e.g. --greeting-wait 5")


def parse_terminal(text: str) -> str:
    try:
        Subnegotiation.ttype_is(text)
    except LocalProtocolError as exc:
        raise ConfigError(f"telnet: terminal {text!r}: 1-40 printing ASCII characters",
                          hint="e.g. -o terminal=xterm (repeat it to offer several, RFC 1091)") from exc
    return text


parse_size = integer("telnet: a window size", 1, 0xFFFF, what="1-65535", hint="e.g. -o width=120")


def parse_negotiate(text: str) -> bool:
    """True for manual negotiation."""
    word = text.strip().lower()
    if word not in ("auto", "manual"):
        raise ConfigError(f"telnet: negotiate wants auto or manual, got {text!r}",
                          hint="manual leaves every DO/WILL for you to answer with `send --hex`")
    return word == "manual"


parse_flag = yes_no("telnet: --allow-remote")


@dataclass(frozen=True, kw_only=True)
class FlagOption(Option):
    """An option that takes no value on the command line."""

    flag: bool = True


SPEC = ProtocolSpec(
    name="telnet",
    summary="a network virtual terminal: line echo, or the lab console",
    rfc="RFC 854",
    default_port=23,
    transports=(Transport.TCP,),
    codec=make_codec,
    server=TelnetServer,
    client=TelnetClient,
    options=(
        Option(name="mode", help="echo: a line echo service (default); console: the lab's command language",
               default=Mode.ECHO, parse=parse_mode, metavar="echo|console"),
        Option(name="password", help="the console password (required by --mode console)",
               parse=parse_password, metavar="SECRET"),
        Option(name="password_file", help="read the console password from the first line of FILE",
               parse=read_password_file, metavar="FILE"),
        FlagOption(name="allow_remote",
                   help="let the console listen on and accept non-loopback addresses", parse=parse_flag),
        Option(name="login_attempts", help="console password attempts per connection (default 3)",
               default=3, parse=parse_attempts, metavar="N"),
        Option(name="greeting_wait", help="seconds to wait for answers to the option questions before"
               " greeting anyway (default 1)", parse=parse_greeting_wait, metavar="SECONDS"),
    ),
    client_options=(
        Option(name="terminal", help="terminal types to report, in order (RFC 1091; default dumb)",
               parse=parse_terminal, multiple=True, metavar="TYPE"),
        Option(name="width", help="window columns to report (NAWS; default 80)", parse=parse_size, metavar="N"),
        Option(name="height", help="window rows to report (NAWS; default 24)", parse=parse_size, metavar="N"),
        Option(name="negotiate", help="auto (default): answer option questions; manual: answer nothing",
               default=False, parse=parse_negotiate, metavar="auto|manual"),
    ),
    keywords=("terminal", "console", "nvt", "remote shell"),
)
