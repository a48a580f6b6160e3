"""Protocol options (lab/protocols/_options.py): the dataclass machinery
(declared options, help with defaults, resolving names and typed values,
errors that name the protocol and the option with an example) and the
shared parsers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.errors import ConfigError
from lab.protocols import irc, nntp, smtp, telnet
from lab.protocols._options import (
    NoOptions,
    Options,
    format_size,
    integer,
    name_value,
    number,
    option,
    seconds,
    size,
    yes_no,
)


@dataclass(frozen=True, kw_only=True)
class Sample(Options):
    count: int = option(3, help="how many", parse=integer(1, 100), metavar="N")
    offset: int = option(0, help="seconds to add", parse=integer(-10, 10), metavar="S", example="-3")
    name: str | None = option(help="a name (default: none)", metavar="NAME")
    tag: tuple[str, ...] = option(help="a tag", multiple=True, metavar="TAG")
    pair: tuple[tuple[str, str], ...] = option(help="a pair", parse=name_value(), multiple=True,
                                               metavar="K=V", example="a=b")
    loud: bool = option(False, help="shout", flag=True)
    size: int = option(1 << 20, help="bytes", parse=size(1 << 30), metavar="BYTES", show_default="1M")


# -- the machinery ---------------------------------------------------------------------


def test_declared_options_follow_the_fields() -> None:
    """One Option per field, in order, with its metadata."""
    declared = Sample.declared()
    assert [o.name for o in declared] == ["count", "offset", "name", "tag", "pair", "loud", "size"]
    assert declared[0].option_string == "--count" and declared[3].multiple and declared[5].flag
    assert Sample.get("offset").example == "-3" and NoOptions.declared() == ()


def test_help_shows_the_default_where_it_says_something() -> None:
    """Defaults join the help (zero included); none, empty, false and a help
    that says its own default add nothing; show_default wins."""
    help_of = {o.name: o.help_text for o in Sample.declared()}
    assert help_of["count"] == "how many (default 3)"
    assert help_of["offset"] == "seconds to add (default 0)"
    assert help_of["name"] == "a name (default: none)"
    assert help_of["tag"] == "a tag" and help_of["loud"] == "shout"
    assert help_of["size"] == "bytes (default 1M)"


def test_resolve_fills_defaults_and_parses() -> None:
    """Strings go through the parsers; multiples become tuples; a lab
    file's mapping and scalars are taken as the command line would."""
    resolved = Sample.resolve({"count": "7", "tag": "x", "pair": {"a": 1, "b": True}, "loud": True,
                               "offset": -2}, proto="demo")
    assert (resolved.count, resolved.offset, resolved.name) == (7, -2, None)
    assert resolved.tag == ("x",) and resolved.pair == (("a", "1"), ("b", "yes"))
    assert resolved.loud is True and resolved.size == 1 << 20
    assert Sample.resolve({}, proto="demo") == Sample()


def test_errors_name_the_protocol_the_option_and_an_example() -> None:
    """A bad value is one line with a hint; an unknown name lists the known ones."""
    with pytest.raises(ConfigError, match=r"demo: --offset wants a number from -10 to 10, got '99'") as info:
        Sample.resolve({"offset": "99"}, proto="demo")
    assert info.value.hint == "e.g. --offset -3"
    with pytest.raises(ConfigError, match="demo: unknown option 'colour'") as info:
        Sample.resolve({"colour": "red"}, proto="demo")
    assert "--count" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="demo: -o count wants"):
        Sample.resolve({"count": "0"}, proto="demo", what="client ")
    with pytest.raises(ConfigError, match="wants one value, not a mapping"):
        Sample.resolve({"count": {"a": 1}}, proto="demo")


def test_format_size() -> None:
    assert [format_size(n) for n in (10 << 20, 64 << 10, 1000)] == ["10M", "64K", "1000"]


# -- the parsers -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("yes", True), (" ON ", True), ("1", True), ("y", True),
                                             ("no", False), ("False", False), ("off", False), ("0", False)])
def test_yes_no_words(text: str, value: bool) -> None:
    assert yes_no()(text) is value


def test_parsers_say_what_they_want() -> None:
    """Each parser's error reads on after the option's name."""
    cases = [
        (yes_no(), "maybe", "wants yes or no, got 'maybe'"),
        (integer(1, 100), "101", "wants a number from 1 to 100, got '101'"),
        (integer(1), "-4", "wants a number of at least 1"),
        (number(0.5), "nan", r"wants a number of at least 0\.5"),
        (seconds(0, 300), "0", "wants seconds from 0 to 300"),
        (seconds(0.01), "0.005", r"wants seconds of at least 0\.01"),
        (size(4 << 20), "5M", "wants a size from 1 byte to 4M"),
        (name_value("NAME=PASSWORD"), "alice", "wants NAME=PASSWORD"),
    ]
    for parse, text, message in cases:
        with pytest.raises(ValueError, match=message):
            parse(text)


@pytest.mark.parametrize(("text", "value"), [("65536", 65536), ("64k", 65536), (" 2M ", 2 << 20),
                                             ("512KiB", 512 << 10), ("1mb", 1 << 20), ("10b", 10)])
def test_size_suffixes(text: str, value: int) -> None:
    assert size(4 << 20)(text) == value


def test_name_value_keeps_the_value_exactly() -> None:
    assert name_value()(" alice =pw=x ") == ("alice", "pw=x ")
    for bad in ("alice", "=pw", "alice=", "al ice=pw"):
        with pytest.raises(ValueError):
            name_value()(bad)


@given(st.text(max_size=12))
def test_parsers_raise_only_value_errors(text: str) -> None:
    for parse in (yes_no(), integer(1, 9), number(0), seconds(), size(1 << 20), name_value()):
        try:
            parse(text)
        except ValueError:
            pass


# -- the protocols' options --------------------------------------------------------------


def test_protocol_options_refuse_bad_values_with_their_names() -> None:
    """Each protocol's options refuse bad values naming the protocol and the option."""
    cases = [
        (irc.SPEC, {"ping_interval": "0"}, "irc: --ping-interval wants seconds of at least 0.01"),
        (irc.SPEC, {"max_users": "x"}, "irc: --max-users wants a number of at least 1"),
        (nntp.SPEC, {"posting": "perhaps"}, "nntp: --posting wants yes or no"),
        (nntp.SPEC, {"max_article": "9m"}, "nntp: --max-article wants a size from 1 byte to 4M"),
        (nntp.SPEC, {"user": ["alice"]}, "nntp: --user wants NAME=PASSWORD"),
        (smtp.SPEC, {"max_recipients": "0"}, "smtp: --max-recipients wants a number of at least 1"),
        (smtp.SPEC, {"size": "1G"}, "smtp: --size wants a size from 1 byte to 256M"),
        (smtp.SPEC, {"user": ["bob"]}, "smtp: --user wants NAME=PASSWORD"),
        (telnet.SPEC, {"login_attempts": "0"}, "telnet: --login-attempts wants a number from 1 to 100"),
        (telnet.SPEC, {"greeting_wait": "0"}, "telnet: --greeting-wait wants seconds from 0 to 300"),
    ]
    for spec, given_options, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            spec.resolve_options(given_options)
        assert (info.value.hint or "").startswith("e.g. --")
    assert nntp.SPEC.resolve_options({"posting": "no", "max_article": "64k"}).max_article == 65536  # type: ignore[attr-defined]
    assert smtp.SPEC.resolve_options({"size": "10M"}).size == 10 << 20  # type: ignore[attr-defined]
