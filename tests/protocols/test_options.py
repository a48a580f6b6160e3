"""The shared option parsers (lab/protocols/_options.py) and the protocol
options built on them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.errors import ConfigError
from lab.protocols import irc, nntp, smtp, telnet
from lab.protocols._options import integer, name_value, number, seconds, size, yes_no


@pytest.mark.parametrize(("text", "value"), [("yes", True), (" ON ", True), ("1", True), ("y", True),
                                             ("no", False), ("False", False), ("off", False), ("0", False)])
def test_yes_no_words(text: str, value: bool) -> None:
    assert yes_no("x: --flag")(text) is value


def test_yes_no_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"x: --flag wants yes or no, got 'maybe'"):
        yes_no("x: --flag")("maybe")


def test_integer_range_and_hint() -> None:
    parse = integer("x: --n", 1, 100, hint="e.g. --n 3")
    assert parse("1") == 1 and parse("100") == 100
    for bad in ("0", "101", "1.5", "", "three", "²"):
        with pytest.raises(ConfigError, match="x: --n wants a number from 1 to 100") as exc:
            parse(bad)
        assert exc.value.hint == "e.g. --n 3"
    with pytest.raises(ConfigError, match="of at least 1"):
        integer("x: --n", 1)("-4")


def test_number_and_seconds_refuse_nan_inf_and_zero() -> None:
    assert number("x: --rate", 0.5)("2.5") == 2.5
    assert seconds("x: --wait", 0, 300)("0.001") == 0.001
    for bad in ("nan", "inf", "-inf", "0", "-1", "301", "soon"):
        with pytest.raises(ConfigError, match=r"x: --wait wants seconds from 0 to 300"):
            seconds("x: --wait", 0, 300)(bad)
    with pytest.raises(ConfigError, match=r"seconds of at least 0\.01"):
        seconds("x: --t", 0.01)("0.005")
    with pytest.raises(ConfigError, match=r"a number of at least 0\.5"):
        number("x: --rate", 0.5)("nan")


@pytest.mark.parametrize(("text", "value"), [("65536", 65536), ("64k", 65536), (" 2M ", 2 << 20),
                                             ("512KiB", 512 << 10), ("1mb", 1 << 20), ("10b", 10)])
def test_size_suffixes(text: str, value: int) -> None:
    assert size("x: --size", 4 << 20)(text) == value


@pytest.mark.parametrize("text", ["0", "5M", "-1", "k", "1.5m", "10 G", ""])
def test_size_out_of_range_or_malformed(text: str) -> None:
    with pytest.raises(ConfigError, match=r"x: --size wants a size from 1 byte to 4M"):
        size("x: --size", 4 << 20)(text)


def test_name_value() -> None:
    assert name_value(" alice =pw=x ", "x: --user", "NAME=PASSWORD") == ("alice", "pw=x ")
    for bad in ("alice", "=pw", "alice=", "al ice=pw"):
        with pytest.raises(ConfigError, match=r"x: --user wants NAME=PASSWORD"):
            name_value(bad, "x: --user", "NAME=PASSWORD", hint="e.g. --user a=b")


@given(st.text(max_size=12))
def test_parsers_raise_only_config_errors(text: str) -> None:
    for parse in (yes_no("x"), integer("x", 1, 9), number("x", 0), seconds("x"), size("x", 1 << 20)):
        try:
            parse(text)
        except ConfigError:
            pass
    try:
        name_value(text, "x")
    except ConfigError:
        pass


def test_protocol_options_use_them() -> None:
    """Each protocol's options still refuse bad values with its own label."""
    cases = [
        (irc.SPEC, {"ping_interval": "0"}, "irc: --ping-interval wants seconds of at least 0.01"),
        (irc.SPEC, {"max_users": "x"}, "irc: --max-users wants a number of at least 1"),
        (nntp.SPEC, {"posting": "perhaps"}, "nntp: --posting wants yes or no"),
        (nntp.SPEC, {"max_article": "9m"}, "nntp: --max-article wants a size from 1 byte to 4M"),
        (nntp.SPEC, {"user": ["alice"]}, "nntp: --user wants NAME=PASSWORD"),
        (smtp.SPEC, {"max_recipients": "0"}, "smtp: --max-recipients wants a number of at least 1"),
        (smtp.SPEC, {"size": "1G"}, "smtp: --size wants a size from 1 byte to 256M"),
        (smtp.SPEC, {"user": ["bob"]}, "--user wants NAME=PASSWORD"),
        (telnet.SPEC, {"login_attempts": "0"}, "telnet: --login-attempts wants a number from 1 to 100"),
        (telnet.SPEC, {"greeting_wait": "0"}, "telnet: --greeting-wait wants seconds from 0 to 300"),
    ]
    for spec, given_options, message in cases:
        with pytest.raises(ConfigError, match=message):
            spec.resolve_options(given_options)
    assert nntp.SPEC.resolve_options({"posting": "no", "max_article": "64k"})["max_article"] == 65536
    assert smtp.SPEC.resolve_options({"size": "10M"})["size"] == 10 << 20
