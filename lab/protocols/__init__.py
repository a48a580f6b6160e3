"""The protocol registry: built-in protocols (every public module or
package under ``lab/protocols/``, so a new one needs no entry here) plus
the ``netlab.protocols`` entry-point group, each loaded on first use.

A third-party package adds a protocol with, in its ``pyproject.toml``::

    [project.entry-points."netlab.protocols"]
    gopher = "my_pkg.gopher:SPEC"

where ``SPEC`` is a :class:`ProtocolSpec` (or a function returning one).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from lab.errors import ConfigError
from lab.protocols._base import Clock, Message, Pattern, Role, Transport, escape_bytes
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._options import NoOptions, Option, Options, option
from lab.protocols._session import AnswerServer, Channel, ClientVerbs, Peer, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec

__all__ = [
    "AnswerServer",
    "Channel",
    "ClientVerbs",
    "Clock",
    "Conversation",
    "Decoder",
    "Message",
    "NoOptions",
    "Option",
    "Options",
    "Pattern",
    "Peer",
    "ProtocolSpec",
    "Role",
    "ServerBehaviour",
    "Session",
    "Transport",
    "all_specs",
    "escape_bytes",
    "get",
    "names",
    "option",
    "suggest",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "netlab.protocols"

_BUILTIN = {
    info.name: f"lab.protocols.{info.name}"
    for info in pkgutil.iter_modules(__path__)
    if not info.name.startswith("_")
}

_loaded: dict[str, ProtocolSpec] = {}
_plugins: dict[str, Any] | None = None


def _plugin_entry_points() -> dict[str, Any]:
    global _plugins
    if _plugins is None:
        _plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _plugins


def names() -> list[str]:
    """Every registered protocol name, sorted."""
    return sorted(set(_BUILTIN) | set(_plugin_entry_points()))


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to a mistyped ``word``, if any is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _load(name: str) -> ProtocolSpec:
    if name in _BUILTIN:
        return importlib.import_module(_BUILTIN[name]).SPEC
    obj = _plugin_entry_points()[name].load()
    spec = obj() if callable(obj) and not isinstance(obj, ProtocolSpec) else obj
    if not isinstance(spec, ProtocolSpec):
        raise ConfigError(
            f"entry point {name!r} in {ENTRY_POINT_GROUP} is not a ProtocolSpec",
            hint="point it at a ProtocolSpec object or a function returning one",
        )
    return spec


def get(name: str) -> ProtocolSpec:
    """The protocol called ``name``; :class:`ConfigError` with a suggestion
    when there is none."""
    spec = _loaded.get(name)
    if spec is not None:
        return spec
    known = names()
    if name not in known:
        close = suggest(name, known)
        raise ConfigError(
            f"unknown protocol {name!r}",
            hint=f"did you mean {close!r}?" if close else "`netlab protocols` lists them",
        )
    spec = _loaded[name] = _load(name)
    return spec


def all_specs() -> list[ProtocolSpec]:
    """Every protocol that loads; a broken plugin is logged and left out."""
    out = []
    for name in names():
        try:
            out.append(get(name))
        except Exception as exc:
            logger.warning("protocol %r failed to load: %s", name, exc)
            logger.debug("protocol %r failed to load", name, exc_info=True)
    return out
