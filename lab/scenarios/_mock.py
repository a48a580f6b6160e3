"""Server replay: answer a real client from a recording.

The recorded client side (``send`` steps) becomes the requests a mock
server waits for, and the recorded replies (``expect`` steps, with what
was ``recorded`` for the ones matched by pattern) become its answers.

For a request/reply protocol (its spec declares ``requests``: SMTP,
POP3, NNTP, IRC) the recording is decoded into messages, and each request
the client sends is matched as a message: by its verb, then the closest
arguments, so a client that pipelines and one that does not, or one that
names itself differently in EHLO, get the recorded replies.  A request
the recording lacks gets the protocol's own error reply.  For byte
streams (echo, finger, ...) requests match by line, loosely (case,
spacing and line endings do not matter; a close enough line still does).
Either way a request that matches nothing is noted in the event log and
reported at the end.

Tests: tests/scenarios/test_replay.py
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab import protocols
from lab.commands._base import unescape
from lab.errors import ProtocolError, ScenarioError
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import BodyEnd, BodyPart
from lab.protocols._options import NoOptions
from lab.protocols._session import Peer, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec
from lab.scenarios._model import Scenario

__all__ = ["Exchange", "MockBehaviour", "MockReport", "MockSession", "Script", "build_scripts", "mock_spec", "targets"]

MAX_BUFFER = 64 * 1024
CLOSE_ENOUGH = 0.8


@dataclass
class Exchange:
    """One request and the replies that followed it (``request`` None: the
    greeting a server sends on connect)."""

    request: bytes | None
    replies: list[bytes] = field(default_factory=list)
    close: bool = False
    key: tuple[str, str] | None = None  # the request's message type and verb, when decoded


def request_key(msg: Message) -> tuple[str, str]:
    """What a request is, for matching: its message type and verb
    (``DATA`` the command and the mail after it differ)."""
    return type(msg).__name__, msg.kind.casefold()


@dataclass
class Script:
    """What one recorded client said and heard."""

    client: str
    exchanges: list[Exchange] = field(default_factory=list)
    by_message: bool = False  # exchanges are whole request messages and their replies


@dataclass
class MockReport:
    connections: int = 0
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)
    replies_missing: list[str] = field(default_factory=list)


def _normal(data: bytes) -> str:
    return " ".join(data.decode("latin-1").split()).casefold()


def _reply_bytes(data: dict[str, Any]) -> bytes | None:
    if data.get("recorded_hex"):
        return bytes.fromhex(data["recorded_hex"])
    if data.get("recorded") is not None:
        return str(data["recorded"]).replace("{{", "{").replace("}}", "}").encode("utf-8")
    if "hex" in data:
        return bytes.fromhex(data["hex"])
    if "equals" in data:
        return str(data["equals"]).replace("{{", "{").replace("}}", "}").encode("utf-8")
    return None


def targets(scenario: Scenario) -> dict[str, tuple[str, str | None]]:
    """What the scenario's clients connect to: lab servers and proxies by
    name, servers outside the lab by address; each with its protocol and
    transport (None: the protocol's first)."""
    out: dict[str, tuple[str, str | None]] = {s.name: (s.protocol, s.transport) for s in scenario.servers}
    for step in scenario.steps:
        if step.kind in ("serve", "proxy"):
            decl = step.data["server"]
            out[decl.name] = (decl.protocol, decl.transport)
        elif step.kind == "connect" and step.data["target"] not in out and ":" in step.data["target"]:
            out[step.data["target"]] = (step.data["speaks"], step.data.get("transport"))
    return out


def build_scripts(scenario: Scenario, server: str | None = None) -> tuple[str, list[Script], list[str]]:
    """The server to impersonate (a name, or an address outside the lab),
    one script per client of it, and warnings."""
    protocol_of = {name: protocol for name, (protocol, _) in targets(scenario).items()}
    names = list(protocol_of)
    connects = [s for s in scenario.steps if s.kind == "connect" and s.data["target"] in protocol_of]
    if server is None:
        if not connects:
            raise ScenarioError(f"{scenario.location}: {scenario.name}: no client connects to a server",
                                hint="server replay needs a recording with `connect` and `send` steps")
        server = connects[0].data["target"]
    elif server not in protocol_of:
        close = protocols.suggest(server, names)
        raise ScenarioError(f"{scenario.name}: no server {server!r}",
                            hint=f"did you mean {close!r}?" if close else f"servers: {', '.join(names)}")
    spec = protocols.get(protocol_of[server])
    scripts: dict[str, Script] = {}
    warnings: list[str] = []
    for step in scenario.steps:
        data = step.data
        if step.kind == "connect" and data["target"] == server:
            scripts[data["name"]] = Script(data["name"], [Exchange(None)])
        elif step.kind == "send" and data["client"] in scripts:
            if data.get("hex") is not None:
                raw = bytes.fromhex(data["hex"])
            else:
                raw = unescape(data["text"].replace("{{", "{").replace("}}", "}"))
                if data["newline"] and spec.transports[0] is Transport.TCP and not raw.endswith(b"\n"):
                    raw += spec.line_ending
            scripts[data["client"]].exchanges.append(Exchange(raw))
        elif step.kind == "expect" and data["client"] in scripts:
            reply = _reply_bytes(data)
            if reply is None:
                warnings.append(f"{step}: no recorded bytes to answer with")
            else:
                scripts[data["client"]].exchanges[-1].replies.append(reply)
        elif step.kind == "wait" and data.get("closed") in scripts:
            scripts[data["closed"]].exchanges[-1].close = True
        elif step.kind == "call" and data["client"] in scripts:
            if not data.get("traffic"):
                warnings.append(f"{step}: no recorded traffic to answer this verb with")
            for item in data.get("traffic") or ():
                ((key, value),) = item.items()
                if key == "closed":
                    scripts[data["client"]].exchanges[-1].close = True
                    continue
                raw = bytes.fromhex(value) if key.endswith("_hex") else str(value).encode("utf-8")
                if key.startswith("sent"):
                    scripts[data["client"]].exchanges.append(Exchange(raw))
                else:
                    scripts[data["client"]].exchanges[-1].replies.append(raw)
    out = list(scripts.values())
    if spec.requests is not None:
        decoded = [by_message(spec, s) for s in out]
        if all(d is not None for d in decoded):
            out = [d for d in decoded if d is not None]
        else:
            warnings.append(f"the recording does not decode as {spec.name} messages: requests are matched"
                            " by line, not by message")
    return server, out, warnings


def by_message(spec: ProtocolSpec, script: Script) -> Script | None:
    """``script`` as one exchange per request message, with its replies
    (None if the recorded bytes do not decode as the protocol)."""
    assert spec.requests is not None
    pairs = spec.requests.one_reply_each
    conv = spec.conversation(None, spec.transports[0])
    exchanges = [Exchange(None)]
    waiting: deque[Exchange] = deque()  # requests whose reply has not come (pipelined)
    replying = exchanges[0]  # the exchange the server's last message answered
    try:
        for recorded in script.exchanges:
            seen: list[tuple[Role, Message]] = []
            if recorded.request is not None:
                seen += conv.observe(recorded.request, Role.CLIENT)
            for reply in recorded.replies:
                seen += conv.observe(reply, Role.SERVER)
            for sender, msg in seen:
                if sender is Role.CLIENT:
                    if isinstance(msg, BodyPart):
                        continue  # the end of the body is the request; its parts may split anyhow
                    exchange = Exchange(msg.raw, key=request_key(msg))
                    exchanges.append(exchange)
                    waiting.append(exchange)
                    continue
                if pairs and waiting and not isinstance(msg, (BodyPart, BodyEnd)):
                    replying = waiting.popleft()
                elif not pairs:
                    replying = exchanges[-1]
                replying.replies.append(msg.raw)
            if recorded.close:
                (replying if pairs else exchanges[-1]).close = True
    except ProtocolError:
        return None
    return Script(script.client, exchanges, by_message=True)


class MockSession(Session["MockBehaviour"]):
    """One client's replay: the script it plays, where it is, what it sent
    of a request so far."""

    def __init__(self, server: MockBehaviour, conn: Peer) -> None:
        super().__init__(server, conn)
        self.script = Script("none", [Exchange(None)])
        self.pos = 1
        self.buf = bytearray()

    def connection_made(self) -> None:
        server = self.server
        server.report.connections += 1
        if server.scripts:
            self.script = server.scripts[server.next_script % len(server.scripts)]
        server.next_script += 1
        self.conn.note(f"mock plays the recording of {self.script.client}")
        self._answer(self.script.exchanges[0])

    def _answer(self, exchange: Exchange) -> None:
        for reply in exchange.replies:
            self.conn.send_raw(reply)
        if exchange.close:
            self.conn.close()

    def message_received(self, msg: Message) -> None:
        if self.script.by_message:
            self._request(msg)
            return
        buf = self.buf
        buf += msg.raw
        # the exact recorded bytes answer at once (binary requests have no
        # line end); anything else waits for its line end, then matches loosely
        found = self.server.find(self.script, self.pos, bytes(buf), fuzzy=False)
        complete = self.conn.transport is Transport.UDP or buf.endswith(b"\n") or len(buf) >= MAX_BUFFER
        if found is None and not complete:
            return
        request = bytes(buf)
        buf.clear()
        if found is None:
            found = self.server.find(self.script, self.pos, request, fuzzy=True)
        if found is None:
            self._unmatched(request)
            return
        self.script, index = found
        self.server.report.matched += 1
        self.pos = index + 1
        self._answer(self.script.exchanges[index])

    def _request(self, msg: Message) -> None:
        """One request message: the recorded replies to the closest one with
        its verb, or the protocol's error reply."""
        if isinstance(msg, BodyPart):
            return  # answered at the body's end
        server = self.server
        found = server.find_message(self.script, self.pos, request_key(msg), msg.raw)
        if found is None:
            self._unmatched(msg.raw)
            assert server.refusal is not None
            self.conn.send_raw(server.refusal(msg))
            return
        self.script, index = found
        server.report.matched += 1
        self.pos = index + 1
        self._answer(self.script.exchanges[index])

    def _unmatched(self, request: bytes) -> None:
        shown = request.decode("latin-1").rstrip("\r\n")
        self.server.report.unmatched.append(shown)
        self.conn.note(f"unmatched request {shown!r}: nothing in the recording answers it")

    def connection_lost(self) -> None:
        if self.buf:
            self._unmatched(bytes(self.buf))  # a last request that never ended
            self.buf.clear()


class MockBehaviour(ServerBehaviour[Any]):
    """Plays the recorded scripts: connections take them in turn."""

    session_type = MockSession

    def __init__(self, options: Any, scripts: list[Script], report: MockReport,
                 refusal: Callable[[Message], bytes] | None = None) -> None:
        super().__init__(options)
        self.scripts = scripts
        self.report = report
        self.next_script = 0
        self.refusal = refusal

    def _in_order(self, script: Script, pos: int) -> list[tuple[Script, int]]:
        """Where to look for a request: next in this script, then earlier
        in it, then the other scripts."""
        ordered = [(script, i) for i in range(pos, len(script.exchanges))]
        ordered += [(script, i) for i in range(1, pos)]
        ordered += [(s, i) for s in self.scripts if s is not script for i in range(1, len(s.exchanges))]
        return ordered

    def find_message(self, script: Script, pos: int, key: tuple[str, str],
                     request: bytes) -> tuple[Script, int] | None:
        """The exchange whose request has ``key``'s verb: the same bytes
        first, then the same words, then the closest arguments (the first
        in order among equals)."""
        same = [(s, i) for s, i in self._in_order(script, pos) if s.exchanges[i].key == key]
        for s, i in same:
            if s.exchanges[i].request == request:
                return s, i
        want = _normal(request)
        best, score = None, -1.0
        for s, i in same:
            ratio = difflib.SequenceMatcher(a=_normal(s.exchanges[i].request or b""), b=want).ratio()
            if ratio > score:
                best, score = (s, i), ratio
        return best

    def find(self, script: Script, pos: int, request: bytes, *, fuzzy: bool) -> tuple[Script, int] | None:
        """The exchange that answers ``request``: next in this script first,
        then anywhere; exactly, or (``fuzzy``) loosely."""
        want = _normal(request)
        ordered = self._in_order(script, pos)
        for s, i in ordered:
            if s.exchanges[i].request == request:
                return s, i
        if not fuzzy:
            return None
        for s, i in ordered:
            if _normal(s.exchanges[i].request or b"") == want:
                return s, i
        best, score = None, CLOSE_ENOUGH
        for s, i in ordered:
            ratio = difflib.SequenceMatcher(a=_normal(s.exchanges[i].request or b""), b=want).ratio()
            if ratio >= score:
                best, score = (s, i), ratio
        return best


def mock_spec(spec: ProtocolSpec, scripts: list[Script], report: MockReport) -> ProtocolSpec:
    """``spec`` with the mock as its server behaviour (its conversation unchanged)."""
    refusal = spec.requests.refusal if spec.requests is not None and scripts and scripts[0].by_message else None
    return dataclasses.replace(spec, server=lambda options: MockBehaviour(options, scripts, report, refusal),
                               options=NoOptions)


