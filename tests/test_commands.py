"""The command language: parsing, running against a lab, errors with hints, completion."""

from __future__ import annotations

import re

import pytest

from lab import CommandError, Lab
from lab.commands import Interpreter, command, commands, parse_pattern, split_statements, unescape
from lab.protocols._framing import Line


@pytest.fixture
def interp(lab: Lab) -> Interpreter:
    return Interpreter(lab)


def test_statements_split_on_semicolons_newlines_and_respect_quotes() -> None:
    """`;` and newlines separate statements, quotes keep words together, # comments."""
    stmts = split_statements('serve echo; send c "a; b"\n# note\nls # trailing')
    assert [s.words for s in stmts] == [("serve", "echo"), ("send", "c", "a; b"), ("ls",)]
    assert [s.line for s in stmts] == [1, 1, 3]


def test_unescape_handles_c_escapes() -> None:
    """\\r \\n \\t \\0 \\xHH and \\\\ become bytes; unknown escapes are errors."""
    assert unescape(r"a\r\n\t\x00\\z é") == b"a\r\n\t\x00\\z \xc3\xa9"
    with pytest.raises(CommandError, match="unknown escape"):
        unescape(r"\q")


def test_patterns() -> None:
    """/re/ is a regex (/re/i ignores case), digits a code, anything else text."""
    rx = parse_pattern("/^he.lo/i")
    assert isinstance(rx, re.Pattern) and rx.flags & re.IGNORECASE
    assert parse_pattern("250")(Line.of("250 ok"))
    assert parse_pattern(r"tab\there") == "tab\there"


def test_a_script_runs_in_order(interp: Interpreter) -> None:
    """The issue's example: serve, connect by name, send, expect."""
    results = interp.execute("serve echo; connect echo echo1 as c; send c hi; expect c hi")
    assert [r.command for r in results] == ["serve", "connect", "send", "expect"]
    assert results[3].value.raw == b"hi\r\n"
    assert results[3].text == 'c <- "hi\\r\\n"'


def test_connect_infers_the_protocol_from_a_lab_server(interp: Interpreter) -> None:
    """`connect NAME` uses the server's protocol."""
    interp.execute("serve echo --udp as u; connect u as c")
    assert interp.lab["c"].transport.value == "udp"


def test_send_options(interp: Interpreter) -> None:
    """-n sends no line ending, --hex sends bytes from hex digits."""
    interp.execute("serve echo; connect echo1 as c; send c -n abc; expect c abc")
    (r,) = interp.execute("send c --hex 00ff0d0a")
    assert r.value == 4
    assert interp.lab["c"].receive().raw == b"\x00\xff\r\n"


def test_ls_log_help_render_text(interp: Interpreter) -> None:
    """ls shows a table, log the recent events, help the commands and their usage."""
    interp.execute("serve echo as e; connect e as c; send c ping; expect c ping")
    (ls,) = interp.execute("ls")
    assert ls.text.splitlines()[0].split()[:3] == ["NAME", "KIND", "PROTO"]
    (log,) = interp.execute("log -n 2 --in")
    assert [e.direction.value for e in log.value] == ["in", "in"]
    (js,) = interp.execute("log -n 1 --json")
    assert js.text.startswith("{")
    (h,) = interp.execute("help")
    assert all(name in h.text for name in commands())
    (hs,) = interp.execute("help serve")
    assert "--port" in hs.text and "as NAME" in hs.text


def test_serve_takes_protocol_options(interp: Interpreter) -> None:
    """Protocol options after the protocol name reach the server."""
    (r,) = interp.execute('serve finger --user "alice=Alice Liddell" as f')
    assert r.value.options.user


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("sned c hi", "unknown command 'sned' — did you mean 'send'?"),
        ("serve ehco", "unknown protocol 'ehco' — did you mean 'echo'?"),
        ("serve echo --prot 1", "unrecognized arguments: --prot 1"),
        ("serve echo --port x", "invalid int value"),
        ("serve echo --port 70000", "out of range"),
        ("send nobody hi", "no endpoint named 'nobody'"),
        ('send c "open', "No closing quotation"),
        ("connect echo nosuch", "no server named 'nosuch'"),
        ("stop ghost", "no endpoint named 'ghost'"),
        ("serve echo as", "`as` needs a name"),
        ("log -n -1", "-n must be 0 or more"),
        ("help nothing", "unknown command 'nothing'"),
    ],
)
def test_mistakes_are_one_line_errors_with_hints(interp: Interpreter, script: str, message: str) -> None:
    """Every user mistake is a CommandError naming the problem, never a traceback."""
    with pytest.raises(CommandError) as info:
        interp.execute(script)
    assert message in str(info.value)
    assert "\n" not in str(info.value).split("usage:")[0]


def test_a_bad_line_stops_the_script_before_anything_runs(interp: Interpreter) -> None:
    """Parsing the whole script first means a typo on line 2 changes nothing."""
    with pytest.raises(CommandError, match="line 2"):
        interp.execute("serve echo as e\nsned c hi")
    assert "e" not in interp.lab


def test_a_failing_step_names_the_statement(interp: Interpreter) -> None:
    """A runtime failure (timeout) says which statement and what arrived."""
    interp.execute("serve echo; connect echo1 as c; send c apples")
    with pytest.raises(CommandError, match=r"`expect c pears -t 0.3`: c: expected 'pears'.*apples"):
        interp.execute("expect c pears -t 0.3")


def test_completion(interp: Interpreter) -> None:
    """Completion offers commands, protocols, options and endpoint names."""
    interp.execute("serve echo as e; connect e as c")
    assert interp.complete("se") == ["send", "serve"]
    assert "echo" in interp.complete("serve ")
    assert interp.complete("serve echo --po") == ["--port"]
    assert interp.complete("send ") == ["c"]
    assert interp.complete("stop ") == ["all", "c", "e"]
    assert interp.complete("ls; exp") == ["expect"]
    assert interp.complete("nonsense ") == []


def test_every_command_has_help_and_summary() -> None:
    """`help X` works for each command and mentions its name."""
    for name, cmd in commands().items():
        assert cmd.summary and name in command(name).help()


def test_options_before_the_protocol(interp: Interpreter) -> None:
    """`serve --port 0 finger --user ...`: an option value is not taken for the protocol."""
    (r,) = interp.execute('serve --port 0 finger --user "bob=Bob" as f')
    assert r.value.spec.name == "finger" and r.value.options.user


def test_connect_client_options(interp: Interpreter) -> None:
    """-o NAME=VALUE sets the protocol's client options before the socket
    opens; a repeated list option gathers; mistakes are one line with a hint."""
    interp.execute("serve telnet as t; connect t -o terminal=VT220 -o terminal=VT100 -o width=132 as c")
    client = interp.lab["c"]
    assert client.verbs.terminals == ["VT220", "VT100"] and client.verbs.window == (132, 24)
    assert client.given_options == {"terminal": ["VT220", "VT100"], "width": "132"}
    with pytest.raises(CommandError, match=r"unknown client option 'colour'") as info:
        interp.execute("connect t -o colour=red as d")
    assert "terminal" in (info.value.hint or "")
    with pytest.raises(CommandError, match="NAME=VALUE"):
        interp.execute("connect t -o width as d")
    with pytest.raises(CommandError, match="1-65535"):
        interp.execute("connect t -o width=0 as d")
    assert "d" not in interp.lab
    assert sorted(interp.complete("connect t -o ")) == ["height=", "negotiate=", "terminal=", "width="]


def test_as_name_may_come_before_options(interp: Interpreter) -> None:
    """`serve smtp as mx --port N` names the server as `serve smtp --port N as mx` does;
    `as` twice or at the end is a one-line error."""
    (res,) = interp.execute("serve echo as e1 --capture off")
    assert res.value.name == "e1" and res.value.capture.value == "off"
    with pytest.raises(CommandError, match="given twice"):
        interp.execute("serve echo as a as b")
    with pytest.raises(CommandError, match="needs a name"):
        interp.execute("serve echo as")


def test_call_without_a_verb_lists_them_with_their_arguments(interp: Interpreter) -> None:
    """`call c` shows each verb as it is typed (no timeout, no annotations)."""
    interp.execute("serve finger as f; connect f as c")
    with pytest.raises(CommandError) as err:
        interp.execute("call c")
    text = str(err.value)
    assert "which verb? `call c VERB" in text
    assert re.search(r"^  query\(user='', \*, verbose=False, hosts=\(\)\)$", text, re.M), text
    assert "timeout" not in text and "'str'" not in text


def test_call_arguments_take_escapes() -> None:
    """A quoted `\\r\\n` in a verb's argument is a line end, as in `send`."""
    from lab.commands.call import split_arguments

    assert split_arguments([r"Subject: x\r\n\r\nhi", "7", r"a\\b"]) == (["Subject: x\r\n\r\nhi", 7, "a\\b"], {})


def test_log_save_and_export_write_files_and_refuse_to_overwrite(interp: Interpreter, tmp_path) -> None:
    """`log save FILE` and `log export --pcap FILE` take log's filters, report
    what they wrote, and need --force to overwrite; plain `log` is unchanged."""
    from lab.logfile import load

    interp.execute("serve echo as e; connect e as c; send c ping; expect c ping")
    saved = tmp_path / "e.jsonl"
    (res,) = interp.execute(f"log save {saved} -e c")
    assert res.text == f"saved {res.value.events} events ({saved.stat().st_size:,} bytes) to {saved}"
    assert {e.endpoint for e in load(saved)} == {"c"} and res.value.events >= 3
    with pytest.raises(CommandError, match="exists — add --force to overwrite it"):
        interp.execute(f"log save {saved}")
    (again,) = interp.execute(f"log save --force {saved}")
    assert again.value.events > res.value.events
    (pcap,) = interp.execute(f"log export --pcap {tmp_path / 'e.pcapng'} -e e")
    assert pcap.value.connections == 1 and pcap.text.endswith(f"to {tmp_path / 'e.pcapng'}")
    with pytest.raises(CommandError, match="--pcap"):
        interp.execute("log export")
    assert interp.execute("log -n 2 --json")[0].text.count("\n") == 1
    assert interp.execute("log")[0].value
    assert interp.complete("log ") == ["export", "save"] and interp.complete("log export --pc") == ["--pcap"]
    assert "log save FILE" in interp.execute("help log")[0].text
