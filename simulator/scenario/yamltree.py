"""YAML text → plain Python values that remember where each key, value and item was.

ruamel.yaml's parser supplies the events (its C parser when ``ruamel.yaml.clib`` is
installed, else the pure-Python one); this module composes them into :class:`YMap` /
:class:`YSeq` (``dict`` / ``list`` subclasses carrying 1-based positions) and resolves
scalars by the YAML 1.2 core schema, so ``yes`` stays a string and ``2026-11-02T09:00:00Z``
stays text for :mod:`simulator.scenario.times`. Composing from events is ~2.5× faster
than ruamel's round-trip loader, which matters for scenarios with thousands of entries.

Supported beyond plain YAML 1.2: anchors and aliases, merge keys (``<<: *base``),
``1_000_000`` digit separators. Errors (syntax, duplicate keys, complex keys, unknown
tags, several documents) are :class:`ScenarioError` with the node's position.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from ruamel.yaml.reader import ReaderError

from simulator.scenario.errors import ScenarioError

Pos = tuple[int, int]  # (line, column), 1-based

MAX_DEPTH = 64
MAX_INT_DIGITS = 40

try:  # the C parser of ruamel.yaml.clib, when installed
    from _ruamel_yaml import CParser as _CParser  # noqa: F401

    _PURE = False
except ImportError:  # pragma: no cover - depends on the environment
    _PURE = True


class YMap(dict[Any, Any]):
    """A mapping with the position of itself, each key and each value."""

    __slots__ = ("keypos", "pos", "valpos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.keypos: dict[Any, Pos] = {}
        self.valpos: dict[Any, Pos] = {}


class YSeq(list[Any]):
    """A sequence with the position of itself and of each item."""

    __slots__ = ("itempos", "pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.itempos: list[Pos] = []


class TooLarge:
    """A number with more digits than any field accepts (kept out of int() on purpose)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"TooLarge({self.text[:20]}...)"

    def __str__(self) -> str:
        return self.text if len(self.text) <= 40 else self.text[:37] + "..."


class _Unhashable:
    """Stands for a mapping or sequence used as a mapping key."""

    __slots__ = ()


_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_INT_RE = re.compile(r"[-+]?[0-9][0-9_]*")
_OCT_RE = re.compile(r"0o[0-7_]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F_]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)")

_TAG = "tag:yaml.org,2002:"


def _int(text: str, base: int) -> int | TooLarge:
    digits = text.replace("_", "")
    if len(digits) > MAX_INT_DIGITS:
        return TooLarge(text)
    return int(digits, base)


def resolve_plain(text: str) -> object:
    """A plain (unquoted) scalar by the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    first = text[:1]
    if not first or not (first.isdigit() or first in "+-."):
        return text
    if _INT_RE.fullmatch(text):
        return _int(text, 10)
    if _OCT_RE.fullmatch(text):
        return _int(text[2:], 8)
    if _HEX_RE.fullmatch(text):
        return _int(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        if len(text) > 400:
            return TooLarge(text)
        return float(text.replace("_", ""))
    if _INF_RE.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN_RE.fullmatch(text):
        return math.nan
    return text


class _Composer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.anchors: dict[str, object] = {}

    def fail(self, pos: Pos, message: str) -> ScenarioError:
        return ScenarioError(self.path, pos[0], pos[1], message)

    def scalar(self, ev: ScalarEvent, pos: Pos) -> object:
        tag = ev.tag
        value: str = ev.value
        if tag is None or tag == "!":
            if not ev.style and tag is None:  # plain (the C parser says "")
                return resolve_plain(value)
            return value
        if not tag.startswith(_TAG):
            raise self.fail(pos, f"unsupported tag {tag!r}")
        kind = tag[len(_TAG) :]
        if kind == "str":
            return value
        resolved = resolve_plain(value)
        expected: dict[str, tuple[type, ...]] = {
            "int": (int, TooLarge),
            "float": (float, int, TooLarge),
            "bool": (bool,),
            "null": (type(None),),
        }
        types = expected.get(kind)
        if types is None:
            raise self.fail(pos, f"unsupported tag !!{kind}")
        if (isinstance(resolved, bool) and kind != "bool") or not isinstance(resolved, types):
            raise self.fail(pos, f"!!{kind} {value!r} is not a valid {kind}")
        if kind == "float" and isinstance(resolved, int):
            return float(resolved)
        return resolved

    def compose(self, events: Any) -> object:
        """One document from an event iterator; None for an empty stream."""
        # stack entries: [container, pending key (maps), key position, merges, anchor]
        stack: list[list[Any]] = []
        root: object = None
        have_root = False
        docs = 0
        for ev in events:
            pos: Pos = (ev.start_mark.line + 1, ev.start_mark.column + 1)
            if isinstance(ev, StreamStartEvent | StreamEndEvent):
                continue
            if isinstance(ev, DocumentStartEvent):
                docs += 1
                if docs > 1:
                    raise self.fail(pos, "expected one YAML document, found another (remove the '---')")
                continue
            if isinstance(ev, ScalarEvent):
                node: object = self.scalar(ev, pos)
                anchor = ev.anchor
            elif isinstance(ev, AliasEvent):
                if ev.anchor not in self.anchors:
                    raise self.fail(pos, f"unknown alias *{ev.anchor}")
                node = self.anchors[ev.anchor]
                anchor = None
            elif isinstance(ev, MappingStartEvent | SequenceStartEvent):
                if ev.tag is not None and ev.tag not in ("!", _TAG + "map", _TAG + "seq"):
                    raise self.fail(pos, f"unsupported tag {ev.tag!r}")
                if len(stack) >= MAX_DEPTH:
                    raise self.fail(pos, f"nested more than {MAX_DEPTH} levels deep")
                container: YMap | YSeq = YMap(pos) if isinstance(ev, MappingStartEvent) else YSeq(pos)
                stack.append([container, _NOKEY, pos, [], ev.anchor])
                continue
            elif isinstance(ev, MappingEndEvent | SequenceEndEvent):
                entry = stack.pop()
                done: YMap | YSeq = entry[0]
                if entry[3]:
                    self.merge(done, entry[3])
                node, anchor, pos = done, entry[4], done.pos
            else:  # DocumentEndEvent and anything else carries no node
                continue
            if anchor is not None:
                self.anchors[anchor] = node
            if not stack:
                root, have_root = node, True
                continue
            self.add(stack[-1], node, pos, isinstance(ev, ScalarEvent) and not ev.style)
        return root if have_root else None

    def add(self, top: list[Any], node: object, pos: Pos, plain: bool) -> None:
        parent = top[0]
        if isinstance(parent, YSeq):
            parent.append(node)
            parent.itempos.append(pos)
            return
        if top[1] is _NOKEY:  # node is a key
            if isinstance(node, YMap | YSeq):
                raise self.fail(pos, "a mapping key must be a plain value, not a list or mapping")
            if node == "<<" and plain:
                top[1] = _MERGE
            else:
                if node in parent.keypos:
                    first = parent.keypos[node]
                    raise self.fail(pos, f"duplicate key {node!r} (first at line {first[0]})")
                top[1] = node
            top[2] = pos
            return
        key = top[1]
        top[1] = _NOKEY
        if key is _MERGE:
            sources = node if isinstance(node, YSeq) else [node]
            for src in sources:
                if not isinstance(src, YMap):
                    raise self.fail(pos, "a merge key (<<) needs a mapping or a list of mappings")
            top[3].extend(sources)
            return
        parent[key] = node
        parent.keypos[key] = top[2]
        parent.valpos[key] = pos

    @staticmethod
    def merge(target: YMap | YSeq, sources: list[YMap]) -> None:
        assert isinstance(target, YMap)
        for src in sources:
            for key, value in src.items():
                if key not in target:
                    target[key] = value
                    target.keypos[key] = src.keypos.get(key, src.pos)
                    target.valpos[key] = src.valpos.get(key, src.pos)


_NOKEY = object()
_MERGE = object()


def _line_col(text: str, index: int) -> Pos:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return (line, col)


def _error(path: str, text: str, exc: BaseException) -> ScenarioError:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "invalid YAML")
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}"
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return ScenarioError(path, line, col, f"invalid YAML: {problem}")
    if isinstance(exc, ReaderError):
        line, col = _line_col(text, exc.position)
        return ScenarioError(path, line, col, f"invalid YAML: {exc.reason} (character {exc.character!r})")
    if isinstance(exc, RecursionError):
        return ScenarioError(path, 1, 1, "invalid YAML: nested too deeply")
    if isinstance(exc, YAMLError):
        return ScenarioError(path, 1, 1, f"invalid YAML: {exc}")
    return ScenarioError(path, 1, 1, f"invalid YAML: {type(exc).__name__}: {exc}")


def parse_yaml(text: str, path: str) -> object:
    """The single document in ``text`` as YMap/YSeq/scalars (None when empty)."""
    yaml = YAML(typ="safe", pure=_PURE)
    composer = _Composer(path)
    try:
        return composer.compose(yaml.parse(text))
    except ScenarioError:
        raise
    except Exception as exc:  # ruamel raises assorted exceptions on odd input
        raise _error(path, text, exc) from None
