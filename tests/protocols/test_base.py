"""Tests for lab/protocols/_base.py and _spec.py: messages (their typed
metadata and how they match expect patterns), escaping, the loop clock,
and the spec's option resolution."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.errors import ConfigError
from lab.protocols import echo, smtp
from lab.protocols._base import _ESCAPE, LoopClock, Message, Pattern, code_pattern, describe_pattern, escape_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Plain(Message):
    KIND: ClassVar[str] = "plain"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"stamp"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Coded(Message):
    code: int

    @property
    def kind(self) -> str:
        return f"code{self.code}"

    @property
    def keepalive(self) -> bool:
        return self.code == 0

    def matches(self, pattern: Pattern) -> bool:
        code = code_pattern(pattern)
        return self.code == code if code is not None else Message.matches(self, pattern)


def test_metadata_comes_from_class_constants_or_properties() -> None:
    """KIND, VOLATILE and KEEPALIVE stand behind the properties; a class
    may compute them per message instead."""
    assert (Plain(raw=b"x").kind, Plain(raw=b"x").volatile, Plain(raw=b"x").keepalive) == \
        ("plain", frozenset({"stamp"}), False)
    assert Message(raw=b"x").kind == "data"
    assert Coded(raw=b"", code=250).kind == "code250" and Coded(raw=b"", code=0).keepalive


@pytest.mark.parametrize(("pattern", "expected"), [
    (b"llo w", True), ("llo w", True), (re.compile(r"^hel+o"), True), (re.compile(rb"4.\r\n$"), True),
    (42, True), (7, False), (lambda m: m.raw.endswith(b"\n"), True), ("HELLO", False),
])
def test_default_matching(pattern: Pattern, expected: bool) -> None:
    """Bytes in the raw bytes, text in the text, regexes searched, a number's digits in the text, predicates."""
    assert Message(raw=b"hello world 42\r\n").matches(pattern) is expected


def test_protocols_decide_what_a_code_means() -> None:
    """A message with codes compares them (as int or three digits); other patterns fall back."""
    msg = Coded(raw=b"250 ok 354\r\n", code=250)
    assert msg.matches(250) and msg.matches("250") and not msg.matches(354) and not msg.matches("354")
    assert msg.matches("ok 354")
    assert smtp.Reply.of(250, "fine").matches("250")


def test_matching_refuses_what_is_not_a_pattern() -> None:
    with pytest.raises(TypeError):
        Message(raw=b"x").matches(1.5)  # type: ignore[arg-type]


def test_patterns_are_described_as_written() -> None:
    assert describe_pattern(re.compile("a+")) == "/a+/"
    assert describe_pattern(b"hi\r\n") == '"hi\\r\\n"'
    assert describe_pattern(250) == "250"

    def predicate(msg: Any) -> bool:
        return True

    assert describe_pattern(predicate) == "predicate"


@given(st.binary(max_size=300))
def test_escape_bytes_is_exact_and_printable(data: bytes) -> None:
    """The quick path for text gives what the table gives, for any bytes."""
    text = escape_bytes(data)
    assert text.isprintable() and text.isascii()
    reference = '"' + data[:200].decode("latin-1").translate(_ESCAPE) + '"'
    assert text == reference + (f" … ({len(data)} bytes)" if len(data) > 200 else "")


def test_loop_clock_follows_the_running_loop() -> None:
    """Without a loop it asks the running one; timers fire on it."""
    clock = LoopClock()

    async def main() -> list[str]:
        fired: list[str] = []
        assert abs(clock.time() - asyncio.get_running_loop().time()) < 1.0
        done = asyncio.Event()
        clock.call_later(0.01, lambda: (fired.append("later"), done.set()))
        clock.call_soon(fired.append, "soon")
        await asyncio.wait_for(done.wait(), 10)
        return fired

    assert asyncio.run(main()) == ["soon", "later"]
    assert clock.wall() > 1e9


def test_a_spec_resolves_its_options() -> None:
    """Names and strings in, a typed options object out; an object passes as it is."""
    options = smtp.SPEC.resolve_options({"size": "1K"})
    assert options.size == 1024  # type: ignore[attr-defined]
    assert smtp.SPEC.resolve_options(options) is options
    assert smtp.SPEC.option("size").metavar == "BYTES"
    with pytest.raises(ConfigError, match="has no option 'nope'"):
        smtp.SPEC.option("nope")
    with pytest.raises(ConfigError, match="echo: unknown client option"):
        echo.SPEC.resolve_client_options({"x": "1"})
