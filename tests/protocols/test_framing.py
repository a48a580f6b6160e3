"""Tests for lab/protocols/_framing.py: chunks, datagrams, lines, length-prefixed frames, dot-stuffed blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, decoding

from lab.errors import RemoteProtocolError
from lab.protocols._base import Role
from lab.protocols._framing import (
    MAX_LINE,
    BodyEnd,
    BodyPart,
    Data,
    DataDecoder,
    DatagramDecoder,
    DotReader,
    LengthPrefixDecoder,
    Line,
    LineDecoder,
    StreamBuffer,
)

SETTINGS = settings(deadline=None, max_examples=200)


def lines(decoder: LineDecoder, *chunks: bytes) -> list[bytes]:
    out = []
    for chunk in chunks:
        out += [m.raw for m in decoder.feed(chunk)]
    return out


# -- Data and DataDecoder -------------------------------------------------------


def test_data_decoder_makes_one_message_per_chunk() -> None:
    """Each received chunk is one Data message, in order."""
    decoder = DataDecoder()
    assert decoder.feed(b"ab") == [Data(raw=b"ab")]
    assert decoder.feed(b"c") == [Data(raw=b"c")]


def test_data_decoder_ignores_eof() -> None:
    """The empty chunk (end of stream) yields no message."""
    assert DataDecoder().feed(b"") == []


def test_data_decoder_receive_then_next() -> None:
    """receive_data/next_message deliver the same as feed."""
    decoder = DataDecoder()
    decoder.receive_data(b"x")
    decoder.receive_data(b"y")
    assert [decoder.next_message(), decoder.next_message(), decoder.next_message()] == [
        Data(raw=b"x"),
        Data(raw=b"y"),
        None,
    ]


def test_data_describes_its_length() -> None:
    """Data's fields are its length; its summary the escaped bytes."""
    msg = Data(raw=b"hi\r\n")
    assert msg.fields() == {"length": 4}
    assert msg.summary() == '"hi\\r\\n"'


# -- DatagramDecoder --------------------------------------------------------------


def test_datagram_decoder_keeps_empty_datagrams() -> None:
    """An empty datagram is a message (UDP requests are often empty)."""
    assert DatagramDecoder().feed(b"") == [Data(raw=b"")]


def test_datagram_decoder_uses_message_type() -> None:
    """The message type given is the one produced."""
    assert DatagramDecoder(Line).feed(b"x\n") == [Line(raw=b"x\n")]


def test_datagram_decoder_receive_then_next() -> None:
    """Datagrams queue in order."""
    decoder = DatagramDecoder()
    decoder.receive_data(b"a")
    decoder.receive_data(b"")
    assert decoder.next_message() == Data(raw=b"a")
    assert decoder.next_message() == Data(raw=b"")
    assert decoder.next_message() is None


# -- Line ------------------------------------------------------------------------


def test_line_of_adds_crlf() -> None:
    """Line.of encodes text and appends the ending."""
    assert Line.of("héllo").raw == "héllo\r\n".encode()
    assert Line.of(b"x", b"\n").raw == b"x\n"


def test_line_fields_show_text_and_terminator() -> None:
    """fields() separates the text from its exact terminator."""
    assert Line(raw=b"abc\r\n").fields() == {"line": "abc", "terminator": '"\\r\\n"'}
    assert Line(raw=b"abc").fields() == {"line": "abc", "terminator": '""'}


# -- LineDecoder ---------------------------------------------------------------------


def test_line_decoder_accepts_crlf_and_lf() -> None:
    """Both CRLF and bare LF end a line, and raw keeps which."""
    assert lines(LineDecoder(), b"a\r\nb\nc") == [b"a\r\n", b"b\n"]


def test_line_decoder_waits_for_the_rest_of_a_line() -> None:
    """A line split across chunks comes out once, whole."""
    decoder = LineDecoder()
    assert lines(decoder, b"hel", b"lo", b"\r", b"\n") == [b"hello\r\n"]
    assert decoder.buffered == 0


def test_line_decoder_partial_line_at_eof_becomes_a_line() -> None:
    """By default an unterminated tail is the last line at EOF."""
    assert lines(LineDecoder(), b"a\nlast", b"") == [b"a\n", b"last"]


def test_line_decoder_partial_line_at_eof_can_be_an_error() -> None:
    """With partial_at_eof=False an unterminated tail is an error."""
    decoder = LineDecoder(partial_at_eof=False)
    decoder.feed(b"tail")
    with pytest.raises(RemoteProtocolError, match="inside a line"):
        decoder.feed(b"")


def test_line_decoder_eof_with_nothing_buffered_is_clean() -> None:
    """EOF after whole lines yields nothing more and no error."""
    assert lines(LineDecoder(partial_at_eof=False), b"a\n", b"") == [b"a\n"]


def test_line_decoder_data_after_eof_is_an_error() -> None:
    """Bytes after end of stream break the stream's rules."""
    decoder = LineDecoder()
    decoder.feed(b"")
    with pytest.raises(RemoteProtocolError, match="after end of stream"):
        decoder.feed(b"x")


def test_line_decoder_accepts_a_line_of_max_length() -> None:
    """A line of exactly max_length bytes, plus CRLF, is fine."""
    assert lines(LineDecoder(4), b"abcd\r\n") == [b"abcd\r\n"]
    assert lines(LineDecoder(4), b"abcd\n") == [b"abcd\n"]


def test_line_decoder_refuses_a_longer_terminated_line() -> None:
    """A line over max_length is refused even when its LF came with it."""
    with pytest.raises(RemoteProtocolError, match="longer than 4"):
        LineDecoder(4).feed(b"abcde\n")


def test_line_decoder_refuses_long_unterminated_data_early() -> None:
    """Without a newline the decoder fails as soon as too much is buffered,
    not when the line ends."""
    decoder = LineDecoder(4)
    decoder.feed(b"abcd")
    with pytest.raises(RemoteProtocolError, match="longer than 4"):
        decoder.feed(b"e")
    assert decoder.buffered == 0


def test_line_decoder_waits_for_lf_after_a_full_line_and_cr() -> None:
    """max_length bytes and a CR may wait for their LF."""
    decoder = LineDecoder(4)
    assert lines(decoder, b"abcd\r", b"\n") == [b"abcd\r\n"]


def test_line_decoder_is_spent_after_an_error() -> None:
    """After an error every call raises again."""
    decoder = LineDecoder(2)
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"toolong")
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"ok\n")
    with pytest.raises(RemoteProtocolError):
        decoder.next_message()


def test_line_decoder_default_cap() -> None:
    """The default cap is MAX_LINE."""
    assert LineDecoder().max_length == MAX_LINE


def test_line_decoder_subclass_hook() -> None:
    """decode_line is where subclasses turn lines into their messages."""

    class Upper(LineDecoder):
        def decode_line(self, raw: bytes) -> Line:
            return Line(raw=raw.upper())

    assert [m.raw for m in Upper().feed(b"ab\n")] == [b"AB\n"]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=20))
def test_line_decoder_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: only protocol errors, exact re-encoding,
    and the same lines as fed whole."""
    laws.stream(decoding(lambda: LineDecoder(16)), Role.CLIENT, data, cuts)
    laws.stream(decoding(lambda: LineDecoder(16, partial_at_eof=False)), Role.CLIENT, data, cuts)
    laws.stream(decoding(lambda: LineDecoder(16)), Role.CLIENT, data, cuts, eof=False)


@SETTINGS
@given(
    data=st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"xyz"]), max_size=60).map(b"".join)
)
def test_line_decoder_byte_at_a_time_equals_all_at_once(data: bytes) -> None:
    """Feeding one byte at a time gives exactly what feeding all at once
    gives, errors included."""

    def run(chunks: list[bytes]) -> tuple[list[bytes], bool]:
        decoder = LineDecoder(6)
        out: list[bytes] = []
        try:
            for chunk in [*chunks, b""]:
                out += [m.raw for m in decoder.feed(chunk)]
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
def test_datagram_decoder_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """One message per datagram, re-encoding to it exactly."""
    assert len(laws.datagrams(decoding(DatagramDecoder), Role.CLIENT, datagrams)) == len(datagrams)


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_data_decoder_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Chunks re-encode to the stream exactly."""
    laws.stream(decoding(DataDecoder), Role.CLIENT, data, cuts, framed=False)


# -- length-prefixed frames ---------------------------------------------------------


def test_length_prefix_frames_come_whole_however_split() -> None:
    """Two-byte lengths (DNS over TCP): each frame, header included, once complete."""
    decoder = LengthPrefixDecoder()
    stream = b"\x00\x03abc\x00\x00\x00\x01z"
    assert [m.raw for m in decoder.feed(stream[:4])] == []
    assert [m.raw for m in decoder.feed(stream[4:])] == [b"\x00\x03abc", b"\x00\x00", b"\x00\x01z"]


def test_length_prefix_with_a_header_and_a_marker() -> None:
    """FLAP: a 6-byte header, '*' first, the length at offset 4; a bad marker is refused."""

    class Flap(LengthPrefixDecoder):
        def __init__(self) -> None:
            super().__init__(header=6, length_at=4, limit=8192, what="FLAP frame")

        def check_header(self, header: bytes) -> None:
            if header[:1] != b"*":
                self._fail(f"not a FLAP frame: {header[:1]!r}")

    frame = b"*\x02\x00\x01\x00\x02hi"
    assert [m.raw for m in Flap().feed(frame + frame[:3])] == [frame]
    with pytest.raises(RemoteProtocolError, match="not a FLAP frame"):
        Flap().feed(b"!\x02\x00\x01\x00\x02hi")


def test_length_prefix_refuses_a_length_over_the_limit_at_once() -> None:
    """A frame announced larger than the limit is an error before its bytes come."""
    with pytest.raises(RemoteProtocolError, match="out of range"):
        LengthPrefixDecoder(limit=100).feed(b"\x01\x00")


def test_length_prefix_stream_may_not_end_inside_a_frame() -> None:
    """EOF halfway through a frame is an error."""
    decoder = LengthPrefixDecoder()
    decoder.feed(b"\x00\x05ab")
    with pytest.raises(RemoteProtocolError, match="inside a frame"):
        decoder.feed(b"")


@SETTINGS
@given(data=st.binary(max_size=120), cuts=st.lists(st.integers(0, 200), max_size=10))
def test_length_prefix_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: frames or a protocol error, nothing lost."""
    laws.stream(decoding(lambda: LengthPrefixDecoder(limit=40)), Role.CLIENT, data, cuts)


def test_a_stream_may_switch_framing_mid_stream() -> None:
    """Lines, then a length-prefixed frame, then raw bytes, from one buffer (setRawMode)."""
    buf = StreamBuffer()
    buf.receive_data(b"HELLO\r\n\x00\x02okrest")
    assert buf.next_line(100) == b"HELLO\r\n"
    assert buf.next_frame(header=2) == b"\x00\x02ok"
    assert buf.take() == b"rest" and buf.buffered == 0


# -- dot-stuffed blocks ---------------------------------------------------------------


class Blocks(StreamBuffer):
    """Pieces of one block after another, as messages."""

    def __init__(self, whole_up_to: int = 64, max_line: int = 20) -> None:
        super().__init__()
        self.reader = DotReader(max_line=max_line, whole_up_to=whole_up_to)

    def next_message(self) -> Data | BodyPart | BodyEnd | None:
        self._check()
        piece = self.reader.read(self)
        if piece is None:
            return None
        if piece.first and piece.last:
            return Data(raw=piece.raw)
        if piece.last:
            return BodyEnd(raw=piece.raw, size=piece.size)
        return BodyPart(raw=piece.raw, content=piece.content, offset=piece.offset)


def test_a_small_block_comes_whole_and_unstuffed() -> None:
    """Within the threshold: one piece; leading dots undoubled; LF lines made CRLF."""
    reader = DotReader(max_line=100)
    buf = StreamBuffer()
    buf.receive_data(b"a\r\n..b\nc\r\n.\r\nNEXT")
    piece = reader.read(buf)
    assert piece is not None and piece.first and piece.last
    assert piece.content == b"a\r\n.b\r\nc\r\n" and piece.raw == b"a\r\n..b\nc\r\n.\r\n"
    assert buf.take() == b"NEXT"


def test_a_large_block_comes_in_parts_then_its_end() -> None:
    """Over the threshold: parts of whole lines, then the dot line alone; offsets add up."""
    msgs = Blocks(whole_up_to=10).feed(b"".join(b"line %d\r\n" % i for i in range(6)) + b".\r\n")
    assert [type(m).__name__ for m in msgs][-1] == "BodyEnd"
    parts = [m for m in msgs if isinstance(m, BodyPart)]
    assert b"".join(p.content for p in parts) == b"".join(b"line %d\r\n" % i for i in range(6))
    assert [p.offset for p in parts] == [sum(len(q.content) for q in parts[:i]) for i in range(len(parts))]
    end = msgs[-1]
    assert isinstance(end, BodyEnd) and end.raw == b".\r\n" and end.size == 48


def test_dot_block_line_cap_is_the_same_however_cut() -> None:
    """A line of exactly max_line bytes plus CRLF passes, cut anywhere; one more byte fails."""
    ok = b"x" * 20 + b"\r\n.\r\n"
    for cut in range(1, len(ok)):
        decoder = Blocks()
        assert [m.raw for m in decoder.feed(ok[:cut]) + decoder.feed(ok[cut:])] == [ok]
    for cut in (5, 20, 21, 22):
        with pytest.raises(RemoteProtocolError, match="longer than 20"):
            decoder = Blocks()
            decoder.feed(b"y" * 21 + b"\r\n"[: max(0, cut - 21)])
            decoder.feed(b"\r\n.\r\n"[max(0, cut - 21):])


_BLOCK_BITS = [b"a", b"..", b".", b"\r\n", b"\n", b"\r", b".\r\n", b"xyz" * 5, b"\x00"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_BLOCK_BITS), max_size=40).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=10))
def test_dot_block_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Blocks split anywhere: the same pieces, only protocol errors, nothing lost."""
    laws.stream(decoding(Blocks), Role.CLIENT, data, cuts)
