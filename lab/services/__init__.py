"""Services: the state several servers of one lab share, in one place.

The mail store SMTP delivers into and POP3 serves, the news store NNTP
serves, the chat rooms IRC (and later XMPP, TOC) share, the lab's own
console: each is reached through a typed :class:`ServiceKey`, and every
server of a lab gets the same object::

    store = self.services.attach(MAIL_STORE, self.options.maildir)

A store that can keep its state on disk is a :class:`Store`: attaching a
directory is the one way to make it persist, the same for every store.
Services know nothing of protocols or of the Lab.

* :mod:`lab.services.mail`: :data:`MAIL_STORE`, per-user mailboxes;
* :mod:`lab.services.news`: :data:`NEWS_STORE`, newsgroups and articles;
* :mod:`lab.services.chat`: :data:`CHAT`, users and rooms.

Tests: tests/services/
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from lab.errors import ConfigError

__all__ = ["CONSOLE", "LISTENERS", "Console", "Listeners", "ServiceKey", "Services", "Store"]

T = TypeVar("T")


@runtime_checkable
class Store(Protocol):
    """A shared store that can keep its state in a directory."""

    def attach(self, directory: str | os.PathLike[str]) -> None:
        """Keep state under ``directory`` from now on, loading what is
        there; attaching the same directory again does nothing, another
        one is a :class:`ConfigError`."""
        ...


@dataclass(frozen=True)
class ServiceKey(Generic[T]):
    """The name of a service and how to make it the first time."""

    name: str
    factory: Callable[[], T]

    def __repr__(self) -> str:
        return f"<ServiceKey {self.name}>"


class Console(Protocol):
    """The lab's command language, for consoles a server offers (telnet,
    later SSH): ``await run(text)`` on the reactor loop gives the printable
    results or raises :class:`LabError`; ``complete(line)`` the
    completions."""

    async def run(self, text: str) -> str: ...
    def complete(self, line: str) -> list[str]: ...


def _no_console() -> Console:
    raise ConfigError("no lab console here", hint="the console needs a running lab")


CONSOLE: ServiceKey[Console] = ServiceKey("lab.console", _no_console)


class Listeners(Protocol):
    """The lab's own listening endpoints, for a server that relays into the
    lab (SOCKS decodes a tunnel as the protocol of the lab server it
    reaches): ``protocol_at(host, port)`` names the protocol listening
    there over TCP, or None."""

    def protocol_at(self, host: str, port: int) -> str | None: ...


class _NoListeners:
    def protocol_at(self, host: str, port: int) -> str | None:
        return None


LISTENERS: ServiceKey[Listeners] = ServiceKey("lab.listeners", _NoListeners)


class Services:
    """The services of one lab, by key."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, key: ServiceKey[T]) -> T:
        """The service, made by its key's factory the first time."""
        try:
            value: T = self._items[key.name]
        except KeyError:
            value = self._items[key.name] = key.factory()
        return value

    def attach(self, key: ServiceKey[T], directory: str | os.PathLike[str] | None) -> T:
        """The service, kept in ``directory`` if one is given (a
        :class:`ConfigError` when it already lives elsewhere)."""
        value = self.get(key)
        if directory is not None:
            if not isinstance(value, Store):
                raise ConfigError(f"the {key.name} service keeps nothing on disk")
            value.attach(directory)
        return value

    def find(self, key: ServiceKey[T]) -> T | None:
        """The service, or None when nobody made it."""
        found: T | None = self._items.get(key.name)
        return found

    def discard(self, key: ServiceKey[T]) -> bool:
        """Forget the service, so the next use makes a fresh one; one kept
        on disk stays (its files are the state).  True if it went."""
        value = self._items.get(key.name)
        if value is None or any(getattr(value, where, None) is not None for where in ("maildir", "directory")):
            return False
        del self._items[key.name]
        return True

    def set(self, key: ServiceKey[T], value: T) -> None:
        """Install ``value`` (replacing any earlier one)."""
        self._items[key.name] = value

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, ServiceKey) and key.name in self._items
