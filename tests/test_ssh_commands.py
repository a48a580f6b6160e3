"""The command language with a library-owned client (SSH): `call` runs
its verbs and completes them; `send` and `expect` still refuse it."""

from __future__ import annotations

import pytest

from lab import Lab
from lab.commands import Interpreter
from lab.errors import CommandError

PASSWORD = "s3cret-enough"


def test_call_runs_the_verbs_of_a_library_owned_client(lab: Lab) -> None:
    interpreter = Interpreter(lab)
    interpreter.execute(f"serve ssh --password {PASSWORD} as sshd")
    interpreter.execute(f"connect ssh sshd as c -o password={PASSWORD}")
    (result,) = interpreter.execute("call c run ls")
    assert "sshd" in result.text and "status=0" in result.text
    assert "run" in interpreter.complete("call c r")
    with pytest.raises(CommandError, match="not a client"):
        interpreter.execute("send c hello")
    with pytest.raises(CommandError, match="offers no 'run'"):
        interpreter.execute("call sshd run ls")  # a server: its own methods, not a client's verbs
