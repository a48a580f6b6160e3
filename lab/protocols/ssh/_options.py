"""The SSH server's and client's options: what ``serve ssh`` and
``connect ssh -o NAME=VALUE`` take.

Tests: tests/protocols/test_ssh.py
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.protocols._options import Options, integer, name_value, option, seconds, yes_no
from lab.protocols.telnet._options import parse_password, read_password_env, read_password_file

__all__ = ["DEFAULT_USER", "SshClientOptions", "SshOptions"]

DEFAULT_USER = "lab"  # the login name --password is for, and the client's default


@dataclass(frozen=True, kw_only=True)
class SshOptions(Options):
    """``serve ssh`` options."""

    user: tuple[tuple[str, str], ...] = option(help="an account that may log in with its password",
                                               parse=name_value("NAME=PASSWORD"), multiple=True,
                                               metavar="NAME=PASSWORD", example="alice=wonderland")
    password: str | None = option(help=f"the password of the account {DEFAULT_USER!r}",
                                  parse=parse_password, metavar="SECRET")
    password_file: str | None = option(help=f"read the password of {DEFAULT_USER!r} from the first line of FILE",
                                       parse=read_password_file, metavar="FILE")
    password_env: str | None = option(help=f"read the password of {DEFAULT_USER!r} from environment variable NAME",
                                      parse=read_password_env, metavar="NAME")
    authorized_keys: str | None = option(help="public keys (OpenSSH authorized_keys format) that log in as any"
                                         " account name", metavar="FILE")
    host_key: str | None = option(help="the server's private host key (default: one made for the lab, kept"
                                  " while it lives)", metavar="FILE")
    sftp_root: str | None = option(help="offer SFTP, jailed to DIR", metavar="DIR")
    console: bool = option(True, help="a shell or a command runs the lab's command language (no: refused)",
                           parse=yes_no(), metavar="yes|no")
    allow_remote: bool = option(False, help="let the server listen on and accept non-loopback addresses",
                                flag=True)
    login_grace: float = option(30.0, help="seconds to finish logging in", parse=seconds(1, 3600),
                                metavar="SECONDS", show_default="30")
    max_channels: int = option(8, help="sessions (shell, command, SFTP) one connection may hold at once",
                               parse=integer(1, 100), metavar="N")


@dataclass(frozen=True, kw_only=True)
class SshClientOptions(Options):
    """``connect ssh -o NAME=VALUE`` options."""

    user: str = option(DEFAULT_USER, help="the login name", metavar="NAME")
    password: str | None = option(help="the password to log in with", parse=parse_password, metavar="SECRET")
    password_env: str | None = option(help="read the password from environment variable NAME",
                                      parse=read_password_env, metavar="NAME")
    key: str | None = option(help="a private key to log in with", metavar="FILE")
    known_hosts: str | None = option(help="check the server's host key against FILE (default: not checked,"
                                     " its fingerprint is logged)", metavar="FILE")
