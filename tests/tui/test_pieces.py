"""The TUI's Textual-free pieces: the event feed, the filter language,
byte dumps, ladder diagrams (a proxy's too, from a real proxy's log),
the held-message editor's text forms, rates, path completion, the demo
table and the CLI's lab files."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import Proc
from hypothesis import given
from hypothesis import strategies as st

from lab import Lab
from lab.commands import Interpreter
from lab.endpoints import Server
from lab.errors import CommandError, LabError
from lab.eventlog import Direction, EventKind, EventLog
from lab.filtering import parse_filter
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data
from lab.protocols.echo import SPEC as ECHO
from lab.protocols.smtp._codec import Command, Reply
from lab.tui.cli import lab_starter, read_lab_file, shown_path
from lab.tui.dump import as_escaped, as_hex, hexdump
from lab.tui.editor import changed_fields, editable_fields, fields_text, parse_fields, parse_raw, raw_text
from lab.tui.endpoints import short_address
from lab.tui.feed import EventFeed
from lab.tui.ladder import Fate, Way, build_ladder, build_proxy_ladder
from lab.tui.prompt import complete_path
from lab.tui.rates import Rates, sparkline

LIBRARY = Path(__file__).parent.parent.parent / "scenarios"


def sample_log() -> EventLog:
    log = EventLog()
    log.emit(EventKind.LISTEN, "echo", protocol="echo", text="echo listening on tcp://127.0.0.1:7")
    log.emit(EventKind.OPEN, "echo", "echo#1", protocol="echo", text="127.0.0.1:5 -> 127.0.0.1:7")
    for direction, raw in ((Direction.IN, b"Hello\r\n"), (Direction.OUT, b"Hello\r\n"), (Direction.IN, b"bye\r\n")):
        msg = ECHO.conversation(Role.SERVER, Transport.TCP).feed(raw)[0]
        log.emit(EventKind.MESSAGE, "echo", "echo#1", direction, "echo", raw=raw, message=msg)
    log.emit(EventKind.MESSAGE, "c1", "c1", Direction.OUT, "finger", raw=b"alice\r\n")
    log.emit(EventKind.CLOSE, "echo", "echo#1", protocol="echo", text="closed")
    return log


def test_feed_is_bounded_and_counts_what_it_dropped() -> None:
    """The reactor-side callback only appends; past capacity the oldest queued events go, counted."""
    log = EventLog()
    feed = EventFeed(log, capacity=10)
    feed.start()
    for i in range(25):
        log.emit(EventKind.INFO, "x", text=str(i))
    assert len(feed) == 10 and feed.dropped == 15
    assert [e.text for e in feed.drain(4)] == ["15", "16", "17", "18"]
    assert [e.text for e in feed.drain()] == [str(i) for i in range(19, 25)]
    assert feed.dropped == 15
    feed.stop()
    log.emit(EventKind.INFO, "x", text="after")
    assert feed.drain() == [] and len(log) == 26


@pytest.mark.parametrize(("text", "kept"), [
    ("", [1, 2, 3, 4, 5, 6, 7]),
    ("e:echo", [1, 2, 3, 4, 5, 7]),
    ("e:ec*", [1, 2, 3, 4, 5, 7]),
    ("c:echo#1 in", [3, 5]),
    ("->", [4, 6]),
    ("dir:out p:finger", [6]),
    ("k:msg -p:finger", [3, 4, 5]),
    ("hello", [3, 4]),
    ("/^\"b/", [5]),
    ("/HELLO/i !out", [3]),
    ('"listening on"', [1]),
    ("/alice/", [6]),
])
def test_filter_language_keeps_what_it_says(text: str, kept: list[int]) -> None:
    flt = parse_filter(text)
    assert [e.seq for e in sample_log() if flt(e)] == kept


@pytest.mark.parametrize(("text", "message"), [
    ("k:bogus", "unknown event kind 'bogus'"),
    ("dir:sideways", "unknown direction"),
    ("/(/", "bad regular expression"),
    ("e:", "needs a value"),
    ('"open', "close the quote"),
])
def test_filter_mistakes_are_one_line_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_filter(text)
    assert message in str(err.value)


@given(st.text(max_size=40))
def test_any_filter_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        flt = parse_filter(text)
    except CommandError:
        return
    for event in sample_log():
        flt(event)


def test_hexdump_shows_offsets_hex_and_ascii() -> None:
    dump = hexdump(b"HELO lab\r\n\x00\xff", width=8)
    assert dump.splitlines() == [
        "00000000  48 45 4c 4f  20 6c 61 62  |HELO lab|",
        "00000008  0d 0a 00 ff               |....|",
    ]
    assert hexdump(bytes(100), width=16, limit=32).splitlines()[-1] == "… 68 more bytes (100 in all)"
    assert hexdump(b"") == ""


@given(st.binary(max_size=300))
def test_copy_formats_round_trip(data: bytes) -> None:
    """Hex reads back with bytes.fromhex; the escaped string is one line of printable ASCII."""
    assert bytes.fromhex(as_hex(data)) == data
    escaped = as_escaped(data)
    assert escaped.startswith('"') and escaped.endswith('"') and "…" not in escaped
    assert all(0x20 <= ord(ch) < 0x7F for ch in escaped)


def test_ladder_orders_rungs_and_knows_which_way_they_go() -> None:
    log = sample_log()
    server_view = build_ladder(log, "echo#1", server_side=True)
    assert [(r.way, r.text) for r in server_view.rungs] == [
        (Way.NOTE, "open: 127.0.0.1:5 -> 127.0.0.1:7"),
        (Way.TO_SERVER, '"Hello\\r\\n"'), (Way.TO_CLIENT, '"Hello\\r\\n"'), (Way.TO_SERVER, '"bye\\r\\n"'),
        (Way.NOTE, "close: closed"),
    ]
    client_view = build_ladder(log, "c1", server_side=False)
    assert [r.way for r in client_view.rungs] == [Way.TO_SERVER]
    text = server_view.to_text(60)
    assert all(len(line) <= 60 for line in text)
    rungs = [line for line in text if '"' in line]
    assert rungs[0].rstrip().endswith(">|") and "|<" in rungs[1]


def test_ladder_exports_mermaid_and_svg_that_parse() -> None:
    ladder = build_ladder(sample_log(), "echo#1", server_side=True)
    mermaid = ladder.to_mermaid().splitlines()
    assert mermaid[0] == "sequenceDiagram"
    assert mermaid[1] == "    participant C as client 127.0.0.1:5"
    assert mermaid[2] == "    participant S as echo#35;1 127.0.0.1:7"  # '#' is Mermaid syntax: written as a code
    assert mermaid[4:7] == ['    C->>S: "Hello\\r\\n"', '    S->>C: "Hello\\r\\n"', '    C->>S: "bye\\r\\n"']
    assert mermaid[3] == "    Note over C,S: open: 127.0.0.1:5 -#62; 127.0.0.1:7"
    root = ET.fromstring(ladder.to_svg())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert [line.get("marker-end") for line in root.iter(f"{ns}line")].count("url(#arrow)") == 3
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert texts.index('"Hello\\r\\n"') < texts.index('"bye\\r\\n"')


def test_svg_escapes_markup_in_messages() -> None:
    log = EventLog()
    log.emit(EventKind.MESSAGE, "h", "h#1", Direction.IN, "x", text="<script>&</script>")
    svg = build_ladder(log, "h#1", server_side=True).to_svg()
    assert "<script>" not in svg
    assert ET.fromstring(svg) is not None


def proxied_log() -> EventLog:
    """A proxy connection's events as lab.proxy and lab.intercept log them: MAIL held and edited,
    a NOOP queued behind it, RCPT then held and dropped, a reply injected toward the client."""
    log = EventLog()

    def say(direction: Direction, text: str) -> None:
        log.emit(EventKind.MESSAGE, "px", "px#1", direction, "smtp", text=text)

    def note(text: str) -> None:
        log.emit(EventKind.INFO, "px", "px#1", text=text)

    log.emit(EventKind.OPEN, "px", "px#1", protocol="smtp", text="127.0.0.1:5 -> 127.0.0.1:25 -> 127.0.0.1:2525")
    say(Direction.IN, "EHLO x")
    say(Direction.OUT, "250 hi")
    say(Direction.IN, "MAIL FROM:<a@x>")
    note("held h1: MAIL FROM:<a@x> (m:MAIL in)")
    say(Direction.IN, "NOOP")
    say(Direction.IN, "RCPT TO:<r@x>")
    note('edited h1: MAIL FROM:<a@x> -> MAIL FROM:<b -> c@x> ("MAIL FROM:<b -> c@x> (\\"\\r\\n")')
    note("held h2: RCPT TO:<r@x> (m:RCPT in)")
    note("dropped h2: RCPT TO:<r@x>")
    note("injected toward the client: 8 bytes")
    log.emit(EventKind.DATA, "px", "px#1", Direction.OUT, "smtp", "injected b'250 ok'", b"250 ok\r\n")
    log.emit(EventKind.CLOSE, "px", "px#1", protocol="smtp", text="closed")
    return log


def test_a_proxy_ladder_follows_holds_edits_drops_and_injections() -> None:
    """Passing messages cross the proxy; a held one stops there until its edit goes on with the new
    summary; what waited behind it goes on then, unless held in turn; a drop goes nowhere."""
    ladder = build_proxy_ladder(proxied_log(), "px#1")
    assert (ladder.client, ladder.proxy, ladder.server) == (
        "client 127.0.0.1:5", "px#1 127.0.0.1:25", "server 127.0.0.1:2525")
    assert [(r.way, r.fate, r.held, r.text) for r in ladder.rungs if r.way is not Way.NOTE] == [
        (Way.TO_SERVER, Fate.PASSED, "", "EHLO x"),
        (Way.TO_CLIENT, Fate.PASSED, "", "250 hi"),
        (Way.CLIENT_TO_PROXY, Fate.HELD, "h1", "MAIL FROM:<a@x>"),
        (Way.CLIENT_TO_PROXY, Fate.QUEUED, "", "NOOP"),
        (Way.CLIENT_TO_PROXY, Fate.HELD, "h2", "RCPT TO:<r@x>"),
        (Way.PROXY_TO_SERVER, Fate.EDITED, "h1", "MAIL FROM:<b -> c@x>"),
        (Way.PROXY_TO_SERVER, Fate.PASSED, "", "NOOP"),
        (Way.PROXY_TO_SERVER, Fate.DROPPED, "h2", "RCPT TO:<r@x>"),
        (Way.PROXY_TO_CLIENT, Fate.INJECTED, "", '"250 ok\\r\\n"'),
    ]
    assert [r.text for r in ladder.rungs if r.way is Way.NOTE] == [
        "open: 127.0.0.1:5 -> 127.0.0.1:25 -> 127.0.0.1:2525", "close: closed"]
    for width in (50, 80, 131):
        lines = ladder.to_text(width)
        assert all(len(line) <= width for line in lines), width
        assert all(line.count("|") == 3 for line in lines[1:] if "·" not in line)
    lines = ladder.to_text(80)
    held = next(line for line in lines if "MAIL FROM:<a@x>" in line)
    assert held.index("MAIL") < held.index(">|") < held.index("⏸ held h1")
    edited = next(line for line in lines if "MAIL FROM:<b" in line)
    assert edited.index("✎ edited h1") < edited.index("|-") and edited.rstrip().endswith(">|")
    dropped = next(line for line in lines if "dropped h2" in line)
    assert ">|" not in dropped and "✗ RCPT TO:<r@x>" in dropped
    mermaid = ladder.to_mermaid().splitlines()
    assert mermaid[1:4] == ["    participant C as client 127.0.0.1:5", "    participant P as px#35;1 127.0.0.1:25",
                            "    participant S as server 127.0.0.1:2525"]
    assert mermaid.index("    C->>P: EHLO x") + 1 == mermaid.index("    P->>S: EHLO x")
    assert "    Note over P: ⏸ held h1" in mermaid and "    Note over P: ✗ dropped h2: RCPT TO:#60;r@x#62;" in mermaid
    root = ET.fromstring(ladder.to_svg())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "⏸ held h1" in texts and "✗ RCPT TO:<r@x>" in texts


def test_a_real_proxys_log_draws_as_its_intercepts_acted(lab: Lab) -> None:
    """The notes a real proxy and its intercepts log: three pipelined commands, the first held; its
    release lets the second go on and holds the third, which is dropped; a 354 held on its way back."""
    lab.serve("smtp", name="mx")
    lab.proxy("smtp", to="mx", name="px")
    lab.intercept("px", "m:RCPT in")
    lab.intercept("px", "354 out")
    client = lab.connect("smtp", "px", name="c")
    client.expect(220)
    client.send("EHLO x\r\n")
    client.expect(250)
    client.send("MAIL FROM:<a@lab.test>\r\n")
    client.expect("sender")
    client.send("RCPT TO:<x@lab.test>\r\nNOOP\r\nRCPT TO:<y@lab.test>\r\n")
    (first,) = lab.wait_held(1)
    lab.release(first.id)
    client.expect("250 2.0.0")  # the NOOP's answer
    (second,) = lab.wait_held(1)
    lab.drop(second.id)
    client.send("DATA\r\n")
    (third,) = lab.wait_held(1)
    lab.release(third.id)
    client.expect(354)
    rungs = [(r.way, r.fate, r.text.split(" ")[0]) for r in build_proxy_ladder(lab.log.snapshot(), "px#1").rungs
             if r.way is not Way.NOTE]
    assert rungs == [
        (Way.TO_CLIENT, Fate.PASSED, "220"), (Way.TO_SERVER, Fate.PASSED, "EHLO"), (Way.TO_CLIENT, Fate.PASSED, "250"),
        (Way.TO_SERVER, Fate.PASSED, "MAIL"), (Way.TO_CLIENT, Fate.PASSED, "250"),
        (Way.CLIENT_TO_PROXY, Fate.HELD, "RCPT"), (Way.CLIENT_TO_PROXY, Fate.QUEUED, "NOOP"),
        (Way.CLIENT_TO_PROXY, Fate.HELD, "RCPT"),
        (Way.PROXY_TO_SERVER, Fate.RELEASED, "RCPT"), (Way.PROXY_TO_SERVER, Fate.PASSED, "NOOP"),
        (Way.TO_CLIENT, Fate.PASSED, "250"), (Way.TO_CLIENT, Fate.PASSED, "250"),
        (Way.PROXY_TO_SERVER, Fate.DROPPED, "RCPT"),
        (Way.TO_SERVER, Fate.PASSED, "DATA"), (Way.SERVER_TO_PROXY, Fate.HELD, "354"),
        (Way.PROXY_TO_CLIENT, Fate.RELEASED, "354"),
    ]


def test_proxy_addresses_are_short_on_both_sides() -> None:
    assert short_address("tcp://127.0.0.1:7025 -> 127.0.0.1:2525") == ":7025 → :2525"
    assert short_address("udp://127.0.0.1:5353 -> 10.0.0.1:53") == "udp::5353 → 10.0.0.1:53"
    assert short_address("tcp://127.0.0.1:7007") == ":7007"


def test_the_editor_shows_a_messages_editable_fields_and_reads_them_back() -> None:
    """NAME=VALUE lines, one per item of a list field; only what changed is an edit; mistakes are one line."""
    mail = Command.of("MAIL", "FROM:<a@x>")
    assert editable_fields(mail) == {"verb": "MAIL", "arg": "FROM:<a@x>"}
    assert fields_text(editable_fields(mail)) == "verb=MAIL\narg=FROM:<a@x>"
    reply = Reply.of(250, "lab.test", "PIPELINING")
    fields = editable_fields(reply)
    assert fields == {"code": "250", "lines": ["lab.test", "PIPELINING"]}
    assert fields_text(fields) == "code=250\nlines=lab.test\nlines=PIPELINING"
    assert editable_fields(Data(raw=b"x")) == {}
    typed = parse_fields("code=250\n\n# a comment\nlines=lab.test\nlines=SIZE 100\n")
    assert changed_fields(fields, typed) == {"lines": ["lab.test", "SIZE 100"]}
    assert changed_fields(fields, parse_fields("lines=")) == {"lines": []}
    assert changed_fields(fields, parse_fields(fields_text(fields))) == {}
    assert changed_fields(editable_fields(mail), parse_fields("arg=TO:<b@x>\nbogus=1")) == {
        "arg": "TO:<b@x>", "bogus": "1"}  # the protocol refuses bogus, with the fields it has
    with pytest.raises(CommandError, match="line 2: NAME=VALUE expected, not 'arg FROM'"):
        parse_fields("verb=MAIL\narg FROM")
    with pytest.raises(CommandError, match="verb is given 2 times"):
        changed_fields(editable_fields(mail), parse_fields("verb=A\nverb=B"))


def test_raw_text_shows_line_ends_and_reads_back() -> None:
    assert raw_text(b"250-a\r\n250 b\r\n") == "250-a\\r\\n\n250 b\\r\\n"
    assert raw_text(b"a\\nb") == "a\\\\nb"  # a backslash and an n are not a line end
    assert parse_raw("MAIL FROM:<a>\\r\\n\n") == b"MAIL FROM:<a>\r\n"
    with pytest.raises(CommandError, match="unknown escape"):
        parse_raw("\\q")
    with pytest.raises(CommandError, match="no bytes left"):
        parse_raw("\n\n")


@given(st.binary(min_size=1, max_size=200))
def test_raw_text_round_trips(data: bytes) -> None:
    assert parse_raw(raw_text(data)) == data


def test_rates_count_events_and_bytes_once_per_endpoint() -> None:
    log = EventLog()
    rates = Rates(history=3)
    chunk = b"a\r\nb\r\n"
    events = [
        log.emit(EventKind.DATA, "s", "s#1", Direction.IN, "echo", raw=chunk),
        log.emit(EventKind.MESSAGE, "s", "s#1", Direction.IN, "echo", raw=b"a\r\n"),
        log.emit(EventKind.MESSAGE, "s", "s#1", Direction.IN, "echo", raw=b"b\r\n"),
        log.emit(EventKind.MESSAGE, "s", "s#1", Direction.OUT, "echo", raw=b"a\r\n"),
    ]
    rates.count(events)
    rates.tick(2.0)
    assert list(rates.events["s"]) == [2.0] and list(rates.bytes["s"]) == [4.5]
    for _ in range(3):
        rates.tick()
    assert "s" not in rates.events  # quiet for the whole window: forgotten


def test_sparkline_scales_to_the_peak() -> None:
    line = sparkline([0, 5, 10], 5)
    assert len(line) == 5 and line.endswith("█") and line[2] == " "
    assert sparkline([], 3) == "   "


def test_demo_skips_protocols_this_netlab_lacks() -> None:
    from lab import demo

    names = {s.protocol for s in demo.available_services()}
    assert {"echo", "finger"} <= names
    extra = demo.DemoService("nope", "no-such-protocol", lambda c, n: c.aget())
    demo.DEMO_SERVICES.append(extra)
    try:
        assert extra not in demo.available_services()
    finally:
        demo.DEMO_SERVICES.remove(extra)


def run_netlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_tui_help_and_a_missing_lab_file_is_one_line() -> None:
    """`netlab tui --help` documents the modes; a missing lab file is one line and exit 2."""
    out = run_netlab("tui", "--help")
    assert out.returncode == 0 and "--empty" in out.stdout and "LABFILE" in out.stdout
    missing = run_netlab("tui", "no-such-lab.yaml")
    assert missing.returncode == 2
    assert missing.stderr == "no-such-lab.yaml: no such file\n"


@pytest.mark.parametrize(("text", "where", "says"), [
    ("lab:\n  e: {protocol: echo}\n  f: {protocol: fingr}\n", "3:17", "unknown protocol 'fingr'"),
    ("lab:\n  e: {protocol: echo, port: 99999}\n", "2:29", "port 99999 is out of range"),
    ("lab:\n  e: {protocol: echo\n", "3:1", ""),
    ("name: x\nsteps:\n  - expct: {from: c, text: hi}\n", "3:5", "unknown step 'expct'"),
])
def test_a_bad_lab_file_is_the_validators_one_line_and_exit_2(tmp_path: Path, text: str, where: str,
                                                            says: str) -> None:
    """The file is validated before the screen opens: FILE:LINE:COL: what is wrong, on one line, exit 2."""
    labfile = tmp_path / "bad.yaml"
    labfile.write_text(text)
    out = run_netlab("tui", str(labfile))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"{labfile}:{where}: "), out.stderr
    assert says in out.stderr


def test_a_recording_from_an_empty_lab_opens_and_an_empty_file_is_refused(tmp_path: Path) -> None:
    """A recording that serves from its steps opens (its steps for `s` to
    run); a file with neither servers nor steps: one line, exit 2, what to do."""
    recording = tmp_path / "rec.yaml"
    recording.write_text("lab: {}\nsteps:\n  - serve: {as: e, protocol: echo}\n")
    scenario = read_lab_file(str(recording))
    assert not scenario.servers and [s.kind for s in scenario.steps] == ["serve"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: nothing\nlab: {}\n")
    out = run_netlab("tui", str(empty))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"{empty} has no `lab:` servers to start and no steps to run" in out.stderr


def test_a_saved_lab_file_starts_its_servers(tmp_path: Path, lab: Lab) -> None:
    """What `save FILE` writes is a lab file the console starts: same protocols and options."""
    lab.serve("finger", name="f", user=["alice=Alice Liddell"])
    lab.serve("echo", name="e")
    saved = tmp_path / "saved.yaml"
    Interpreter(lab).execute(f"save {saved} --free-ports", 30)
    scenario = read_lab_file(str(saved))
    assert [d.name for d in scenario.servers] == ["f", "e"]
    with Lab.start() as fresh:
        fresh.reactor.call(lab_starter(scenario)(fresh))
        finger = fresh["f"]
        assert isinstance(finger, Server) and finger.spec.name == "finger" and finger.port != lab["f"].port
        assert "Alice Liddell" in fresh.connect("finger", "f", name="q").query("alice")  # type: ignore[attr-defined]
        assert fresh["e"].protocol == "echo"


def test_a_lesson_starts_its_lab_and_a_busy_port_names_the_line(tmp_path: Path, lab: Lab) -> None:
    """A lesson under scenarios/ opens as a lab; a server that cannot start names its file and line."""
    lesson = LIBRARY / "finger" / "finger-lookup.yaml"
    scenario = read_lab_file(str(lesson))
    assert scenario.steps  # `s` in the console can run them
    lab.reactor.call(lab_starter(scenario)(lab))
    assert lab["f"].protocol == "finger"
    with Lab.start() as other:
        holder = other.serve("echo", name="holder")
        taken = tmp_path / "taken.yaml"
        taken.write_text(f"lab:\n  e: {{protocol: echo}}\n  again: {{protocol: echo, port: {holder.port}}}\n")
        with pytest.raises(LabError, match=r"taken\.yaml:3:10: lab server 'again': .*port is taken"):
            other.reactor.call(lab_starter(read_lab_file(str(taken)))(other))
        assert "e" in other.endpoints


def test_plain_netlab_without_a_terminal_prints_the_text_demo() -> None:
    """Piped (not a terminal), `netlab` keeps printing the demo as text; --help names the console."""
    assert "the lab console (TUI)" in run_netlab("--help").stdout
    with Proc([sys.executable, "-m", "lab"]) as proc:
        proc.wait_for(r"demo\d+\s+(->|<-)", timeout=60)
        assert proc.stop() == 0


def test_path_completion_offers_scenario_files_and_directories(tmp_path: Path) -> None:
    """Tab in the file prompt: the common part of the matching names, directories with a slash,
    only .yaml files, dot files only when asked for."""
    for name in ("a.yaml", "ab.yaml", "abc.txt", ".hidden.yaml"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    yaml = (".yaml", ".yml")
    base = str(tmp_path)
    assert complete_path(f"{base}/a", yaml) == (f"{base}/a", ["a.yaml", "ab.yaml"])
    assert complete_path(f"{base}/ab", yaml) == (f"{base}/ab.yaml", ["ab.yaml"])
    assert complete_path(f"{base}/ab") == (f"{base}/ab", ["ab.yaml", "abc.txt"])
    assert complete_path(f"{base}/s", yaml) == (f"{base}/sub/", ["sub/"])
    assert complete_path(f"{base}/.", yaml) == (f"{base}/.hidden.yaml", [".hidden.yaml"])
    assert complete_path(f"{base}/", yaml) == (f"{base}/", ["a.yaml", "ab.yaml", "sub/"])
    assert complete_path(f"{base}/zzz", yaml) == (f"{base}/zzz", [])
    assert complete_path(f"{base}/no/such/dir/x", yaml) == (f"{base}/no/such/dir/x", [])


def test_stats_show_every_busy_endpoint_one_row_each_when_two_do_not_fit() -> None:
    """Two rows per endpoint while they fit; then one row each; past the
    height, the quietest are counted in a last line."""
    from lab.tui.rates import Rates
    from lab.tui.statspanel import stats_lines

    rates = Rates()
    for i in range(12):
        rates._events_now[f"ep{i}"] = 12 - i
        rates._bytes_now[f"ep{i}"] = 100 * (12 - i)
    rates.tick()
    names = rates.busiest()
    assert len(stats_lines(rates, {}, names[:3], 40, 10)) == 6  # two rows each
    lines = [line.plain for line in stats_lines(rates, {}, names, 40, 14)]
    assert len(lines) == 12 and lines[0].startswith("ep0 ") and lines[-1].startswith("ep11")
    assert all(len(line) <= 40 for line in lines), lines
    lines = [line.plain for line in stats_lines(rates, {}, names, 40, 8)]
    assert len(lines) == 8 and lines[-1] == "+5 more, quieter"


def test_shown_path_keeps_a_short_path_and_cuts_a_long_one_to_its_tail(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path("lessons/mail.yaml") == "lessons/mail.yaml"
    assert shown_path(str(tmp_path / "lessons" / "mail.yaml")) == "lessons/mail.yaml"  # inside here: relative
    deep = "/srv/" + "x" * 60 + "/scenarios/echo/echo-basics.yaml"
    assert shown_path(deep) == "…/echo/echo-basics.yaml"
    assert shown_path("/short/a.yaml") == "/short/a.yaml"
