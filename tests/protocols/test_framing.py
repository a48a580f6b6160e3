"""Tests for lab/protocols/_framing.py: chunks, datagrams, lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws

from lab.errors import RemoteProtocolError
from lab.protocols._framing import MAX_LINE, Data, DataCodec, DatagramCodec, Line, LineCodec

SETTINGS = settings(deadline=None, max_examples=200)


def lines(codec: LineCodec, *chunks: bytes) -> list[bytes]:
    out = []
    for chunk in chunks:
        out += [m.raw for m in codec.feed(chunk)]
    return out


# -- Data and DataCodec -------------------------------------------------------


def test_data_codec_makes_one_message_per_chunk() -> None:
    """Each received chunk is one Data message, in order."""
    codec = DataCodec()
    assert codec.feed(b"ab") == [Data(raw=b"ab")]
    assert codec.feed(b"c") == [Data(raw=b"c")]


def test_data_codec_ignores_eof() -> None:
    """The empty chunk (end of stream) yields no message."""
    assert DataCodec().feed(b"") == []


def test_data_codec_receive_then_next() -> None:
    """receive_data/next_message deliver the same as feed."""
    codec = DataCodec()
    codec.receive_data(b"x")
    codec.receive_data(b"y")
    assert [codec.next_message(), codec.next_message(), codec.next_message()] == [
        Data(raw=b"x"),
        Data(raw=b"y"),
        None,
    ]


def test_data_describes_its_length() -> None:
    """Data's fields are its length; its summary the escaped bytes."""
    msg = Data(raw=b"hi\r\n")
    assert msg.fields() == {"length": 4}
    assert msg.summary() == '"hi\\r\\n"'


# -- DatagramCodec --------------------------------------------------------------


def test_datagram_codec_keeps_empty_datagrams() -> None:
    """An empty datagram is a message (UDP requests are often empty)."""
    assert DatagramCodec().feed(b"") == [Data(raw=b"")]


def test_datagram_codec_uses_message_type() -> None:
    """The message type given is the one produced."""
    assert DatagramCodec(Line).feed(b"x\n") == [Line(raw=b"x\n")]


def test_datagram_codec_receive_then_next() -> None:
    """Datagrams queue in order."""
    codec = DatagramCodec()
    codec.receive_data(b"a")
    codec.receive_data(b"")
    assert codec.next_message() == Data(raw=b"a")
    assert codec.next_message() == Data(raw=b"")
    assert codec.next_message() is None


# -- Line ------------------------------------------------------------------------


def test_line_of_adds_crlf() -> None:
    """Line.of encodes text and appends the ending."""
    assert Line.of("héllo").raw == "héllo\r\n".encode()
    assert Line.of(b"x", b"\n").raw == b"x\n"


def test_line_fields_show_text_and_terminator() -> None:
    """fields() separates the text from its exact terminator."""
    assert Line(raw=b"abc\r\n").fields() == {"line": "abc", "terminator": '"\\r\\n"'}
    assert Line(raw=b"abc").fields() == {"line": "abc", "terminator": '""'}


# -- LineCodec ---------------------------------------------------------------------


def test_line_codec_accepts_crlf_and_lf() -> None:
    """Both CRLF and bare LF end a line, and raw keeps which."""
    assert lines(LineCodec(), b"a\r\nb\nc") == [b"a\r\n", b"b\n"]


def test_line_codec_waits_for_the_rest_of_a_line() -> None:
    """A line split across chunks comes out once, whole."""
    codec = LineCodec()
    assert lines(codec, b"hel", b"lo", b"\r", b"\n") == [b"hello\r\n"]
    assert codec.buffered == 0


def test_line_codec_partial_line_at_eof_becomes_a_line() -> None:
    """By default an unterminated tail is the last line at EOF."""
    assert lines(LineCodec(), b"a\nlast", b"") == [b"a\n", b"last"]


def test_line_codec_partial_line_at_eof_can_be_an_error() -> None:
    """With partial_at_eof=False an unterminated tail is an error."""
    codec = LineCodec(partial_at_eof=False)
    codec.feed(b"tail")
    with pytest.raises(RemoteProtocolError, match="inside a line"):
        codec.feed(b"")


def test_line_codec_eof_with_nothing_buffered_is_clean() -> None:
    """EOF after whole lines yields nothing more and no error."""
    assert lines(LineCodec(partial_at_eof=False), b"a\n", b"") == [b"a\n"]


def test_line_codec_data_after_eof_is_an_error() -> None:
    """Bytes after end of stream break the stream's rules."""
    codec = LineCodec()
    codec.feed(b"")
    with pytest.raises(RemoteProtocolError, match="after end of stream"):
        codec.feed(b"x")


def test_line_codec_accepts_a_line_of_max_length() -> None:
    """A line of exactly max_length bytes, plus CRLF, is fine."""
    assert lines(LineCodec(4), b"abcd\r\n") == [b"abcd\r\n"]
    assert lines(LineCodec(4), b"abcd\n") == [b"abcd\n"]


def test_line_codec_refuses_a_longer_terminated_line() -> None:
    """A line over max_length is refused even when its LF came with it."""
    with pytest.raises(RemoteProtocolError, match="longer than 4"):
        LineCodec(4).feed(b"abcde\n")


def test_line_codec_refuses_long_unterminated_data_early() -> None:
    """Without a newline the codec fails as soon as too much is buffered,
    not when the line ends."""
    codec = LineCodec(4)
    codec.feed(b"abcd")
    with pytest.raises(RemoteProtocolError, match="longer than 4"):
        codec.feed(b"e")
    assert codec.buffered == 0


def test_line_codec_waits_for_lf_after_a_full_line_and_cr() -> None:
    """max_length bytes and a CR may wait for their LF."""
    codec = LineCodec(4)
    assert lines(codec, b"abcd\r", b"\n") == [b"abcd\r\n"]


def test_line_codec_is_spent_after_an_error() -> None:
    """After an error every call raises again."""
    codec = LineCodec(2)
    with pytest.raises(RemoteProtocolError):
        codec.feed(b"toolong")
    with pytest.raises(RemoteProtocolError):
        codec.feed(b"ok\n")
    with pytest.raises(RemoteProtocolError):
        codec.next_message()


def test_line_codec_default_cap() -> None:
    """The default cap is MAX_LINE."""
    assert LineCodec().max_length == MAX_LINE


def test_line_codec_subclass_hook() -> None:
    """decode_line is where subclasses turn lines into their messages."""

    class Upper(LineCodec):
        def decode_line(self, raw: bytes) -> Line:
            return Line(raw=raw.upper())

    assert [m.raw for m in Upper().feed(b"ab\n")] == [b"AB\n"]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=20))
def test_line_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: only protocol errors, exact re-encoding,
    and the same lines as fed whole."""
    codec_laws.stream(lambda: LineCodec(16), data, cuts)
    codec_laws.stream(lambda: LineCodec(16, partial_at_eof=False), data, cuts)
    codec_laws.stream(lambda: LineCodec(16), data, cuts, eof=False)


@SETTINGS
@given(
    data=st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"xyz"]), max_size=60).map(b"".join)
)
def test_line_codec_byte_at_a_time_equals_all_at_once(data: bytes) -> None:
    """Feeding one byte at a time gives exactly what feeding all at once
    gives, errors included."""

    def run(chunks: list[bytes]) -> tuple[list[bytes], bool]:
        codec = LineCodec(6)
        out: list[bytes] = []
        try:
            for chunk in [*chunks, b""]:
                out += [m.raw for m in codec.feed(chunk)]
        except RemoteProtocolError:
            return out, True
        return out, False

    one_by_one = run([data[i : i + 1] for i in range(len(data))])
    whole = run([data] if data else [])
    assert one_by_one[1] == whole[1]
    if not whole[1]:
        assert one_by_one[0] == whole[0]


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=50), max_size=10))
def test_datagram_codec_laws(codec_laws: CodecLaws, datagrams: list[bytes]) -> None:
    """One message per datagram, re-encoding to it exactly."""
    assert len(codec_laws.datagrams(DatagramCodec, datagrams)) == len(datagrams)


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_data_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Chunks re-encode to the stream exactly."""
    codec_laws.stream(DataCodec, data, cuts, framed=False)
