"""`netlab run --safe`: an untrusted file cannot listen beyond loopback,
start a console, or name a file outside its own folder; each attempt is one
FILE:LINE:COL line naming the key, refused before anything runs.  A safe
run's lab is jailed, so commands typed into it stay inside too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.commands import Interpreter
from lab.errors import LabError, ScenarioError
from lab.jail import MAX_PATH, Jail
from lab.scenarios import load_file
from lab.scenarios._runner import Runner

NETLAB = [sys.executable, "-m", "lab"]

# (id, the file after `name:`, the key the error names, its line)
# OUT is a folder next to the scenario's; LINK (in the scenario's folder) points at it
ESCAPES: list[tuple[str, str, str, int]] = [
    ("maildir-absolute", "lab:\n  mx: {protocol: smtp, options: {maildir: OUT/mail}}", "maildir", 3),
    ("maildir-var-tmp", "lab:\n  mx: {protocol: smtp, options: {maildir: /var/tmp/netlab-x}}", "maildir", 3),
    ("maildir-dotdot", "lab:\n  mx:\n    protocol: smtp\n    options:\n      maildir: ../../../../var/tmp/y",
     "maildir", 6),
    ("maildir-parent", "lab:\n  p: {protocol: pop3, options: {maildir: ..}}", "maildir", 3),
    ("maildir-in-and-out", "lab:\n  p: {protocol: pop3, options: {maildir: mail/../../out}}", "maildir", 3),
    ("maildir-symlink", "lab:\n  mx: {protocol: smtp, options: {maildir: LINK/mail}}", "maildir", 3),
    ("store-symlink-itself", "lab:\n  n: {protocol: nntp, options: {store: LINK}}", "store", 3),
    ("store-root-symlink", "lab:\n  n: {protocol: nntp, options: {store: ROOTLINK/etc}}", "store", 3),
    ("store-home", "lab:\n  n: {protocol: nntp, options: {store: ~/news}}", "store", 3),
    ("store-tilde", "lab:\n  n: {protocol: nntp, options: {store: '~'}}", "store", 3),
    ("store-env", "lab:\n  n: {protocol: nntp, options: {store: $HOME/news}}", "store", 3),
    ("store-env-braces", "lab:\n  n: {protocol: nntp, options: {store: '${TMPDIR}/news'}}", "store", 3),
    ("store-windows-env", "lab:\n  n: {protocol: nntp, options: {store: '%APPDATA%/news'}}", "store", 3),
    ("store-nul", 'lab:\n  n: {protocol: nntp, options: {store: "news\\0/../../x"}}', "store", 3),
    ("store-long", f"lab:\n  n: {{protocol: nntp, options: {{store: {'d/' * (MAX_PATH // 2 + 1)}x}}}}", "store", 3),
    ("password-file-etc", "lab:\n  t: {protocol: telnet, options: {password_file: /etc/passwd}}",
     "password_file", 3),
    ("password-file-dotdot", "lab:\n  t: {protocol: telnet, options: {password_file: ../secret.txt}}",
     "password_file", 3),
    ("password-file-symlink", "lab:\n  t: {protocol: telnet, options: {password_file: SECRETLINK}}",
     "password_file", 3),
    ("console", "lab:\n  t: {protocol: telnet, options: {mode: console, password: known}}", "mode", 3),
    ("console-capitals", "lab:\n  t: {protocol: telnet, options: {mode: CONSOLE, password: known}}", "mode", 3),
    ("allow-remote", "lab:\n  t:\n    protocol: telnet\n    options: {allow_remote: true}", "allow_remote", 5),
    ("console-issue", "lab:\n  t:\n    protocol: telnet\n    host: 127.0.0.1\n"
     "    options: {mode: console, password: known, allow_remote: true}", "mode", 6),
    ("serve-text-console", "steps:\n  - serve: telnet --mode console --password known as t", "mode", 3),
    ("serve-text-remote", "steps:\n  - serve: telnet --allow-remote as t", "allow_remote", 3),
    ("serve-text-maildir", "steps:\n  - serve: smtp --maildir /var/tmp/z as mx", "maildir", 3),
    ("serve-text-host", "steps:\n  - serve: echo --host 10.1.2.3 as e", "10.1.2.3", 3),
    ("serve-mapping-maildir", "steps:\n  - serve: {protocol: pop3, as: p, options: {maildir: OUT}}", "maildir", 3),
    ("host-any-v4", "lab:\n  e: {protocol: echo, host: 0.0.0.0}", "0.0.0.0", 3),
    ("host-any-v6", "lab:\n  e: {protocol: echo, host: '::'}", "::", 3),
    ("host-other", "lab:\n  e: {protocol: echo, host: 192.0.2.1}", "192.0.2.1", 3),
    ("host-name", "lab:\n  e: {protocol: echo, host: example.org}", "example.org", 3),
    ("proxy-listen", "lab:\n  e: echo\nsteps:\n  - proxy: {protocol: echo, to: e, as: px, host: 0.0.0.0}",
     "0.0.0.0", 5),
    ("proxy-to", "lab:\n  px: {protocol: echo, to: '192.0.2.1:7'}", "192.0.2.1:7", 3),
    ("connect-remote", "steps:\n  - connect: {to: '198.51.100.7:25', protocol: smtp, as: c}", "198.51.100.7", 3),
    ("connect-variable-host", "lab:\n  e: echo\nsteps:\n  - save: {name: h, value: 10.0.0.1}\n"
     "  - connect: {to: '{saved.h}:{e.port}', protocol: echo, as: c}", "saved.h", 6),
    ("spawn", "steps:\n  - spawn: {command: touch OUT/spawned, as: p}", "spawn", 3),
    ("python", "steps:\n  - python: os:system", "python", 3),
]

# the same keys with paths that stay inside: loaded, paths made absolute
INSIDE = [
    ("maildir", "mail"),
    ("maildir", "./sub/../mail"),
    ("maildir", "INLINK/mail"),
]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The scenario's folder (with symlinks out, to /, to a secret and to
    a folder inside) and a folder beside it that no file may reach."""
    here, out = tmp_path / "scenarios", tmp_path / "out"
    here.mkdir()
    out.mkdir()
    (tmp_path / "secret.txt").write_text("hunter2\n", encoding="utf-8")
    (here / "inside").mkdir()
    (here / "LINK").symlink_to(out)
    (here / "ROOTLINK").symlink_to("/")
    (here / "SECRETLINK").symlink_to(tmp_path / "secret.txt")
    (here / "INLINK").symlink_to(here / "inside")
    return here, out


def _write(here: Path, out: Path, name: str, body: str) -> Path:
    path = here / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body.replace('OUT', str(out))}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "body", "key", "line"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_safe_load_refuses_each_escape(folders: tuple[Path, Path], name: str, body: str, key: str,
                                       line: int) -> None:
    """One FILE:LINE:COL line that names the key and gives a hint; without
    --safe, only spawn's and python's steps would have loaded anyway."""
    here, out = folders
    path = _write(here, out, name, body)
    with pytest.raises(ScenarioError) as info:
        load_file(path, safe=True)
    text = str(info.value)
    assert "\n" not in text
    assert re.match(rf"{re.escape(str(path))}:{line}:\d+: ", text), text
    assert key in text and " — " in text
    assert "hunter2" not in text  # a refused password file is never read


def test_netlab_run_safe_refuses_every_escape_before_anything_runs(folders: tuple[Path, Path]) -> None:
    """As a process: exit 2, one line per file, nothing created outside."""
    here, out = folders
    paths = [_write(here, out, name, body) for name, body, _key, _line in ESCAPES]
    done = subprocess.run([*NETLAB, "run", "--safe", *map(str, paths)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=here)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    for path in paths:
        assert sum(line.startswith(f"{path}:") for line in lines) == 1, (path, done.stderr)
    assert lines[-1] == f"netlab: {len(paths)} files did not load; nothing was run"
    assert done.stdout == ""
    assert list(out.iterdir()) == []
    assert not Path("/var/tmp/netlab-x").exists()


@pytest.mark.parametrize(("key", "value"), INSIDE)
def test_safe_load_takes_paths_inside_the_folder(folders: tuple[Path, Path], key: str, value: str) -> None:
    """Relative paths start at the file's folder, whatever the working
    directory, and come out real (symlinks followed)."""
    here, out = folders
    path = _write(here, out, "inside", f"lab:\n  mx: {{protocol: smtp, options: {{{key}: {value}}}}}")
    (scenario,) = load_file(path, safe=True)
    given = Path(scenario.servers[0].options[key])
    assert given.is_absolute() and given.is_relative_to(here.resolve())


def test_safe_takes_addresses_of_the_lab_itself(folders: tuple[Path, Path]) -> None:
    """Loopback, a lab server's name and its {NAME.host}/{NAME.port} pass."""
    here, out = folders
    path = _write(here, out, "loopback", textwrap.dedent("""\
        lab:
          e: {protocol: echo, host: '::1'}
          f: {protocol: echo, host: localhost}
          px: {protocol: echo, to: e}
        steps:
          - connect: {to: '[{e.host}]:{e.port}', protocol: echo, as: a}
          - connect: {to: '127.0.0.1:{f.port}', protocol: echo, as: b}
          - connect: {to: '{px.address}', protocol: echo, as: c}
          - connect: {to: px, as: d}"""))
    assert len(load_file(path, safe=True)[0].steps) == 4
    sneaky = _write(here, out, "sneaky", "lab:\n  e: echo\nsteps:\n"
                    "  - connect: {to: '10.0.0.1:{e.port}', protocol: echo, as: c}")
    with pytest.raises(ScenarioError, match=r"sneaky\.yaml:5:\d+: .*10\.0\.0\.1"):
        load_file(sneaky, safe=True)


def test_without_safe_the_same_files_run_and_a_wide_listener_warns(folders: tuple[Path, Path]) -> None:
    """Today's freedom: a maildir outside, a console on loopback; a server
    beyond loopback is a warning naming FILE:LINE:COL (not started here)."""
    here, out = folders
    free = _write(here, out, "free", textwrap.dedent("""\
        lab:
          mx: {protocol: smtp, options: {maildir: OUT/mail}}
          t: {protocol: telnet, options: {mode: console, password: known}}
        steps:
          - connect: {to: t, as: c}
          - expect: {from: c, regex: "(?i)password", timeout: 10}"""))
    done = subprocess.run([*NETLAB, "run", str(free)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "mail").is_dir()
    wide = _write(here, out, "wide", "lab:\n  e: {protocol: echo, host: 0.0.0.0}")
    (scenario,) = load_file(wide)
    assert scenario.warnings == [f"{wide}:3:29: lab server 'e': listens on 0.0.0.0, reachable from other machines"]
    # -k that matches nothing: the warning is printed, nothing binds
    done = subprocess.run([*NETLAB, "run", str(wide), "-k", "no-such-scenario"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert f"netlab: warning: {wide}:3:29: lab server 'e': listens on 0.0.0.0" in done.stderr


# -- the jail of a running lab ---------------------------------------------------------


@pytest.fixture
def jailed(folders: tuple[Path, Path]) -> Iterator[tuple[Lab, Path, Path]]:
    here, out = folders
    with Lab.start() as lab:
        lab.jail = Jail([here])
        yield lab, here, out


@pytest.mark.parametrize("command", [
    "save OUT/x.yaml",
    "save ../../../../var/tmp/netlab-y.yaml",
    "save LINK/x.yaml",
    "save ~/x.yaml",
    "record start OUT/z.yaml",
    "record start ../out/z.yaml",
    "log save OUT/log.jsonl",
    "log export --pcap OUT/x.pcapng",
    "serve smtp --maildir OUT/mail as mx",
    "serve nntp --store ../out as n",
    "serve telnet --password-file ../secret.txt as t",
    "serve telnet --mode console --password known as t",
    "serve echo --host 0.0.0.0 as e",
    "proxy echo --to base --listen 0.0.0.0:0 as px",
    "proxy echo --to 192.0.2.1:7 as px",
    "connect echo 192.0.2.1:7 as c",
])
def test_a_jailed_lab_refuses_commands_that_reach_out(jailed: tuple[Lab, Path, Path], command: str) -> None:
    """What a console typed into a safe run's lab: refused, nothing written."""
    lab, here, out = jailed
    interp = Interpreter(lab)
    interp.execute("serve echo as base")
    cwd = os.getcwd()
    os.chdir(here)  # commands' relative paths start at the working directory
    try:
        with pytest.raises(LabError, match="safe mode"):
            interp.execute(command.replace("OUT", str(out)))
    finally:
        os.chdir(cwd)
    assert list(out.iterdir()) == []
    assert set(lab.endpoints) == {"base"}, lab.endpoints


def test_a_jailed_lab_writes_inside(jailed: tuple[Lab, Path, Path]) -> None:
    """Inside the folders, save, record, log and serve work as ever."""
    lab, here, _out = jailed
    interp = Interpreter(lab)
    interp.execute(f"serve smtp --maildir {here / 'mail'} as mx; save {here / 'lab.yaml'}; "
                   f"log save {here / 'log.jsonl'}; record start {here / 'rec.yaml'}; record stop")
    assert {p.name for p in here.iterdir()} >= {"lab.yaml", "log.jsonl", "rec.yaml"}


def test_a_safe_run_jails_its_own_lab_to_the_files_folder(folders: tuple[Path, Path]) -> None:
    """The runner gives its lab the jail; without safe, none."""
    here, out = folders
    path = _write(here, out, "plain", "lab:\n  e: echo\nsteps:\n  - connect: {to: e, as: c}")
    (scenario,) = load_file(path, safe=True)
    runner = Runner(scenario, safe=True)
    assert runner.run().passed
    assert runner.lab.jail is not None and runner.lab.jail.roots == (here.resolve(),)
    plain = Runner(scenario)
    assert plain.run().passed and plain.lab.jail is None
