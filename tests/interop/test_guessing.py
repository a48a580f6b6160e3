"""Interop: password guessing with real clients (poplib USER/PASS and
APOP, smtplib AUTH, a raw socket at the telnet console) over real
sockets, timed against the right password from another address.

Each test floods one server from 127.0.0.1 with up to 200 wrong
passwords over several parallel connections for a few seconds.  The
throttle lets only a handful be checked, logs its growing delay, and
meanwhile the right password from 127.0.0.2 logs in at once and another
server of the lab keeps answering.
"""

from __future__ import annotations

import poplib
import re
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import wait_until

from lab import Lab
from lab.eventlog import EventFilter

pytestmark = pytest.mark.interop

GUESSES = 200
FLOOD_SECONDS = 5.0
GUESSERS = 8  # parallel connections from the guessing address
PROMPT = 2.0  # the right password from elsewhere: far below the guesser's delay by then
CHECKED_AT_MOST = 20  # the designed pace allows about 10 checks in the window; unthrottled, all 200 go


class Flood:
    """``GUESSERS`` threads guessing until ``GUESSES`` are answered or the
    window closes; ``guess_on(deadline)`` is one connection's loop, which
    calls :meth:`answered` per answer and returns when the connection ends."""

    def __init__(self, guess_on: Callable[[Flood, float], None]) -> None:
        self.guess_on = guess_on
        self.count = 0
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + FLOOD_SECONDS
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(GUESSERS)]
        for thread in self.threads:
            thread.start()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def going(self) -> bool:
        return self.left() > 0 and self.count < GUESSES

    def answered(self) -> None:
        with self.lock:
            self.count += 1

    def _run(self) -> None:
        while self.going():
            try:
                self.guess_on(self, self.deadline)
            except (TimeoutError, OSError, EOFError, poplib.error_proto, smtplib.SMTPException):
                pass  # hung up on, or still waiting for its turn when the window closed

    def join(self) -> None:
        for thread in self.threads:
            thread.join(self.left() + 30)
            assert not thread.is_alive(), "a guesser never came back"


def notes(lab: Lab, name: str, text: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=name, text=text))]


def delays(lab: Lab, name: str) -> list[float]:
    """The throttle's events: the delay each announced."""
    return [float(m.group(1)) for s in notes(lab, name, "login throttle:")
            if (m := re.search(r"waits (\d+(?:\.\d+)?) s", s))]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def echo_round_trip(port: int) -> float:
    """Seconds for one line through the lab's echo server."""
    def once() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"still here\r\n")
            return sock.recv(100)
    data, took = timed(once)
    assert data == b"still here\r\n"
    return took


def check_flood(lab: Lab, name: str, flood: Flood, failed: str, right_login: Callable[[], object],
                echo_port: int) -> None:
    """While ``flood`` runs: once the guessers are slowed, the right
    password from 127.0.0.2 and the echo server answer promptly; at the
    end few guesses were checked, and the delay grew in the log."""
    wait_until(lambda: any(d >= 2 for d in delays(lab, name)), timeout=FLOOD_SECONDS + 10, what="the delay to grow")
    assert flood.going(), "every guess answered before the throttle took hold"
    _, took = timed(right_login)
    assert took < PROMPT, f"the right password from 127.0.0.2 took {took:.2f} s"
    assert echo_round_trip(echo_port) < PROMPT
    flood.join()
    checked = len(notes(lab, name, failed))
    assert flood.count <= checked  # only checked guesses were answered (none refused in this window)
    assert 3 < checked <= CHECKED_AT_MOST, f"{checked} guesses checked in {FLOOD_SECONDS} s"
    grown = delays(lab, name)
    assert grown == sorted(grown) and grown[0] == 1 and max(grown) >= 4
    assert len(grown) <= checked  # at most one event per failure


# -- POP3 (poplib) ----------------------------------------------------------------------


class Pop3From(poplib.POP3):
    """poplib's client from another loopback address."""

    source = "127.0.0.2"

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def pop3_guesser(port: int, apop: bool) -> Callable[[Flood, float], None]:
    def guess_on(flood: Flood, deadline: float) -> None:
        client = poplib.POP3("127.0.0.1", port, timeout=max(flood.left(), 0.1))
        try:
            while flood.going():
                assert client.sock is not None
                client.sock.settimeout(max(flood.left(), 0.1))
                try:
                    if apop:
                        client.apop("alice", "guess")
                    else:
                        client.user("alice")
                        client.pass_("guess")
                except poplib.error_proto as exc:
                    flood.answered()
                    if b"closing" in exc.args[0]:
                        return
                else:
                    pytest.fail("a wrong password was taken")
        finally:
            client.sock.close()
    return guess_on


@pytest.mark.parametrize("apop", [False, True], ids=["user-pass", "apop"])
def test_poplib_guessing_is_slowed_and_the_right_password_from_elsewhere_is_not(lab: Lab, apop: bool) -> None:
    """200 wrong POP3 passwords (USER/PASS or APOP) over 8 connections:
    a handful are checked in 5 s, while poplib from 127.0.0.2 logs in
    with the right one in well under 2 s."""
    srv = lab.serve("pop3", user=["alice=wonderland"], name="pop")
    echo = lab.serve("echo")
    flood = Flood(pop3_guesser(srv.port, apop))

    def right_login() -> None:
        client = Pop3From("127.0.0.1", srv.port, timeout=10)
        if apop:
            assert client.apop("alice", "wonderland").startswith(b"+OK alice")
        else:
            client.user("alice")
            assert client.pass_("wonderland").startswith(b"+OK alice")
        client.quit()

    check_flood(lab, "pop", flood, "APOP failed" if apop else "login failed", right_login, echo.port)


# -- SMTP AUTH (smtplib) --------------------------------------------------------------------


def smtp_guesser(port: int) -> Callable[[Flood, float], None]:
    def guess_on(flood: Flood, deadline: float) -> None:
        client = smtplib.SMTP("127.0.0.1", port, timeout=max(flood.left(), 0.1))
        try:
            client.ehlo("guesser.test")
            while flood.going():
                assert client.sock is not None
                client.sock.settimeout(max(flood.left(), 0.1))
                client.user, client.password = "alice", "guess"
                try:
                    client.auth("PLAIN", client.auth_plain)  # one mechanism: one guess per answer
                except smtplib.SMTPAuthenticationError:
                    flood.answered()
                else:
                    pytest.fail("a wrong password was taken")
        finally:
            client.close()
    return guess_on


def test_smtplib_auth_guessing_is_slowed_and_the_right_password_from_elsewhere_is_not(lab: Lab) -> None:
    """200 wrong AUTH PLAIN passwords over 8 connections; smtplib's
    login() from 127.0.0.2 (which picks PLAIN, the first offered mechanism it knows) succeeds at once."""
    srv = lab.serve("smtp", user=["alice=wonderland"], name="mx")
    echo = lab.serve("echo")
    flood = Flood(smtp_guesser(srv.port))

    def right_login() -> None:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10, source_address=("127.0.0.2", 0)) as client:
            client.ehlo("right.test")
            assert client.login("alice", "wonderland")[0] == 235

    check_flood(lab, "mx", flood, "authentication failed", right_login, echo.port)


# -- the telnet console (a raw socket) -------------------------------------------------------


def read_until(sock: socket.socket, *marks: bytes) -> bytes:
    """What arrives until one of ``marks`` (option negotiation and all)."""
    got = b""
    while not any(m in got for m in marks):
        data = sock.recv(4096)
        if not data:
            raise EOFError(got)
        got += data
    return got


def console_guesser(port: int) -> Callable[[Flood, float], None]:
    def guess_on(flood: Flood, deadline: float) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=max(flood.left(), 0.1)) as sock:
            read_until(sock, b"Password: ")
            while flood.going():
                sock.settimeout(max(flood.left(), 0.1))
                sock.sendall(b"guess\r\n")
                said = read_until(sock, b"Password: ", b"goodbye", b"Login refused", b"Logged in")
                assert b"Logged in" not in said
                flood.answered()
                if b"Password: " not in said:
                    return
    return guess_on


def test_console_guessing_is_slowed_and_the_right_password_from_elsewhere_is_not(lab: Lab) -> None:
    """200 wrong console passwords over 8 reconnecting connections; the
    right one from 127.0.0.2 is let in at once."""
    srv = lab.serve("telnet", mode="console", password="s3cret", greeting_wait=0.1, name="console")
    echo = lab.serve("echo")
    flood = Flood(console_guesser(srv.port))

    def right_login() -> None:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10, source_address=("127.0.0.2", 0)) as sock:
            read_until(sock, b"Password: ")
            sock.sendall(b"s3cret\r\n")
            read_until(sock, b"netlab> ")

    check_flood(lab, "console", flood, "console login failed", right_login, echo.port)
