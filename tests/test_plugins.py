"""A third-party protocol registered through the `netlab.protocols` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent(
    '''
    """A protocol that nobody in netlab wrote: it answers each line reversed."""
    from lab.protocols import Conversation, ProtocolSpec, ServerBehaviour, Session, Transport
    from lab.protocols._framing import Line, LineDecoder


    class Lines(Conversation):
        follows_sends = False

        def decoder(self, sender):
            return LineDecoder()


    class ReverseSession(Session):
        def message_received(self, msg):
            self.conn.send(Line.of(msg.line[::-1]))


    class Reverser(ServerBehaviour):
        session_type = ReverseSession


    SPEC = ProtocolSpec(
        name="reverse",
        summary="answers every line reversed",
        rfc="none",
        default_port=7777,
        transports=(Transport.TCP,),
        conversation=Lines,
        server=Reverser,
    )
    '''
)


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A directory holding an installed-looking distribution with the entry point."""
    (tmp_path / "reverse_proto.py").write_text(PLUGIN)
    dist = tmp_path / "reverse_proto-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: reverse-proto\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[netlab.protocols]\nreverse = reverse_proto:SPEC\n")
    return tmp_path


def netlab(plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_entry_point_protocol_is_listed(plugin_path: Path) -> None:
    """`netlab protocols` shows the plugin beside the built-ins."""
    out = netlab(plugin_path, "protocols")
    assert out.returncode == 0, out.stderr
    assert any(line.split()[0] == "reverse" and "answers every line reversed" in line
               for line in out.stdout.splitlines())


def test_entry_point_protocol_can_be_served(plugin_path: Path) -> None:
    """The plugin serves real sockets and its traffic lands in the log."""
    out = netlab(plugin_path, "exec", "serve reverse as r; connect reverse r as c; send c stressed; "
                 "expect c desserts; log -n 1 --in -e c")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].endswith('<-     "desserts\\r\\n"')


def test_broken_plugin_is_reported_not_fatal(tmp_path: Path) -> None:
    """A plugin that fails to import costs one warning; the rest still lists."""
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[netlab.protocols]\nbroken = no_such_module:SPEC\n")
    out = netlab(tmp_path, "protocols")
    assert out.returncode == 0
    assert "echo" in out.stdout
    assert "protocol 'broken' failed to load" in out.stderr
    assert "Traceback" not in out.stderr
