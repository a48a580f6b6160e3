"""The jail of a safe-mode lab: the folders its files may live in, the
servers it may not start, and loopback as the only address.

``netlab run --safe`` loads an untrusted file with these checks (so a
refusal points at the file) and gives the lab a :class:`Jail`, so that
what runs in it later (a console's ``save``, ``record start``, ``log
save``, a ``serve`` typed there) stays inside the same folders too.

Tests: tests/scenarios/test_safe.py
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import ConfigError

if TYPE_CHECKING:
    from lab.protocols import ProtocolSpec

__all__ = ["MAX_PATH", "PATH_METAVARS", "Jail", "path_options", "refused_option", "unsafe_text"]

# an option whose value names a file or folder says so in its metavar
PATH_METAVARS = frozenset({"FILE", "DIR", "PATH"})
MAX_PATH = 1024


def path_options(spec: ProtocolSpec, *, client: bool = False) -> frozenset[str]:
    """The names of ``spec``'s options whose values are paths."""
    declared = (spec.client_options if client else spec.options).declared()
    return frozenset(opt.name for opt in declared if (opt.metavar or "").upper() in PATH_METAVARS)


def refused_option(protocol: str, name: str, value: Any) -> str | None:
    """Why a safe-mode lab refuses option ``name`` set to (parsed)
    ``value`` on a ``protocol`` server, or None."""
    if protocol == "telnet" and name == "mode" and getattr(value, "value", value) == "console":
        return "a telnet console runs the lab's commands for whoever logs in"
    if protocol == "telnet" and name == "allow_remote" and value is True:
        return "allow_remote opens the console to other machines"
    if name == "routes" and value:
        return "routes import and run the Python functions the file names"
    if name == "functions" and value:  # XML-RPC and SOAP servers
        return "functions import and run the Python functions the file names"
    if protocol == "socks" and name in ("allow", "lab_host") and not _loopback_only(name, value):
        return "a SOCKS tunnel beyond loopback would leave the lab"
    if protocol == "ssh" and name == "console" and value is True:
        return "an SSH server runs the lab's commands for whoever logs in (console: no serves SFTP only)"
    if protocol == "ssh" and name == "allow_remote" and value is True:
        return "allow_remote opens the SSH server to other machines"
    return None


def _loopback_only(name: str, value: Any) -> bool:
    """SOCKS ``allow`` rules (tuples of rules with a ``network``) or
    ``lab_host`` names (NAME, ADDRESS pairs) that stay within 127.0.0.0/8."""
    import ipaddress

    loopback = ipaddress.ip_network("127.0.0.0/8")
    try:
        if name == "allow":
            return all(rule.network.subnet_of(loopback) for rules in value for rule in rules)
        return all(ipaddress.ip_address(address) in loopback for _, address in value)
    except (TypeError, ValueError, AttributeError):
        return False


def unsafe_text(text: str) -> str | None:
    """Why ``text`` is not a path a safe-mode lab takes at face value, or
    None: nothing that another program would expand or cut short."""
    if not text:
        return "an empty path"
    if "\0" in text:
        return "a NUL byte in a path"
    if len(text) > MAX_PATH:
        return f"a path of {len(text)} characters (at most {MAX_PATH})"
    if text.startswith("~"):
        return "a path starting with ~ (a home directory)"
    if "$" in text or "%" in text:
        return "a path with $ or % (environment variables)"
    return None


class Jail:
    """Folders (resolved once, symlinks followed) that paths must stay in."""

    def __init__(self, roots: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = tuple(Path(os.path.realpath(root)) for root in roots)

    def __repr__(self) -> str:
        return f"Jail({', '.join(str(r) for r in self.roots)})"

    def where(self) -> str:
        return " or ".join(str(r) for r in self.roots) or "nowhere"

    def path(self, text: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> Path:
        """``text`` as a real path (relative to ``base``, else the working
        directory; every symlink followed) inside a root.

        :class:`ConfigError` if it is outside, or is not plain text.
        """
        text = os.fspath(text)
        why = unsafe_text(text)
        if why is not None:
            raise ConfigError(f"{why}, which safe mode refuses", hint="name a plain path inside " + self.where())
        path = Path(text)
        if not path.is_absolute():
            path = Path(base if base is not None else os.getcwd()) / path
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError) as exc:  # a symlink loop, a name too long for the system
            raise ConfigError(f"cannot resolve {text!r}: {exc}", hint="name a plain path inside " + self.where()) \
                from None
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            shown = text if str(real) == text else f"{text} (that is {real})"
            raise ConfigError(f"{shown} is outside the folders safe mode allows",
                              hint="keep files inside " + self.where())
        return real

    def check_address(self, host: str) -> None:
        """:class:`ConfigError` unless ``host`` is loopback (listened on or
        connected to)."""
        from lab.endpoints import is_loopback

        if not is_loopback(host):
            raise ConfigError(f"{host!r} is not a loopback address, which safe mode refuses",
                              hint="safe mode keeps a lab to 127.0.0.1 and ::1")

    def check_serve(self, spec: ProtocolSpec, host: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with their paths made real; :class:`ConfigError` for
        a listening address beyond loopback, a path outside the roots, or
        an option :func:`refused_option` names."""
        self.check_address(host)
        paths = path_options(spec)
        out = dict(options)
        for name, value in options.items():
            if name in paths and isinstance(value, (str, os.PathLike)):
                out[name] = str(self.path(value))
        resolved = spec.resolve_options(out)
        # defaults too: a server that is unsafe unless told otherwise (the SSH console) is refused
        declared = [opt.name for opt in spec.options.declared()]
        for name in dict.fromkeys([*options, *declared]):
            why = refused_option(spec.name, name, getattr(resolved, name, None))
            if why is not None:
                raise ConfigError(f"{spec.name} option {name!r}: {why}, which safe mode refuses")
        return out
