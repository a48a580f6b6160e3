"""The telnet wire format (RFC 854/855): NVT text, commands, option
negotiation and subnegotiation, decoded sans-IO by one
:class:`TelnetDecoder` per sender inside a :class:`TelnetConversation`.

The byte 255 (IAC, "interpret as command") starts every command; a data
byte 255 is sent doubled (IAC IAC).  Text is split into :class:`Line`
messages at each line end (CR LF, CR NUL, a bare LF, or a CR followed by
anything else) and :class:`Text` messages for what has arrived of a line so
far, so that a prompt without a newline or a keystroke sent in character
mode is seen as soon as it arrives.  Commands come between them, in wire
order::

    IAC DO ECHO            -> Negotiation  "DO ECHO"
    IAC SB NAWS 0 120 0 40 IAC SE
                           -> Subnegotiation "SB NAWS 120x40"
    IAC AYT                -> Command "AYT"
    "ls -l\\r\\n"           -> Line "ls -l\\r\\n"

Peers that break the rules are met halfway where the meaning is clear: an
unknown command byte after IAC is a :class:`Command` the behaviour may
ignore, and a subnegotiation cut short by another command (IAC x without
SE) ends there, as BSD telnetd does.  What cannot be honoured raises
:class:`RemoteProtocolError`: a line longer than ``max_line`` bytes, a
subnegotiation longer than ``max_subnegotiation`` bytes, a stream that
ends inside a command.

The wire format is the same both ways; only the line cap depends on the
sender: what a client types is capped at :data:`MAX_LINE`, what a server
prints at :data:`MAX_SERVER_LINE`.  Decoding never depends on what was
said before: the state of each option lives with whoever negotiates it
(the RFC 1143 tables of a session or a client), so nothing is tracked
here.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import MASK, Message, Role, Spans, escape_bytes
from lab.protocols._conversation import Conversation
from lab.protocols._framing import MAX_LINE, StreamBuffer

__all__ = [
    "COMMANDS",
    "MAX_LINE",
    "MAX_SERVER_LINE",
    "MAX_SUBNEGOTIATION",
    "OPTIONS",
    "Command",
    "Line",
    "Negotiation",
    "SecretLine",
    "SecretText",
    "Subnegotiation",
    "TelnetConversation",
    "TelnetDecoder",
    "Text",
    "command_code",
    "command_name",
    "nvt_bytes",
    "option_code",
    "option_name",
]

# -- the command set (RFC 854, plus EOR of RFC 885 and the RFC 1184 signals) --

IAC, DONT, DO, WONT, WILL, SB, GA, EL, EC, AYT, AO, IP, BRK, DM, NOP, SE = range(255, 239, -1)
EOR_CMD, ABORT, SUSP, EOF_CMD = 239, 238, 237, 236
NUL, LF, CR = 0, 10, 13

COMMANDS: dict[int, str] = {
    IAC: "IAC", DONT: "DONT", DO: "DO", WONT: "WONT", WILL: "WILL", SB: "SB",
    GA: "GA", EL: "EL", EC: "EC", AYT: "AYT", AO: "AO", IP: "IP", BRK: "BRK",
    DM: "DM", NOP: "NOP", SE: "SE", EOR_CMD: "EOR", ABORT: "ABORT",
    SUSP: "SUSP", EOF_CMD: "EOF",
}
_COMMAND_HELP = {
    GA: "go ahead", EL: "erase line", EC: "erase character", AYT: "are you there",
    AO: "abort output", IP: "interrupt process", BRK: "break", DM: "data mark",
    NOP: "no operation", SE: "end of subnegotiation", EOR_CMD: "end of record",
    ABORT: "abort", SUSP: "suspend", EOF_CMD: "end of file",
}
VERBS = (DO, DONT, WILL, WONT)

# -- options (the IANA registry's names for the common ones) ------------------

BINARY, ECHO, SGA, STATUS, TM, TTYPE, EOR, NAWS, TSPEED, LFLOW, LINEMODE = 0, 1, 3, 5, 6, 24, 25, 31, 32, 33, 34
OPTIONS: dict[int, str] = {
    0: "BINARY", 1: "ECHO", 2: "RCP", 3: "SGA", 4: "NAMS", 5: "STATUS", 6: "TM",
    7: "RCTE", 8: "NAOL", 9: "NAOP", 10: "NAOCRD", 11: "NAOHTS", 12: "NAOHTD",
    13: "NAOFFD", 14: "NAOVTS", 15: "NAOVTD", 16: "NAOLFD", 17: "XASCII",
    18: "LOGOUT", 19: "BM", 20: "DET", 21: "SUPDUP", 22: "SUPDUP-OUTPUT",
    23: "SNDLOC", 24: "TTYPE", 25: "EOR", 26: "TUID", 27: "OUTMRK", 28: "TTYLOC",
    29: "3270-REGIME", 30: "X.3-PAD", 31: "NAWS", 32: "TSPEED", 33: "LFLOW",
    34: "LINEMODE", 35: "XDISPLOC", 36: "OLD-ENVIRON", 37: "AUTHENTICATION",
    38: "ENCRYPT", 39: "NEW-ENVIRON", 40: "TN3270E", 41: "XAUTH", 42: "CHARSET",
    43: "RSP", 44: "COM-PORT", 45: "SLE", 46: "START-TLS", 47: "KERMIT",
    48: "SEND-URL", 49: "FORWARD-X", 69: "MSDP", 70: "MSSP", 85: "MCCP1",
    86: "MCCP2", 90: "MSP", 91: "MXP", 93: "ZMP", 138: "PRAGMA-LOGON",
    139: "SSPI-LOGON", 140: "PRAGMA-HEARTBEAT", 200: "ATCP", 201: "GMCP",
    255: "EXOPL",
}
_OPTION_CODES = {name: code for code, name in OPTIONS.items()}
_OPTION_CODES.update({"TERMINAL-TYPE": TTYPE, "WINDOW-SIZE": NAWS, "SUPPRESS-GO-AHEAD": SGA})

# TTYPE subnegotiation commands (RFC 1091)
TTYPE_IS, TTYPE_SEND = 0, 1

MAX_SUBNEGOTIATION = 4096  # NAWS is 4 bytes, a terminal type at most 40
MAX_SERVER_LINE = 1024 * 1024  # a server may print long unbroken output; a client types less

_SPECIAL = re.compile(rb"[\r\n\xff]")


def option_name(code: int) -> str:
    """``ECHO`` for 1; an unregistered option is shown by its number."""
    return OPTIONS.get(code, str(code))


def option_code(name: str | int) -> int:
    """The option number for ``ECHO``, ``naws``, ``31``; :class:`LocalProtocolError`
    for a name nobody registered."""
    if isinstance(name, int):
        code = name
    elif name.strip().isdigit():
        code = int(name)
    else:
        try:
            code = _OPTION_CODES[name.strip().upper().replace("_", "-")]
        except KeyError:
            raise LocalProtocolError(
                f"telnet: unknown option {name!r}", hint="use a name like ECHO, SGA, NAWS, TTYPE or a number"
            ) from None
    if not 0 <= code <= 255:
        raise LocalProtocolError(f"telnet: option {code} is not a byte")
    return code


def command_name(code: int) -> str:
    return COMMANDS.get(code, f"0x{code:02x}")


def command_code(name: str | int) -> int:
    """The byte of a command named like ``AYT`` or ``nop``."""
    if isinstance(name, int):
        return name
    for code, known in COMMANDS.items():
        if known == name.strip().upper():
            return code
    raise LocalProtocolError(
        f"telnet: unknown command {name!r}", hint="e.g. AYT, NOP, IP, BRK, EC, EL, AO, GA"
    )


def _escape_iac(data: bytes) -> bytes:
    return data.replace(b"\xff", b"\xff\xff")


def nvt_bytes(text: str | bytes) -> bytes:
    """Text as NVT bytes: IAC doubled, every line break as CR LF and a lone
    CR as CR NUL (RFC 854)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    data = re.sub(rb"\r\n|\r|\n", lambda m: b"\r\0" if m.group() == b"\r" else b"\r\n", data)
    return _escape_iac(data)


# -- messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Text(Message):
    """NVT data that is not (yet) a whole line: a prompt, a keystroke, the
    start of a line split by a command or by TCP.  ``data`` is unescaped."""

    data: bytes = b""
    KIND: ClassVar[str] = "text"

    @classmethod
    def of(cls, text: str | bytes) -> Text:
        """Data without a line end; :class:`LocalProtocolError` for CR or LF
        (send a :class:`Line`, or :func:`nvt_bytes` raw)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if b"\r" in data or b"\n" in data:
            raise LocalProtocolError("telnet: Text holds no line end", hint="send a Line instead")
        return cls(raw=_escape_iac(data), data=data)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def summary(self) -> str:
        return escape_bytes(self.data)

    def fields(self) -> dict[str, Any]:
        return {"data": escape_bytes(self.data), "length": len(self.data)}


_PASSWORD_PROMPT = re.compile(rb"(?i)pass(word|phrase)\s*:\s*$")
_ENDINGS = {b"\r\n": "CR LF", b"\r\0": "CR NUL", b"\n": "LF", b"\r": "CR"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Line(Message):
    """The end of a line: ``data`` (unescaped, without its end; the start of
    the line may have come in :class:`Text` messages before) and ``ending``,
    the line end as sent: CR LF, CR NUL (what many clients send for Enter),
    or a bare LF or CR from lenient peers."""
    EDITABLE = ("line",)

    data: bytes = b""
    ending: bytes = b"\r\n"
    KIND: ClassVar[str] = "line"

    @classmethod
    def of(cls, text: str | bytes, ending: bytes = b"\r\n") -> Line:
        """One line to send; :class:`LocalProtocolError` if ``text`` holds a
        line break of its own."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if b"\r" in data or b"\n" in data:
            raise LocalProtocolError("telnet: one line at a time", hint="split the text at its line breaks")
        if ending not in _ENDINGS:
            raise LocalProtocolError(f"telnet: {escape_bytes(ending)} is not a line end")
        return cls(raw=_escape_iac(data) + ending, data=data, ending=ending)

    def edited(self, **fields: Any) -> Line:
        self._editable(fields)
        return Line.of(str(fields["line"]), self.ending)

    @property
    def line(self) -> str:
        """The line's text without its end."""
        return self.data.decode("utf-8", "replace")

    @property
    def text(self) -> str:
        return self.line + ("\r" if self.ending in (b"\r", b"\r\0") else self.ending.decode())

    def summary(self) -> str:
        return escape_bytes(self.data + self.ending)

    def fields(self) -> dict[str, Any]:
        return {"line": self.line, "ending": _ENDINGS.get(self.ending, escape_bytes(self.ending))}


_TYPED_SECRET = "  (password, sent in cleartext)"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretText(Text):
    """What a client typed of a line at a password prompt (character mode)."""

    SECRET: ClassVar[bool] = True

    def secret_spans(self) -> Spans:
        return ((0, len(self.raw)),) if self.raw else ()

    def summary(self) -> str:
        return MASK + _TYPED_SECRET

    def revealed(self) -> str:
        return escape_bytes(self.data) + _TYPED_SECRET

    def fields(self) -> dict[str, Any]:
        return {"data": "***"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretLine(Line):
    """A line a client typed at a password prompt: the password."""

    SECRET: ClassVar[bool] = True

    def secret_spans(self) -> Spans:
        end = len(self.raw) - len(self.ending)
        return ((0, end),) if end > 0 else ()

    def summary(self) -> str:
        return (MASK if self.data else "(empty)") + _TYPED_SECRET

    def revealed(self) -> str:
        return escape_bytes(self.data + self.ending) + _TYPED_SECRET

    def fields(self) -> dict[str, Any]:
        return {"line": "***", "ending": _ENDINGS.get(self.ending, escape_bytes(self.ending))}


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Message):
    """A two-byte command: IAC and one of NOP, AYT, IP, BRK, AO, EC, EL, GA,
    DM, ... (``command`` is the second byte; an unknown one is kept as is)."""

    command: int = NOP
    KIND: ClassVar[str] = "command"

    @classmethod
    def of(cls, name: str | int) -> Command:
        code = command_code(name)
        if code in (IAC, SB, *VERBS) or not 0 <= code <= 255:
            raise LocalProtocolError(f"telnet: {command_name(code)} is not a command on its own")
        return cls(raw=bytes((IAC, code)), command=code)

    @property
    def name(self) -> str:
        return command_name(self.command)

    @property
    def known(self) -> bool:
        return self.command in COMMANDS

    def summary(self) -> str:
        if not self.known:
            return f"IAC 0x{self.command:02x} (not a telnet command)"
        return self.name

    def fields(self) -> dict[str, Any]:
        return {"command": self.name, "code": self.command,
                "meaning": _COMMAND_HELP.get(self.command, "unknown")}


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiation(Message):
    """DO, DONT, WILL or WONT an option (RFC 855): WILL/WONT speak of the
    sender's side, DO/DONT ask the receiver."""

    verb: int = DO
    option: int = ECHO
    KIND: ClassVar[str] = "negotiation"

    @classmethod
    def of(cls, verb: str | int, option: str | int) -> Negotiation:
        code = command_code(verb)
        if code not in VERBS:
            raise LocalProtocolError(f"telnet: {verb!r} is not DO, DONT, WILL or WONT")
        opt = option_code(option)
        return cls(raw=bytes((IAC, code, opt)), verb=code, option=opt)

    @property
    def verb_name(self) -> str:
        return COMMANDS[self.verb]

    @property
    def option_name(self) -> str:
        return option_name(self.option)

    def summary(self) -> str:
        return f"{self.verb_name} {self.option_name}"

    def fields(self) -> dict[str, Any]:
        return {"verb": self.verb_name, "option": self.option_name, "code": self.option}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subnegotiation(Message):
    """IAC SB option payload IAC SE (RFC 855), with NAWS (RFC 1073) and
    TTYPE (RFC 1091) decoded.  ``payload`` is unescaped; ``complete`` is
    false when another command cut it short before its SE."""

    option: int = NAWS
    payload: bytes = b""
    complete: bool = True
    KIND: ClassVar[str] = "subnegotiation"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"width", "height"})

    @classmethod
    def of(cls, option: str | int, payload: bytes) -> Subnegotiation:
        opt = option_code(option)
        raw = bytes((IAC, SB, opt)) + _escape_iac(payload) + bytes((IAC, SE))
        return cls(raw=raw, option=opt, payload=bytes(payload))

    @classmethod
    def naws(cls, width: int, height: int) -> Subnegotiation:
        """The client's window size: columns and rows, 0-65535 each."""
        if not (0 <= width <= 0xFFFF and 0 <= height <= 0xFFFF):
            raise LocalProtocolError(f"telnet: window {width}x{height} does not fit NAWS (0-65535)")
        return cls.of(NAWS, width.to_bytes(2, "big") + height.to_bytes(2, "big"))

    @classmethod
    def ttype_is(cls, name: str) -> Subnegotiation:
        """The client's terminal type (RFC 1091: up to 40 printing characters)."""
        data = name.encode("ascii", "replace")
        if not 0 < len(data) <= 40 or not all(0x21 <= b <= 0x7E for b in data):
            raise LocalProtocolError(f"telnet: bad terminal type {name!r}",
                                     hint="1-40 printing ASCII characters, e.g. XTERM")
        return cls.of(TTYPE, bytes((TTYPE_IS,)) + data)

    @classmethod
    def ttype_send(cls) -> Subnegotiation:
        """The server's request for the (next) terminal type."""
        return cls.of(TTYPE, bytes((TTYPE_SEND,)))

    @property
    def window(self) -> tuple[int, int] | None:
        """(columns, rows) of a well-formed NAWS."""
        if self.option != NAWS or len(self.payload) != 4:
            return None
        return int.from_bytes(self.payload[:2], "big"), int.from_bytes(self.payload[2:], "big")

    @property
    def terminal(self) -> str | None:
        """The name in a TTYPE IS."""
        if self.option != TTYPE or self.payload[:1] != bytes((TTYPE_IS,)):
            return None
        return self.payload[1:].decode("ascii", "replace")

    @property
    def asks_terminal(self) -> bool:
        return self.option == TTYPE and self.payload == bytes((TTYPE_SEND,))

    def summary(self) -> str:
        name = option_name(self.option)
        if (window := self.window) is not None:
            what = f"{window[0]}x{window[1]}"
        elif (terminal := self.terminal) is not None:
            what = f"IS {terminal}"
        elif self.asks_terminal:
            what = "SEND"
        elif self.option == NAWS:
            what = f"malformed ({len(self.payload)} bytes, not 4)"
        else:
            what = escape_bytes(self.payload, 60)
        return f"SB {name} {what}" + ("" if self.complete else " (no SE)")

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"option": option_name(self.option), "code": self.option,
                               "payload": escape_bytes(self.payload), "complete": self.complete}
        if (window := self.window) is not None:
            out["width"], out["height"] = window
        if (terminal := self.terminal) is not None:
            out["terminal"] = terminal
        return out


# -- decoding ---------------------------------------------------------------------


class TelnetDecoder(StreamBuffer):
    """Decodes what one side of a telnet connection sends.

    Text is handed out as soon as it arrives (a :class:`Text` for what has
    come of a line, a :class:`Line` at its end), so messages depend on how
    TCP split the stream while the bytes of text, the commands and their
    order do not.  A CR that ends the data received so far ends its line
    at once; when the LF or NUL that completes it comes later, it is a
    :class:`Text` of that one byte.  Only an incomplete command is held
    back.
    """

    def __init__(self, max_line: int = MAX_LINE, max_subnegotiation: int = MAX_SUBNEGOTIATION) -> None:
        super().__init__()
        self.max_line = max_line
        self.max_subnegotiation = max_subnegotiation
        self._i = 0  # parsed up to here
        self._line = 0  # data bytes of the current line handed out already
        self._after_cr = False  # a line just ended with a CR that ended the data
        # a client's decoder: the line being typed answers a password prompt
        self.secret = False
        self.typing = False  # this decoder reads a client's typing

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._i

    @property
    def idle(self) -> bool:
        # after a CR that ended the data, the next byte may still belong to it
        return self.buffered == 0 and not self._after_cr

    def receive_data(self, data: bytes) -> None:
        if self._i:  # drop what is parsed before taking more
            del self._buf[: self._i]
            self._i = 0
        super().receive_data(data)

    def _spend(self, why: str, hint: str | None = None) -> RemoteProtocolError:
        self._i = 0
        return super()._spend(why, hint)

    def _count(self, length: int) -> None:
        if self._line + length > self.max_line:
            self._fail(f"line longer than {self.max_line} bytes")

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        buf, start = self._buf, self._i
        i, end = start, len(buf)
        if self._after_cr and start < end:
            self._after_cr = False
            if buf[start] in (LF, NUL):  # the rest of a CR LF or CR NUL
                self._i = start + 1
                return Text(raw=bytes(buf[start : start + 1]), data=bytes(buf[start : start + 1]))
        data = bytearray()
        while i < end:
            byte = buf[i]
            if byte == IAC:
                if i + 1 >= end:
                    break
                if buf[i + 1] == IAC:  # an escaped data byte 255
                    data.append(IAC)
                    i += 2
                    continue
                if i > start:
                    break  # hand out the text before the command first
                msg = self._command()
                if msg is None and self._eof:
                    self._fail(f"stream ended inside a command: {escape_bytes(bytes(buf[i:]), 40)}")
                return msg
            if byte == LF:
                return self._line_end(bytes(data), i, i + 1)
            if byte == CR:
                if i + 1 >= end:
                    # the line ends now: a client in character mode may send
                    # Enter as a bare CR, and nothing more may come for a while
                    self._after_cr = not self._eof
                    return self._line_end(bytes(data), i, i + 1)
                return self._line_end(bytes(data), i, i + 2 if buf[i + 1] in (LF, NUL) else i + 1)
            found = _SPECIAL.search(buf, i)
            stop = found.start() if found else end
            self._count(len(data) + stop - i)
            data += buf[i:stop]
            i = stop
        if i > start:
            self._count(len(data))
            self._line += len(data)
            self._i = i
            if self.secret:
                return SecretText(raw=bytes(buf[start:i]), data=bytes(data))
            if not self.typing and data.endswith((b": ", b":")) and _PASSWORD_PROMPT.search(data):
                conv = self.conversation
                if isinstance(conv, TelnetConversation):
                    conv.password_next = True
            return Text(raw=bytes(buf[start:i]), data=bytes(data))
        if self._eof and i < end:
            self._fail(f"stream ended inside a command: {escape_bytes(bytes(buf[i:]))}")
        return None

    def _line_end(self, data: bytes, at: int, stop: int) -> Line:
        self._count(len(data))
        buf = self._buf
        line = SecretLine if self.secret else Line
        self.secret = False  # one line answers the prompt
        msg = line(raw=bytes(buf[self._i : stop]), data=data, ending=bytes(buf[at:stop]))
        self._i = stop
        self._line = 0
        return msg

    def _command(self) -> Message | None:
        """The command at the parse position (it starts with IAC x, x not IAC)."""
        buf, i = self._buf, self._i
        code = buf[i + 1]
        if code in VERBS:
            if i + 2 >= len(buf):
                return None
            self._i = i + 3
            return Negotiation(raw=bytes(buf[i : i + 3]), verb=code, option=buf[i + 2])
        if code == SB:
            return self._subnegotiation()
        self._i = i + 2
        return Command(raw=bytes(buf[i : i + 2]), command=code)

    def _subnegotiation(self) -> Message | None:
        buf, i = self._buf, self._i
        if i + 2 >= len(buf):
            return None
        payload = bytearray()
        j = i + 3
        while True:
            k = buf.find(IAC, j)
            payload += buf[j : len(buf) if k < 0 else k]
            if len(payload) > self.max_subnegotiation:
                self._fail(f"subnegotiation of {option_name(buf[i + 2])} longer than"
                           f" {self.max_subnegotiation} bytes")
            if k < 0 or k + 1 >= len(buf):
                return None  # wait for the rest
            follower = buf[k + 1]
            if follower == IAC:
                payload.append(IAC)
                j = k + 2
                continue
            complete = follower == SE
            stop = k + 2 if complete else k  # cut short: IAC x is the next command
            self._i = stop
            return Subnegotiation(raw=bytes(buf[i:stop]), option=buf[i + 2],
                                  payload=bytes(payload), complete=complete)


class TelnetConversation(Conversation):
    """Both directions of a telnet connection: the same wire format each
    way, a client's typing capped at :data:`MAX_LINE` and a server's
    output at :data:`MAX_SERVER_LINE`; no shared state."""

    follows_sends = False

    def decoder(self, sender: Role) -> TelnetDecoder:
        decoder = TelnetDecoder(MAX_LINE if sender is Role.CLIENT else MAX_SERVER_LINE)
        decoder.typing = sender is Role.CLIENT
        return decoder

    @property
    def password_next(self) -> bool:
        """The client's next line answers a password prompt: it decodes as
        a :class:`SecretLine` (set when a server's ``Password:`` prompt
        decodes here, or by a server that asks for one)."""
        return self._typing.secret

    @password_next.setter
    def password_next(self, value: bool) -> None:
        self._typing.secret = value

    @property
    def _typing(self) -> TelnetDecoder:
        decoder = self._decoders[Role.CLIENT]
        assert isinstance(decoder, TelnetDecoder)
        return decoder

    def send(self, msg: Message) -> bytes:
        # what this client types at a password prompt is logged as a secret
        if self.role is Role.CLIENT and self._typing.secret:
            if type(msg) is Line:
                self._typing.secret = False
                msg = SecretLine(raw=msg.raw, data=msg.data, ending=msg.ending)
            elif type(msg) is Text:
                msg = SecretText(raw=msg.raw, data=msg.data)
        return super().send(msg)
