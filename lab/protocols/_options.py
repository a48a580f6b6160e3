"""Protocol options: one frozen dataclass per protocol, from which the
command-line flags, their ``--help``, the defaults and the checking of
lab files and scenarios all come.

    @dataclass(frozen=True, kw_only=True)
    class FingerOptions(Options):
        user: tuple[tuple[str, str], ...] = option(
            help="an account, NAME=FULL NAME", parse=name_value("NAME=FULL NAME"),
            multiple=True, example="alice='Alice Liddell'")

Each field is made with :func:`option`.  A parser turns one string into
a value and says what is wrong with a bad one by raising
:class:`ValueError` with a phrase that follows the option's name
("wants a number from 1 to 100, got 'x'"); the error the user sees
names the protocol and the option and gives an example.  The parsers
here (yes/no, numbers, seconds, sizes, NAME=VALUE) cover most options.

Tests: tests/protocols/test_options.py
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from typing import Any, TypeVar

from lab.errors import ConfigError

__all__ = [
    "NoOptions",
    "Option",
    "Options",
    "format_size",
    "integer",
    "name_value",
    "number",
    "option",
    "seconds",
    "size",
    "yes_no",
]

_META = "netlab.option"

T = TypeVar("T", bound="Options")


def _text(value: Any) -> str:
    """A typed value (a YAML number or boolean) as command-line text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Option:
    """One declared option, as the command line, help and checks see it."""

    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    multiple: bool = False
    metavar: str | None = None
    flag: bool = False  # a switch: no value on the command line
    example: str | None = None
    show_default: str | None = None

    @property
    def option_string(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help_text(self) -> str:
        """The help with the default, unless the help says it already."""
        shown = self.show_default
        empty = self.default is None or self.default is False or (isinstance(self.default, (str, tuple))
                                                                   and not self.default)
        if shown is None and not empty and "default" not in self.help:
            value = self.default
            shown = " ".join(_text(v) for v in value) if isinstance(value, tuple) else _text(value)
        return f"{self.help} (default {shown})" if shown else self.help

    @property
    def hint(self) -> str:
        example = self.example or self.metavar or "VALUE"
        return f"e.g. {self.option_string} {example}" if not self.flag else f"e.g. {self.option_string}"

    @property
    def client_hint(self) -> str:
        """The hint as a client option is written (``connect ... -o NAME=VALUE``)."""
        return f"e.g. -o {self.name}={self.example or self.metavar or 'VALUE'}"

    def convert(self, value: Any, proto: str, *, client: bool = False) -> Any:
        """A given value as this option's value: strings and the scalars a
        lab file gives go through ``parse``; a mapping or a list where one
        value belongs is refused; other objects from Python pass as they
        are."""
        if isinstance(value, (bool, int, float)) and not isinstance(value, enum.Enum) and not self.flag:
            value = _text(value)
        label, hint = (f"-o {self.name}", self.client_hint) if client else (self.option_string, self.hint)
        if isinstance(value, str):
            try:
                return self.parse(value)
            except ConfigError:
                raise
            except ValueError as exc:
                raise ConfigError(f"{proto}: {label} {exc}", hint=hint) from None
        if value is None or isinstance(value, Mapping) or (isinstance(value, (list, tuple)) and not self.multiple):
            what = "nothing" if value is None else "a mapping" if isinstance(value, Mapping) else "a list"
            raise ConfigError(f"{proto}: {label} wants one value, not {what}", hint=hint)
        return value


def option(default: Any = MISSING, *, help: str, parse: Callable[[str], Any] | None = None,
           multiple: bool = False, metavar: str | None = None, flag: bool = False,
           example: str | None = None, show_default: str | None = None) -> Any:
    """A field of an :class:`Options` dataclass.  ``multiple`` options may
    repeat and hold a tuple (default empty); ``flag`` options are switches
    on the command line and take yes/no in files."""
    if default is MISSING:
        default = () if multiple else None
    if flag and parse is None:
        parse = yes_no()
    meta = {"help": help, "parse": parse or str, "multiple": multiple, "metavar": metavar,
            "flag": flag, "example": example, "show_default": show_default}
    return dataclasses.field(default=default, metadata={_META: meta})


@dataclass(frozen=True, kw_only=True)
class Options:
    """Base of every protocol's options dataclass (frozen, keyword-only)."""

    @classmethod
    def declared(cls) -> tuple[Option, ...]:
        """The options in declaration order."""
        return _declared(cls)

    @classmethod
    def get(cls, name: str) -> Option:
        for opt in cls.declared():
            if opt.name == name:
                return opt
        raise KeyError(name)

    @classmethod
    def resolve(cls: type[T], given: Mapping[str, Any], *, proto: str, what: str = "") -> T:
        """The options from ``given`` (names to strings or typed values),
        defaults filled in; :class:`ConfigError` for an unknown name or a
        bad value."""
        declared = {opt.name: opt for opt in cls.declared()}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            names = (", ".join(declared) if what else ", ".join(o.option_string for o in declared.values())) or "none"
            raise ConfigError(f"{proto}: unknown {what}option {unknown[0]!r}",
                              hint=f"{what}options of {proto}: {names}")
        values: dict[str, Any] = {}
        for name, value in given.items():
            opt = declared[name]
            if opt.multiple:
                if isinstance(value, Mapping):  # a lab file's {alice: Alice Liddell}
                    value = [f"{k}={_text(v)}" for k, v in value.items()]
                items = value if isinstance(value, (list, tuple)) else [value]
                values[name] = tuple(opt.convert(v, proto, client=bool(what)) for v in items)
            else:
                values[name] = opt.convert(value, proto, client=bool(what))
        return cls(**values)

    def replace(self: T, **changes: Any) -> T:
        """A copy with some values changed (already parsed)."""
        return dataclasses.replace(self, **changes)


_DECLARED: dict[type[Options], tuple[Option, ...]] = {}


def _declared(cls: type[Options]) -> tuple[Option, ...]:
    found = _DECLARED.get(cls)
    if found is None:
        found = _DECLARED[cls] = tuple(
            Option(name=f.name, default=f.default if f.default is not MISSING else None, **f.metadata[_META])
            for f in dataclasses.fields(cls) if _META in f.metadata)
    return found


@dataclass(frozen=True, kw_only=True)
class NoOptions(Options):
    """For a protocol without options."""


# -- parsers ------------------------------------------------------------------------

_YES = frozenset({"yes", "y", "true", "on", "1"})
_NO = frozenset({"no", "n", "false", "off", "0"})


def yes_no() -> Callable[[str], bool]:
    """yes/no, true/false, on/off, 1/0 (any case) as a bool."""

    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
        raise ValueError(f"wants yes or no, got {text!r}")

    return parse


def _span(low: float, high: float | None) -> str:
    return f"of at least {low}" if high is None else f"from {low} to {high}"


def integer(low: int, high: int | None = None, *, what: str | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound if None)."""
    wants = what or f"a number {_span(low, high)}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"wants {wants}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"wants {wants}, got {text!r}")
        return value

    return parse


def number(low: float, high: float | None = None, *, what: str | None = None) -> Callable[[str], float]:
    """A finite decimal number from ``low`` to ``high``."""
    wants = what or f"a number {_span(low, high)}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise ValueError(f"wants {wants}, got {text!r}")
        return value

    return parse


def seconds(low: float = 0.0, high: float | None = None) -> Callable[[str], float]:
    """A time span in seconds, more than zero, from ``low`` to ``high``."""
    wants = f"seconds {_span(low, high)}" if low > 0 else \
        "seconds above 0" if high is None else f"seconds from 0 to {high}"
    check = number(low, high, what=wants)

    def parse(text: str) -> float:
        value = check(text)
        if value <= 0:
            raise ValueError(f"wants {wants}, got {text!r}")
        return value

    return parse


_SIZE = re.compile(r"\s*(\d+)\s*(?:([kKmM])[iI]?)?[bB]?\s*")
_SCALE = {None: 1, "k": 1024, "m": 1024 * 1024}


def format_size(value: int) -> str:
    """``10485760`` -> ``10M``, ``65536`` -> ``64K``."""
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if value >= scale and value % scale == 0:
            return f"{value // scale}{unit}"
    return str(value)


def size(high: int) -> Callable[[str], int]:
    """Bytes, with an optional K or M suffix (KiB, MB... accepted), from 1 to ``high``."""

    def parse(text: str) -> int:
        m = _SIZE.fullmatch(text)
        value = int(m.group(1)) * _SCALE[m.group(2) and m.group(2).lower()] if m else 0
        if not 0 < value <= high:
            top = f"{high // 1048576}M" if high % 1048576 == 0 else f"{high} bytes"
            raise ValueError(f"wants a size from 1 byte to {top}, got {text!r}")
        return value

    return parse


def name_value(form: str = "NAME=VALUE") -> Callable[[str], tuple[str, str]]:
    """``NAME=VALUE`` as ``(name, value)``: a name without spaces (outer
    ones are dropped) and a non-empty value, kept exactly."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name or not value or any(c.isspace() for c in name):
            raise ValueError(f"wants {form}, got {text!r}")
        return name, value

    return parse
