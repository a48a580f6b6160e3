"""The IRC server's options: names, the welcome, keep-alive, flood and
size limits.

Tests: tests/protocols/test_irc.py
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.protocols._options import Options, integer, number, option, seconds

__all__ = ["IrcOptions", "server_name"]


def server_name(text: str) -> str:
    """A host name with a dot and nothing IRC would read as punctuation."""
    if not text or any(c in text for c in " \r\n\x00:!@,") or "." not in text:
        raise ValueError(f"wants a host name with a dot, got {text!r}")
    return text


@dataclass(frozen=True, kw_only=True)
class IrcOptions(Options):
    """How an IRC server names itself, greets, keeps clients alive and
    limits them."""

    server_name: str = option("irc.lab.test", help="the server's name in replies", parse=server_name,
                              metavar="NAME", example="irc.lab.test")
    network: str = option("netlab", help="the network name in the welcome and 005", metavar="NAME")
    password: str | None = option(help="require this PASS before registration", metavar="TEXT")
    motd: str = option("Welcome to the netlab IRC server.", help="the message of the day (empty: 422 no MOTD)",
                       metavar="TEXT", show_default="a greeting")
    ping_interval: float = option(90.0, help="PING a client quiet for this many seconds",
                                  parse=seconds(0.01), metavar="SECONDS", example="90", show_default="90")
    ping_timeout: float = option(60.0, help="drop a client that does not answer a PING in time",
                                 parse=seconds(0.01), metavar="SECONDS", example="60", show_default="60")
    register_timeout: float = option(60.0, help="drop a client not registered in time",
                                     parse=seconds(0.01), metavar="SECONDS", example="60", show_default="60")
    flood_burst: int = option(20, help="lines a client may send at once before they wait (0: off)",
                              parse=integer(0), metavar="LINES", example="20")
    flood_rate: float = option(5.0, help="lines per second once the burst is spent",
                               parse=number(0.01), metavar="PER_SECOND", example="5", show_default="5")
    flood_queue: int = option(200, help="waiting lines past which a client is dropped",
                              parse=integer(1), metavar="LINES", example="200")
    max_channels: int = option(20, help="channels one user may join", parse=integer(1), metavar="N",
                               example="20")
    max_users: int = option(200, help="registered users on this server", parse=integer(1), metavar="N",
                            example="200")
