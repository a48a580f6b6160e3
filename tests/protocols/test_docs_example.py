"""The worked example of docs/protocols.md is real: its KV protocol, taken
from the page, keeps the conversation laws, replays to an observer, and
serves and answers through a lab on real sockets."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, Loopback

from lab import Lab
from lab.errors import ConfigError
from lab.protocols import Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"


@pytest.fixture(scope="module")
def kv(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The first Python block after "A worked example", loaded as a module."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## A worked example"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "no code block in the worked example"
    path = tmp_path_factory.mktemp("kvdoc") / "kv_example.py"
    path.write_text(code.group(1), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("kv_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kv_example"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_example_serves_and_answers_on_real_sockets(kv: ModuleType) -> None:
    """Served from a lab: verbs, expect by status, the option, shared store."""
    with Lab.start() as lab:
        srv = lab.serve(kv.SPEC, max_keys=2)
        other = lab.serve(kv.SPEC)
        c = lab.connect(kv.SPEC, srv)
        assert c.set("colour", "green") and c.set("size", "9")
        assert not c.set("third", "x")  # the store holds two keys
        assert c.get("colour") == "green" and c.get("nope") is None
        assert lab.connect(kv.SPEC, other).keys() == ["colour", "size"]  # one store per lab
        c.send(b"GET nope\r\n")
        assert c.expect("NONE").status == "NONE"
        with pytest.raises(ConfigError, match="--max-keys wants a number of at least 1"):
            lab.serve(kv.SPEC, max_keys="none")


@settings(deadline=None, max_examples=100)
@given(data=st.lists(st.sampled_from([b"GET a\r\n", b"KEYS\r\n", b"SET a 1\r\n", b"OK\r\n", b"OK 1\r\n",
                                      b"a\r\n", b".\r\n", b"NONE\r\n", b"\r\n", b"\xff"]),
                     max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=6))
def test_the_example_keeps_the_laws(kv: ModuleType, data: bytes, cuts: list[int]) -> None:
    """Either side's bytes, split anywhere: the same messages received, sent or observed."""
    laws = ConversationLaws()
    laws.stream(kv.SPEC.conversation, Role.CLIENT, data, cuts)
    laws.stream(kv.SPEC.conversation, Role.SERVER, data, cuts)


@settings(deadline=None, max_examples=50)
@given(cuts=st.lists(st.integers(0, 200), max_size=6))
def test_the_example_replays_to_an_observer(kv: ModuleType, cuts: list[int]) -> None:
    """An observer of a real exchange frames KEYS's block by the request, as the client did."""

    async def main() -> Loopback:
        lb = Loopback(kv.SPEC)
        client = kv.KvClient(lb)
        await client.set("b", "2")
        await client.set("a", "1")
        assert await client.keys() == ["a", "b"]
        assert await client.get("a") == "1"
        return lb

    ConversationLaws().observer_replays(kv.SPEC.conversation, asyncio.run(main()), cuts)
