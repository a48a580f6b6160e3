"""Scenario validation: every malformed file fails before anything runs,
with FILE:LINE:COL, the step and what was expected; loading runs no code."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.errors import ScenarioError
from lab.scenarios import load_file, load_text
from lab.scenarios._loader import MAX_FILE

BAD = Path(__file__).parent / "bad"
BAD_FILES = sorted(BAD.glob("*.yaml"))
ROOT = Path(__file__).parent.parent.parent


def test_the_corpus_is_large() -> None:
    """The issue asks for at least 30 malformed files."""
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_malformed_file_gives_its_exact_error(path: Path) -> None:
    """Each file's first line holds its exact message after `FILE:`."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# error: "), f"{path.name} lacks its expected error"
    expected = first.removeprefix("# error: ")
    rel = path.relative_to(ROOT)
    with pytest.raises(ScenarioError) as info:
        load_file(rel)
    assert str(info.value) == f"{rel}:{expected}"
    assert "Traceback" not in str(info.value)


def test_the_issue_example_message(write: Callable[..., Path]) -> None:
    """`step 3: unknown step 'sned' — did you mean 'send'?` with its position."""
    path = write("""
        lab:
          e: {protocol: echo}
        steps:
          - connect: {to: e, as: c}
          - wait: 0
          - sned: {to: c, text: hi}
    """)
    with pytest.raises(ScenarioError, match=r"scenario\.yaml:6:5: step 3: unknown step 'sned' — did you mean 'send'\?"):
        load_file(path)


def test_safe_mode_refuses_programs_and_python(write: Callable[..., Path]) -> None:
    """--safe refuses spawn and python steps at load time; without it they load."""
    spawn = write("steps:\n  - spawn: {command: nc -h, as: p}\n", "spawn.yaml")
    hook = write("steps:\n  - python: json:dumps\n", "hook.yaml")
    assert load_file(spawn) and load_file(hook)
    with pytest.raises(ScenarioError, match=r"spawn\.yaml:2:12: step 1: spawn runs a program, which safe mode"):
        load_file(spawn, safe=True)
    with pytest.raises(ScenarioError, match=r"hook\.yaml:2:13: step 1: python hooks run code"):
        load_file(hook, safe=True)


@pytest.mark.parametrize(("text", "where"), [
    ("lab:\n  e: {protocol: echo, host: 0.0.0.0}\n", "2:29: lab server 'e': '0.0.0.0'"),
    ("lab:\n  px: {protocol: echo, to: '10.1.2.3:7'}\n", "2:28: lab server 'px': '10.1.2.3:7'"),
    ("steps:\n  - connect: {to: '192.0.2.1:7', protocol: echo, as: c}\n", "2:19: step 1: '192.0.2.1:7'"),
    ("steps:\n  - connect: echo example.com:7 as c\n", "2:14: step 1: 'example.com:7'"),
    ("steps:\n  - proxy: echo --to 127.0.0.1:7 --listen 0.0.0.0:0 as px\n", "2:12: step 1: '0.0.0.0'"),
])
def test_safe_mode_keeps_a_file_on_loopback(write: Callable[..., Path], text: str, where: str) -> None:
    """--safe refuses binding or dialling anything but loopback; without it the file loads."""
    path = write(text, "net.yaml")
    assert load_file(path)
    with pytest.raises(ScenarioError, match=re.escape(f"net.yaml:{where} is not a loopback address")):
        load_file(path, safe=True)
    loopback = text.replace("0.0.0.0", "127.0.0.1").replace("10.1.2.3", "127.0.0.2")
    loopback = loopback.replace("192.0.2.1", "[::1]").replace("example.com", "localhost")
    assert load_file(write(loopback, "local.yaml"), safe=True)


def test_loading_never_imports_a_hook(write: Callable[..., Path]) -> None:
    """A python step names a function; the module is not imported by loading."""
    path = write("steps:\n  - python: netlab_never_imported_module:boom\n")
    (scenario,) = load_file(path)
    assert scenario.steps[0].data["function"] == "netlab_never_imported_module:boom"
    assert "netlab_never_imported_module" not in sys.modules


def test_yaml_tags_that_build_objects_are_refused() -> None:
    """The safe loader refuses python/object tags with a position."""
    with pytest.raises(ScenarioError, match=r"x\.yaml:1:7: the tag 'tag:yaml.org,2002:python/object/apply:os"):
        load_text("name: !!python/object/apply:os.system ['true']\n", "x.yaml")
    with pytest.raises(ScenarioError, match=r"y\.yaml:1:7: bad value: could not determine a constructor"):
        load_text("name: !!python/name:os.system ''\n", "y.yaml")


def test_a_billion_laughs_is_refused_before_it_expands() -> None:
    """Aliases are refused while composing, so nothing expands."""
    text = 'a: &a ["x","x"]\nb: &b [*a,*a]\n' + "".join(f"c{i}: &c{i} [*b,*b]\n" for i in range(30))
    with pytest.raises(ScenarioError, match="aliases"):
        load_text(text, "lol.yaml")


def test_oversized_files_are_refused() -> None:
    """A file beyond the cap is one line of error, not a long parse."""
    with pytest.raises(ScenarioError, match=r"big\.yaml:1:1: file is \d+ bytes, more than"):
        load_text("#" * (MAX_FILE + 1), "big.yaml")


def test_missing_and_binary_files_are_one_line(tmp_path: Path) -> None:
    """No such file, a directory and non-UTF-8 bytes each get a plain message."""
    with pytest.raises(ScenarioError, match="no such file"):
        load_file(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="is a directory"):
        load_file(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_file(binary)


def test_a_good_file_normalizes_both_step_forms(write: Callable[..., Path]) -> None:
    """Mapping and command-text forms of a step give the same step."""
    path = write("""
        name: forms
        tags: [a, b]
        lab:
          e: {protocol: echo, options: {}}
          f: {protocol: finger, options: {user: {alice: Alice}}}
        steps:
          - connect: e as c
          - connect: {to: e, as: d}
          - send: c "hello world"
          - send: {to: d, text: hello world}
          - expect: c /hel+o/i
          - expect: {from: d, regex: "(?i)hel+o"}
          - connect: f as g
          - call: g query alice verbose=true
          - call: {client: g, verb: query, args: [alice], kwargs: {verbose: true}}
    """)
    (s,) = load_file(path)
    assert s.name == "forms" and s.tags == ("a", "b")
    assert s.servers[1].options == {"user": {"alice": "Alice"}}
    steps = s.steps
    assert steps[2].data == {**steps[3].data, "client": "c"}
    assert steps[4].data["regex"] == steps[5].data["regex"] == "(?i)hel+o"
    assert steps[7].data["args"] == steps[8].data["args"] == ["alice"]
    assert steps[7].data["kwargs"] == steps[8].data["kwargs"] == {"verbose": True}
    assert str(steps[2]) == "step 3 `send c 'hello world'`"


def test_several_documents_are_several_scenarios() -> None:
    """`---` separates scenarios; unnamed ones are named after the file."""
    scenarios = load_text("steps: []\n---\nname: two\nsteps: []\n", "many.yaml")
    assert [s.name for s in scenarios] == ["many-1", "two"]


def test_typed_option_values_go_through_the_option_parser() -> None:
    """A number for time's --offset is parsed like the text would be."""
    from lab import protocols

    spec = protocols.get("time")
    assert spec.resolve_options({"offset": 3600}).offset == 3600  # type: ignore[attr-defined]
    finger = protocols.get("finger")
    resolved = finger.resolve_options({"user": {"alice": "Alice Liddell"}})
    assert resolved.user == (("alice", "Alice Liddell"),)  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="wants one value, not a mapping"):
        protocols.get("daytime").resolve_options({"format": {"a": 1}})


# -- any input: a ScenarioError or a scenario, never another exception ------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = ["name", "lab", "steps", "protocol", "echo", "finger", "e", "c", "to", "as", "from", "text", "send",
          "connect", "expect", "call", "wait", "stop", "spawn", "assert", "save", "python", "options", "user",
          "regex", "equals", "timeout", "value", "count", "events", "fields", "port", "{e.port}", "{saved.x}",
          "verb", "query", "args", "kwargs", "closed", "hex", "tags", "serve"]
_SCALARS = st.one_of(st.sampled_from(_WORDS), st.integers(-5, 70000), st.floats(allow_nan=True),
                     st.booleans(), st.none(), st.text(max_size=12))
_TREES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_WORDS), inner, max_size=4)), max_leaves=25)


@given(_TREES)
def test_any_structure_loads_or_fails_with_a_scenario_error(tree: object) -> None:
    """Whatever the YAML holds, loading gives scenarios or one ScenarioError."""
    import yaml

    text = yaml.safe_dump(tree)
    try:
        load_text(text, "any.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("any.yaml:")


@given(st.text(max_size=300))
def test_any_text_loads_or_fails_with_a_scenario_error(text: str) -> None:
    """Arbitrary text, YAML or not, never raises anything but ScenarioError."""
    try:
        load_text(text, "t.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("t.yaml:")
