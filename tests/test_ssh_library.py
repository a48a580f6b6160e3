"""The recorder interface as SSH needs it: a library-owned server learns
the server's idle limit from `Listening.idle_timeout` (serve's
--idle-timeout, else the protocol's default), and SSH closes a quiet
connection itself, with a DISCONNECT (and an event saying why)."""

from __future__ import annotations

import asyncio

import asyncssh
from helpers import wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols import ProtocolSpec, ServerBehaviour, Transport, ssh
from lab.protocols._base import Role
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import DataDecoder
from lab.protocols._library import AsyncioListener, Listening

PASSWORD = "s3cret-enough"


class Raw(Conversation):
    def decoder(self, sender: Role) -> Decoder:
        return DataDecoder()


def spec_seeing(seen: list[Listening]) -> ProtocolSpec:
    async def listen(where: Listening) -> AsyncioListener:
        seen.append(where)

        async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        return AsyncioListener(await asyncio.start_server(nothing, where.host, where.port))

    return ProtocolSpec(name="seer", summary="-", rfc="-", default_port=0, transports=(Transport.TCP,),
                        conversation=Raw, server=ServerBehaviour, idle_timeout=123.0, listen=listen)


def test_listening_carries_the_idle_timeout(lab: Lab) -> None:
    seen: list[Listening] = []
    spec = spec_seeing(seen)
    lab.serve(spec)
    lab.serve(spec, idle_timeout=7)
    lab.serve(spec, idle_timeout=0)
    assert [w.idle_timeout for w in seen] == [123.0, 7, None]


def test_ssh_says_why_it_closes_an_idle_connection(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, idle_timeout=1)
    reason: list[str] = []

    async def go() -> None:
        class Watcher(asyncssh.SSHClient):
            def connection_lost(self, exc: Exception | None) -> None:
                reason.append(str(exc))

        conn, _ = await asyncssh.create_connection(Watcher, "127.0.0.1", srv.port, username="lab",
                                                   password=PASSWORD, known_hosts=None, client_keys=None,
                                                   agent_path=None, config=None)
        await asyncio.wait_for(conn.wait_closed(), 60)

    asyncio.run(go())
    assert reason == ["None"]  # DISCONNECT by application: asyncssh reports a clean close
    wait_until(lambda: not srv.connections, what="the close recorded")
    said = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE})))]
    assert any("closing: idle for 1 s" in s for s in said)


def test_ssh_default_idle_limit_is_the_protocols() -> None:
    assert ssh.SPEC.idle_timeout == 600.0
    assert not any(o.name == "idle" for o in ssh.SshOptions.declared())
