"""Parsers for protocol options (``Option.parse``): yes/no, numbers in a
range, seconds, sizes and NAME=VALUE pairs, each failing with one
:class:`ConfigError` line that names the option and says what it wants.

Each factory takes a ``label`` that opens the message, e.g.
``"irc: --ping-interval"``, and returns the parser.

Tests: tests/protocols/test_options.py
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from lab.errors import ConfigError

__all__ = ["integer", "name_value", "number", "seconds", "size", "yes_no"]

_YES = frozenset({"yes", "y", "true", "on", "1"})
_NO = frozenset({"no", "n", "false", "off", "0"})


def yes_no(label: str, *, hint: str | None = None) -> Callable[[str], bool]:
    """yes/no, true/false, on/off, 1/0 (any case) as a bool."""

    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
        raise ConfigError(f"{label} wants yes or no, got {text!r}", hint=hint)

    return parse


def _span(low: float, high: float | None) -> str:
    return f"of at least {low}" if high is None else f"from {low} to {high}"


def integer(label: str, low: int, high: int | None = None, *,
            what: str | None = None, hint: str | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound if None)."""
    wants = what or f"a number {_span(low, high)}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{label} wants {wants}, got {text!r}", hint=hint) from None
        if value < low or (high is not None and value > high):
            raise ConfigError(f"{label} wants {wants}, got {text!r}", hint=hint)
        return value

    return parse


def number(label: str, low: float, high: float | None = None, *,
           what: str | None = None, hint: str | None = None) -> Callable[[str], float]:
    """A finite decimal number from ``low`` to ``high``."""
    wants = what or f"a number {_span(low, high)}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise ConfigError(f"{label} wants {wants}, got {text!r}", hint=hint)
        return value

    return parse


def seconds(label: str, low: float = 0.0, high: float | None = None, *,
            hint: str | None = None) -> Callable[[str], float]:
    """A time span in seconds, more than zero, from ``low`` to ``high``."""
    wants = f"seconds {_span(low, high)}" if low > 0 else \
        "seconds above 0" if high is None else f"seconds from 0 to {high}"
    check = number(label, low, high, what=wants, hint=hint)

    def parse(text: str) -> float:
        value = check(text)
        if value <= 0:
            raise ConfigError(f"{label} wants {wants}, got {text!r}", hint=hint)
        return value

    return parse


_SIZE = re.compile(r"\s*(\d+)\s*(?:([kKmM])[iI]?)?[bB]?\s*")
_SCALE = {None: 1, "k": 1024, "m": 1024 * 1024}


def size(label: str, high: int, *, hint: str | None = None) -> Callable[[str], int]:
    """Bytes, with an optional K or M suffix (KiB, MB... accepted), from 1 to ``high``."""

    def parse(text: str) -> int:
        m = _SIZE.fullmatch(text)
        value = int(m.group(1)) * _SCALE[m.group(2) and m.group(2).lower()] if m else 0
        if not 0 < value <= high:
            top = f"{high // 1048576}M" if high % 1048576 == 0 else f"{high} bytes"
            raise ConfigError(f"{label} wants a size from 1 byte to {top}, got {text!r}", hint=hint)
        return value

    return parse


def name_value(text: str, label: str, form: str = "NAME=VALUE", *, hint: str | None = None) -> tuple[str, str]:
    """``NAME=VALUE`` as ``(name, value)``: a name without spaces (outer
    ones are dropped) and a non-empty value, kept exactly."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or not value or any(c.isspace() for c in name):
        raise ConfigError(f"{label} wants {form}, got {text!r}", hint=hint)
    return name, value
