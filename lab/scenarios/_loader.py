"""Safe YAML with positions: every mapping, list and scalar keeps the
line and column it came from, so validation errors can point at them.

Only YAML's safe subset is read (PyYAML's ``SafeLoader`` composer): no
tags that build Python objects, no aliases (a few of them expand into an
exponentially large document), and files of at most :data:`MAX_FILE` bytes.

Tests: tests/scenarios/test_validation.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
import yaml.reader
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lab.errors import ScenarioError

__all__ = ["MAX_FILE", "LDict", "LList", "Mark", "YamlError", "compose_documents"]

MAX_FILE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in a file: 1-based line and column."""

    line: int
    col: int

    @classmethod
    def of(cls, node: Node | Any) -> Mark:
        mark = node.start_mark
        return cls(mark.line + 1, mark.column + 1)

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


class LDict(dict[str, Any]):
    """A mapping that remembers where it, its keys and its values are."""

    mark: Mark
    key_marks: dict[str, Mark]
    value_marks: dict[str, Mark]

    def where(self, key: str) -> Mark:
        """Where the value of ``key`` is (or the mapping, if it is absent)."""
        return self.value_marks.get(key, self.mark)


class LList(list[Any]):
    """A list that remembers where it and each of its items are."""

    mark: Mark
    marks: list[Mark]


class YamlError(ScenarioError):
    """The text is not YAML we accept; ``mark`` says where."""

    def __init__(self, message: str, mark: Mark, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.mark = mark


_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _Scalars(SafeConstructor):
    pass


_SCALARS = _Scalars()


def _convert(node: Node) -> Any:
    if isinstance(node, ScalarNode):
        try:
            return _SCALARS.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise YamlError(f"bad value: {getattr(exc, 'problem', exc)}", Mark.of(node)) from None
    if not isinstance(node, ScalarNode) and node.tag not in (_SEQ, _MAP):
        raise YamlError(f"the tag {node.tag!r} is not allowed here", Mark.of(node),
                        hint="scenario files hold plain lists and mappings")
    if isinstance(node, SequenceNode):
        out = LList(_convert(item) for item in node.value)
        out.mark = Mark.of(node)
        out.marks = [Mark.of(item) for item in node.value]
        return out
    if isinstance(node, MappingNode):
        mapping = LDict()
        mapping.mark = Mark.of(node)
        mapping.key_marks = {}
        mapping.value_marks = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlError("a key must be a plain word", Mark.of(key_node))
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError("merge keys (<<) are not supported", Mark.of(key_node),
                                hint="write the keys out")
            key = _convert(key_node)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in mapping:
                first = mapping.key_marks[key]
                raise YamlError(f"duplicate key {key!r} (first at line {first.line})", Mark.of(key_node))
            mapping[key] = _convert(value_node)
            mapping.key_marks[key] = Mark.of(key_node)
            mapping.value_marks[key] = Mark.of(value_node)
        return mapping
    raise YamlError(f"unsupported YAML node {type(node).__name__}", Mark.of(node))


class _Composer(yaml.SafeLoader):
    """Refuses aliases while composing, before anything is expanded."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlError("aliases (*name) are not supported", Mark.of(event),
                            hint="repeat the value instead")
        return super().compose_node(parent, index)


def compose_documents(text: str) -> list[tuple[Any, Mark]]:
    """Every YAML document in ``text`` as plain values with marks.

    :class:`YamlError` (with a mark) for text that is not YAML, uses
    aliases or merge keys, repeats a key, or is too large.
    """
    if len(text) > MAX_FILE:
        raise YamlError(f"file is {len(text)} bytes, more than {MAX_FILE}", Mark(1, 1),
                        hint="split it into several scenarios")
    try:
        loader = _Composer(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    docs: list[tuple[Any, Mark]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append((_convert(node), Mark.of(node)))
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = Mark(where.line + 1, where.column + 1) if where else Mark(1, 1)
        problem = exc.problem or "cannot parse"
        if exc.context:
            problem = f"{exc.context}: {problem}" if "while" not in exc.context else problem
        raise YamlError(f"bad YAML: {problem}", mark) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"bad YAML: {exc}", Mark(1, 1)) from None
    finally:
        loader.dispose()
    return docs


def _reader_error(text: str, exc: Any) -> YamlError:
    """A character YAML does not allow, with its position."""
    before = text[: exc.position]
    mark = Mark(before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
    return YamlError(f"bad YAML: character {exc.character:#06x} is not allowed", mark,
                     hint="control characters must be escaped inside double quotes, e.g. \"\\x1f\"")
