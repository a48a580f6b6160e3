"""Editing a DNS zone from the command language: `call SERVER NAME.METHOD`
reaches what a server offers by name (srv.zone), as `call CLIENT VERB`
reaches a client's verbs."""

from __future__ import annotations

import pytest

from lab import Lab
from lab.commands import Interpreter, command
from lab.errors import CommandError


def test_zone_add_and_remove_through_call(lab: Lab) -> None:
    """`call d zone.add www2 A 127.0.0.2` then a query sees it; the serial went up; remove undoes it."""
    interp = Interpreter(lab)
    interp.execute("serve dns as d; connect d as c")
    (added,) = interp.execute("call d zone.add www2 A 127.0.0.8")
    assert added.value == 2 and "d.zone.add -> 2" in added.text
    assert lab.get("c").query("www2.lab.test").values() == ["127.0.0.8"]  # type: ignore[attr-defined]
    interp.execute('call d zone.add @ MX "20 www2"')
    assert "20 www2.lab.test." in lab.get("c").query("lab.test", "MX").values()  # type: ignore[attr-defined]
    (removed,) = interp.execute("call d zone.remove www2")
    assert removed.value == 1
    assert lab.get("c").query("www2.lab.test").rcode == "NXDOMAIN"  # type: ignore[attr-defined]


def test_mistakes_say_what_a_server_offers(lab: Lab) -> None:
    """An unknown method lists the ones there are; a bad record is one line; servers without any are not callable."""
    interp = Interpreter(lab)
    interp.execute("serve dns as d; serve echo as e")
    with pytest.raises(CommandError, match=r"zone\.add"):
        interp.execute("call d zone.ad www A 127.0.0.1")
    with pytest.raises(Exception, match="not a A record"):
        interp.execute("call d zone.add www A nowhere")
    with pytest.raises(CommandError, match="not a client"):
        interp.execute("call e anything")
    assert "zone.add" in set(command("call").complete(lab, ["d"], ""))
    assert "d" in set(command("call").complete(lab, [], ""))


def test_call_shows_an_answer_as_the_log_does(lab: Lab) -> None:
    """A verb that returns a message prints its summary (records and rcode), not its bytes."""
    interp = Interpreter(lab)
    interp.execute("serve dns as d; connect d as q")
    (answer,) = interp.execute("call q query www.lab.test A")
    assert answer.text == "q.query -> answer NOERROR www.lab.test A 127.0.0.2"
