"""NNTP against software netlab did not write: Python's nntplib against our
server, and our client against INN (innd with nnrpd) run privately on a
free loopback port."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from lab import Lab
from lab.protocols.nntp import NntpReplyError

pytestmark = pytest.mark.interop

ARTICLE = (b"From: Alice <alice@lab.test>\r\nNewsgroups: lab.test\r\nSubject: from nntplib\r\n"
           b"\r\nA line.\r\n.A line starting with a dot.\r\n..two dots\r\n")


def nntplib() -> ModuleType:
    """The stdlib module, deprecated since 3.11: imported quietly here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import nntplib as module
    return module


def test_nntplib_reads_and_posts_interop(lab: Lab) -> None:
    """nntplib's reader session against our server, every verb it has."""
    lib = nntplib()
    srv = lab.serve("nntp", group=["lab.test=Testing ground", "lab.misc"])
    with lib.NNTP("127.0.0.1", srv.port, readermode=True) as s:
        assert s.getwelcome().startswith("200 ")
        caps = s.getcapabilities()
        assert caps["VERSION"] == ["2"] and "READER" in caps and "POST" in caps
        _, groups = s.list()
        assert [(g.group, g.flag) for g in groups] == [("lab.misc", "y"), ("lab.test", "y")]
        assert s.description("lab.test") == "Testing ground"
        assert s.descriptions("lab.*")[1] == {"lab.test": "Testing ground", "lab.misc": "?"}
        assert s.post(io.BytesIO(ARTICLE)).startswith("240 ")
        _, count, first, last, name = s.group("lab.test")
        assert (count, first, last, name) == (1, 1, 1, "lab.test")
        _, overviews = s.over((1, None))
        [(number, fields)] = overviews
        assert number == 1 and fields["subject"] == "from nntplib" and fields[":lines"] == "3"
        assert fields["xref"] == "news.lab.test lab.test:1"  # Xref:full, read by nntplib's own parser
        mid = fields["message-id"]
        _, info = s.article(mid)
        assert info.lines[-3:] == [b"A line.", b".A line starting with a dot.", b"..two dots"]
        assert b"Path: news.lab.test!not-for-mail" in info.lines
        _, head = s.head(1)
        assert b"Subject: from nntplib" in head.lines
        _, body = s.body(1)
        assert body.lines == info.lines[-3:]
        assert s.stat(1)[1:] == (1, mid)
        with pytest.raises(lib.NNTPTemporaryError, match=r"^421"):
            s.next()
        with pytest.raises(lib.NNTPTemporaryError, match=r"^423"):
            s.article(7)
        with pytest.raises(lib.NNTPTemporaryError, match=r"^430"):
            s.stat("<no-such@id>")
        with pytest.raises(lib.NNTPTemporaryError, match=r"^411"):
            s.group("no.such.group")
        assert s.xhdr("subject", "1-")[1] == [("1", "from nntplib")]
        assert s.newnews("lab.*", datetime.now(UTC) - timedelta(hours=1))[1] == [mid]
        assert s.newgroups(datetime.now(UTC) - timedelta(hours=1))[1][0].group == "lab.misc"
        assert abs(s.date()[1] - datetime.now()).total_seconds() < 3600 * 24
        assert "LISTGROUP" in "\n".join(s.help()[1])
        assert s.quit().startswith("205")


def test_nntplib_login_and_refusals_interop(lab: Lab) -> None:
    """AUTHINFO USER/PASS through nntplib; 480 before login, 440 without posting."""
    lib = nntplib()
    srv = lab.serve("nntp", user=["alice=wonder"])
    with lib.NNTP("127.0.0.1", srv.port) as s:
        with pytest.raises(lib.NNTPTemporaryError, match=r"^480"):
            s.post(io.BytesIO(ARTICLE))
    with lib.NNTP("127.0.0.1", srv.port, user="alice", password="wonder") as s:
        assert s.post(io.BytesIO(ARTICLE)).startswith("240 ")
    with pytest.raises(lib.NNTPTemporaryError, match=r"^481"):
        lib.NNTP("127.0.0.1", srv.port, user="alice", password="wrong")
    closed = lab.serve("nntp", posting="no")
    with lib.NNTP("127.0.0.1", closed.port) as s:
        assert s.getwelcome().startswith("201 ")
        with pytest.raises(lib.NNTPTemporaryError, match=r"^440"):
            s.post(io.BytesIO(ARTICLE))


def test_nntplib_switches_a_mode_switching_server_interop(lab: Lab) -> None:
    """nntplib asked for reader mode sends MODE READER, and sees READER after it."""
    lib = nntplib()
    srv = lab.serve("nntp", mode="switching")
    with lib.NNTP("127.0.0.1", srv.port, readermode=True) as s:
        assert "READER" in s.getcapabilities()
        assert s.group("lab.test")[1:4] == (0, 1, 0)


# -- INN -----------------------------------------------------------------------------------

def test_our_client_against_inn_interop(lab: Lab, inn: int) -> None:
    """Our verbs against INN 2.7: transit greeting, MODE READER, lists,
    posting, overview, article retrieval and INN's error codes."""
    c = lab.connect("nntp", ("127.0.0.1", inn))
    greeting: Any = c.greeting(timeout=20)
    assert greeting.code in (200, 201) and "INN" in greeting.text
    assert c.mode_reader(timeout=20) is True
    caps = c.capabilities()
    assert "READER" in caps and "POST" in caps and "OVER" in caps
    assert "lab.test 0000000000 0000000001 y" in c.list()
    assert c.list("NEWSGROUPS", "lab.*") == ["lab.test\tA test group"]
    info = c.group("lab.test")
    assert (info.count, info.name) == (0, "lab.test")
    mid = c.post(subject="from netlab", body="hello INN\n.dotted line\n", sender="lab <lab@lab.test>")
    assert mid.startswith("<") and mid.endswith(">")
    assert c.group("lab.test").count == 1
    assert c.listgroup("lab.test") == [1]
    [ov] = c.over("1-")
    assert (ov.number, ov.subject, ov.message_id) == (1, "from netlab", mid)
    article = c.article(mid)
    assert b"Subject: from netlab\r\n" in article
    assert article.endswith(b"\r\n\r\nhello INN\r\n.dotted line\r\n")
    assert c.body(1) == b"hello INN\r\n.dotted line\r\n"
    assert b"Newsgroups: lab.test" in c.head(1)
    assert c.stat(1) == (1, mid)
    assert c.hdr("Subject", "1-") == [(1, "from netlab")]
    assert abs((c.date() - datetime.now(UTC)).total_seconds()) < 600
    with pytest.raises(NntpReplyError) as err:
        c.group("no.such.group")
    assert err.value.code == 411
    with pytest.raises(NntpReplyError) as err:
        c.article(99)
    assert err.value.code == 423
    with pytest.raises(NntpReplyError) as err:
        c.post(b"From: x@y\r\nSubject: no groups\r\n\r\nbody\r\n")
    assert err.value.code == 441
    assert c.quit().code == 205
