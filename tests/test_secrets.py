"""Secrets on disk: a real session with passwords (poplib USER/PASS and
APOP, smtplib AUTH PLAIN and LOGIN, the telnet console) writes every file
netlab can write, and none holds the password or its base64 forms unless
the lab keeps secrets; live views mask it and reveal it on request.

Interop over loopback sockets with the stdlib's clients.
"""

from __future__ import annotations

import base64
import poplib
import re
import smtplib
import socket
from pathlib import Path

import pytest
from helpers import wait_until

from lab import Lab
from lab.commands import Interpreter
from lab.eventlog import Direction, EventFilter, EventKind, EventLog, format_event

PASSWORD = "Sekr1tConsole"
FORMS = [
    PASSWORD.encode(),
    base64.b64encode(PASSWORD.encode()),  # AUTH LOGIN's answer
    base64.b64encode(b"\0alice\0" + PASSWORD.encode()),  # AUTH PLAIN's blob
    b"wrongGuess1",  # a failed console guess is a secret too
]


def _read_until(sock: socket.socket, mark: bytes) -> bytes:
    got = b""
    while mark not in got:
        data = sock.recv(4096)
        if not data:
            raise EOFError(got)
        got += data
    return got


def _session(tmp: Path, keep_secrets: bool) -> list[Path]:
    """Every way netlab writes a file, around logins of every protocol
    that has one; returns the files written."""
    lab = Lab.start(keep_secrets=keep_secrets)
    try:
        run = Interpreter(lab).execute
        lab.log.spill_to(tmp / "spill.jsonl")
        run(f"record start {tmp / 'rec.yaml'}", 10)
        run(f"serve pop3 --user alice={PASSWORD} as pop", 10)
        run(f"serve smtp --user alice={PASSWORD} as mx", 10)
        run(f"serve telnet --mode console --password {PASSWORD} --greeting-wait 0.1 as console", 10)
        run("connect pop as c", 10)
        run("expect c +OK", 10)
        run("send c 'USER alice'", 10)
        run("expect c +OK", 10)
        run(f"send c 'PASS {PASSWORD}'", 10)
        run("expect c +OK", 10)
        run("send c QUIT", 10)
        run("expect c +OK", 10)
        pop, mx, console = (lab.get(n) for n in ("pop", "mx", "console"))
        client = poplib.POP3("127.0.0.1", pop.port, timeout=10)  # type: ignore[attr-defined]
        client.user("alice")
        client.pass_(PASSWORD)
        client.quit()
        client = poplib.POP3("127.0.0.1", pop.port, timeout=10)  # type: ignore[attr-defined]
        client.apop("alice", PASSWORD)
        client.quit()
        for mech in ("PLAIN", "LOGIN"):
            with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as smtp:  # type: ignore[attr-defined]
                smtp.ehlo()
                smtp.user, smtp.password = "alice", PASSWORD
                assert smtp.auth(mech, getattr(smtp, "auth_" + mech.lower()))[0] == 235
        with socket.create_connection(("127.0.0.1", console.port), timeout=10) as sock:  # type: ignore[attr-defined]
            _read_until(sock, b"Password: ")
            sock.sendall(b"wrongGuess1\r\n")
            _read_until(sock, b"Password: ")
            sock.sendall(PASSWORD.encode() + b"\r\n")
            _read_until(sock, b"netlab> ")
        run("record stop", 10)
        run(f"log save {tmp / 'saved.jsonl'}", 10)
        run(f"log export --pcap {tmp / 'capture.pcapng'}", 10)
        run(f"save {tmp / 'lab.yaml'}", 10)
        lab.log.stop_spill()
    finally:
        lab.close()
    return sorted(tmp.iterdir())


def _found(files: list[Path]) -> dict[str, list[bytes]]:
    return {f.name: [form for form in FORMS if form in f.read_bytes()] for f in files}


def test_no_file_holds_a_password_by_default(tmp_path: Path) -> None:
    """Spill, log save, pcap export, recording and lab file: no password,
    no base64 of it, no AUTH PLAIN blob, no failed guess."""
    files = _session(tmp_path, keep_secrets=False)
    assert {f.name for f in files} == {"spill.jsonl", "rec.yaml", "saved.jsonl", "capture.pcapng", "lab.yaml"}
    assert _found(files) == {f.name: [] for f in files}
    assert b'"masked": true' in (tmp_path / "saved.jsonl").read_bytes()
    assert b"********" in (tmp_path / "capture.pcapng").read_bytes()
    saved = (tmp_path / "lab.yaml").read_text()
    assert "password_env: NETLAB_CONSOLE_PASSWORD" in saved and "accounts left out" in saved
    recording = (tmp_path / "rec.yaml").read_text()
    assert "PASS {secret.s1}" in recording and "stands for a secret" in recording


def test_keep_secrets_writes_them(tmp_path: Path) -> None:
    """With keep_secrets (--keep-secrets) the files hold what crossed the wire."""
    files = _session(tmp_path, keep_secrets=True)
    found = _found(files)
    for name in ("spill.jsonl", "saved.jsonl", "capture.pcapng"):
        assert found[name] == FORMS, name
    assert PASSWORD.encode() in (tmp_path / "rec.yaml").read_bytes()
    assert f"password: {PASSWORD}" in (tmp_path / "lab.yaml").read_text()


def test_live_views_mask_and_reveal(lab: Lab) -> None:
    """The log shows a mask said to be sent in cleartext; `log --reveal`,
    format_event(reveal=True) and Event.revealed show the password."""
    run = Interpreter(lab).execute
    run(f"serve pop3 --user alice={PASSWORD} as pop", 10)
    run("connect pop as c", 10)
    run("expect c +OK", 10)
    run(f"send c 'PASS {PASSWORD}'", 10)
    run("expect c ERR", 10)
    [event] = lab.log.query(EventFilter(endpoint="c", text="PASS"))
    assert event.summary == "PASS ••••••  (sent in cleartext)"
    assert event.revealed == f"PASS {PASSWORD}  (sent in cleartext)"
    assert PASSWORD not in format_event(event) and PASSWORD in format_event(event, reveal=True)
    assert event.raw == f"PASS {PASSWORD}\r\n".encode()  # memory keeps the real bytes
    assert PASSWORD not in event.to_json() and PASSWORD in event.to_json(reveal=True)
    shown = run("log -n 0", 10)[0].text
    assert "PASS ••••••" in shown and PASSWORD not in shown
    assert PASSWORD in run("log -n 0 --reveal", 10)[0].text
    assert PASSWORD not in run("log -n 0 --json", 10)[0].text


@pytest.mark.parametrize("chunks", [[b"USER alice\r\nPASS Sekr1tConsole\r\n"], [b"PASS Sekr", b"1tConsole\r\n"]],
                         ids=["one-chunk", "split"])
def test_a_chunk_holding_a_secret_is_masked_too(lab: Lab, tmp_path: Path, chunks: list[bytes]) -> None:
    """A raw chunk of several messages, or a message in several chunks:
    the chunk events are masked in files and summaries as well."""
    pop = lab.serve("pop3", user=[f"alice={PASSWORD}"], name="pop")
    with socket.create_connection(("127.0.0.1", pop.port), timeout=10) as sock:
        _read_until(sock, b"\r\n")
        sent = len(b"".join(chunks[:0]))
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
            # the server has read it before the next piece goes
            wait_until(lambda n=sent: sum(c.bytes_in for c in pop.connections.values()) >= n,
                       what="the server to read the piece")
        sock.sendall(b"QUIT\r\n")
        _read_until(sock, b"signing off")
    lab.log.export_jsonl(tmp_path / "log.jsonl")
    assert PASSWORD.encode() not in (tmp_path / "log.jsonl").read_bytes()
    assert b"Sekr" not in (tmp_path / "log.jsonl").read_bytes()
    assert all(PASSWORD not in e.summary and "Sekr" not in e.summary for e in lab.log)



def test_a_log_search_cannot_confirm_a_secret() -> None:
    """`log --grep /RE/` searches the bytes as masked: a guessed password does not match."""
    log = EventLog()
    event = log.emit(EventKind.DATA, endpoint="p", conn="p#1", direction=Direction.IN, raw=b"PASS wonderland\r\n")
    event.secret = ((5, 15),)  # as a decoded PASS marks the chunk that brought it
    event.text = None
    assert not log.query(EventFilter(regex=re.compile("wonder")))
    assert log.query(EventFilter(regex=re.compile(r"PASS \*+")))
