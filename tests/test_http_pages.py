"""Pages: routes of fixed text added and removed live from the command
language, where no Python function can be named."""

from __future__ import annotations

import http.client

import pytest

from lab import Lab
from lab.commands import Interpreter
from lab.errors import CommandError


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_a_page_added_by_command_answers_the_next_request_and_goes_when_removed(lab: Lab) -> None:
    interp = Interpreter(lab)
    interp.execute("serve http as h")
    port = lab["h"].port
    assert fetch(port, "/class")[0] == 404
    interp.execute('call h pages.add /class "Hello, class"')
    assert fetch(port, "/class") == (200, b"Hello, class")
    interp.execute('call h pages.add /class "changed" status=202')
    assert fetch(port, "/class") == (202, b"changed")
    (listing,) = interp.execute("call h pages.list")
    assert "/class" in listing.value and "page of 7 B" in listing.value["/class"]
    interp.execute("call h pages.remove /class")
    assert fetch(port, "/class")[0] == 404


def test_a_bad_page_is_a_readable_error(lab: Lab) -> None:
    interp = Interpreter(lab)
    interp.execute("serve http as h")
    with pytest.raises(CommandError):
        interp.execute('call h pages.add /x "t" status=99')
    with pytest.raises(CommandError):
        interp.execute('call h pages.add nope "t"')
    with pytest.raises(CommandError):
        interp.execute("call h pages.remove /never")
