"""Safe mode and SSH: a jailed lab starts no SSH console (its default)
and no server open to other machines; SFTP alone, inside the jail, runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.errors import ConfigError
from lab.jail import Jail

PASSWORD = "s3cret-enough"


@pytest.fixture
def jailed(tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    here = tmp_path / "here"
    (here / "files").mkdir(parents=True)
    with Lab.start() as lab:
        lab.jail = Jail([here])
        yield lab, here


def test_the_console_is_refused_by_default(jailed: tuple[Lab, Path]) -> None:
    lab, _ = jailed
    with pytest.raises(ConfigError, match="runs the lab's commands"):
        lab.serve("ssh", password=PASSWORD)
    with pytest.raises(ConfigError, match="runs the lab's commands"):
        lab.serve("ssh", password=PASSWORD, console="yes")


def test_an_open_server_is_refused(jailed: tuple[Lab, Path]) -> None:
    lab, here = jailed
    with pytest.raises(ConfigError, match="other machines"):
        lab.serve("ssh", password=PASSWORD, console="no", sftp_root=str(here / "files"), allow_remote=True)


def test_sftp_alone_inside_the_jail_runs(jailed: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, here = jailed
    (here / "files" / "a.txt").write_text("a\n")
    srv = lab.serve("ssh", password=PASSWORD, console="no", sftp_root=str(here / "files"))
    c = lab.connect("ssh", srv, options={"password": PASSWORD})
    assert c.listdir("/") == ["a.txt"]
    assert c.run("ls").status == 1  # no console


def test_an_sftp_root_outside_the_jail_is_refused(jailed: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, _ = jailed
    with pytest.raises(ConfigError, match="outside the folders"):
        lab.serve("ssh", password=PASSWORD, console="no", sftp_root=str(tmp_path))


def test_telnet_and_other_servers_are_judged_as_before(jailed: tuple[Lab, Path]) -> None:
    """Defaults are checked too now: an echo telnet and a plain server still start."""
    lab, _ = jailed
    assert lab.serve("telnet").port
    assert lab.serve("echo").port
    with pytest.raises(ConfigError, match="telnet console"):
        lab.serve("telnet", mode="console", password=PASSWORD)
