"""YAML text → plain Python values that remember where each key, value and item was.

A YAML parser supplies the events; this module composes them into :class:`YMap` /
:class:`YSeq` (``dict`` / ``list`` subclasses carrying 1-based positions) and resolves
scalars by the YAML 1.2 core schema itself, so ``yes`` stays a string and
``2026-11-02T09:00:00Z`` stays text for :mod:`simulator.scenario.times` — whichever parser ran.

The parser is libyaml through PyYAML's ``CParser`` when it is importable (PyYAML comes with
dask; libyaml is ~20× faster than the pure-Python parser, which spent ~0.6 ms per line of a
large scenario), else ruamel.yaml's (its C parser with ``ruamel.yaml.clib``, else pure
Python). Only the *event stream* comes from the parser, and the two agree on it for every
scenario; syntax error wording differs slightly between them. Long top-level lists of one-line
rows are read by :mod:`simulator.scenario.flowrows` instead, into the same nodes (the parser
still reads the rest, and any document the rows cannot be read from exactly as it would).

Supported beyond plain YAML 1.2: anchors and aliases, merge keys (``<<: *base``),
``1_000_000`` digit separators. Errors (syntax, duplicate keys, complex keys, unknown
tags, several documents, the size limits of :mod:`simulator.scenario.limits`) are
:class:`ScenarioError` with the node's position.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from simulator.scenario.errors import ScenarioError
from simulator.scenario.flowrows import plug, splice
from simulator.scenario.limits import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_LIST_ITEMS,
    MAX_MAPPING_KEYS,
    MAX_NODES,
    MAX_SCALAR_CHARS,
)
from simulator.scenario.ynodes import MAX_INT_DIGITS, TEXT_FIRST, Pos, TooLarge, YMap, YSeq, resolve_plain
from simulator.scenario.ynodes import node_size as _size

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "TooLarge", "YMap", "YSeq", "parse_yaml", "resolve_plain", "too_large"]


try:  # libyaml through PyYAML (a dependency of dask)
    import yaml as _pyyaml
    from yaml._yaml import CParser as _LibyamlParser
except ImportError:  # pragma: no cover - depends on the environment
    _pyyaml = None
    _LibyamlParser = None

#: "libyaml" or "ruamel"; tests switch it to check that both parsers give the same trees.
BACKEND = "libyaml" if _LibyamlParser is not None else "ruamel"
#: read long lists of one-line rows without the parser (:mod:`simulator.scenario.flowrows`); tests switch it off
FAST_ROWS = True


_TAG = "tag:yaml.org,2002:"
# what a double-quoted escape ("\\e", "\\0", "\\x1b") can put in a value: control characters other
# than tab and line breaks, which would reach terminals and reports (raw ones are already YAML errors)
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")


# event kinds, so one dict lookup dispatches the events of either parser
_SKIP, _DOC, _SCALAR, _ALIAS, _MAP, _SEQ, _END, _STOP = range(8)
_KINDS: dict[type, int] = {}


def _add_kinds(mod: Any) -> None:
    """Let the composer dispatch the events of one parser's ``events`` module."""
    _KINDS.update(
        {
            mod.StreamStartEvent: _SKIP,
            mod.StreamEndEvent: _STOP,
            mod.DocumentEndEvent: _SKIP,
            mod.DocumentStartEvent: _DOC,
            mod.ScalarEvent: _SCALAR,
            mod.AliasEvent: _ALIAS,
            mod.MappingStartEvent: _MAP,
            mod.SequenceStartEvent: _SEQ,
            mod.MappingEndEvent: _END,
            mod.SequenceEndEvent: _END,
        }
    )


if _pyyaml is not None:
    _add_kinds(_pyyaml.events)


def _ruamel() -> Any:
    """ruamel.yaml, imported when first needed (its parser, or its errors): ≈22 ms a command otherwise."""
    import ruamel.yaml
    import ruamel.yaml.error
    import ruamel.yaml.events
    import ruamel.yaml.reader

    if ruamel.yaml.events.ScalarEvent not in _KINDS:
        _add_kinds(ruamel.yaml.events)
    return ruamel.yaml

_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int, TooLarge),
    "float": (float, int, TooLarge),
    "bool": (bool,),
    "null": (type(None),),
}


class _Composer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.anchors: dict[str, object] = {}
        self.alias_nodes = 0  # nodes added by aliases beyond the written ones
        self.written = 0  # scalars, lists and mappings of the document composed last

    def fail(self, pos: Pos, message: str) -> ScenarioError:
        return ScenarioError(self.path, pos[0], pos[1], message)

    def scalar(self, ev: Any, pos: Pos) -> object:
        tag = ev.tag
        value: str = ev.value
        if len(value) > MAX_SCALAR_CHARS:
            raise self.fail(
                pos,
                f"a value of {len(value):,} characters; at most {MAX_SCALAR_CHARS:,} are allowed in one value "
                "(shorten it; ids, names and DNS values are far shorter)",
            )
        if ev.style == '"':
            found = _CONTROL_RE.search(value)
            if found is not None:
                raise self.fail(
                    pos,
                    f"control character {found.group()!r} in a value; scenario values may hold tabs and line "
                    "breaks but no other control characters",
                )
        if tag is None or tag == "!":
            if not ev.style and tag is None:  # plain (the C parsers say "")
                return resolve_plain(value)
            return value
        if not tag.startswith(_TAG):
            raise self.fail(pos, f"unsupported tag {_short(tag)!r}")
        kind = tag[len(_TAG) :]
        if kind == "str":
            return value
        types = _SCALAR_TYPES.get(kind)
        if types is None:
            raise self.fail(pos, f"unsupported tag !!{_short(kind)}")
        resolved = resolve_plain(value)
        if (isinstance(resolved, bool) and kind != "bool") or not isinstance(resolved, types):
            raise self.fail(pos, f"!!{kind} {_short(value)!r} is not a valid {kind}")
        if kind == "float" and isinstance(resolved, int):
            return float(resolved)
        return resolved

    def compose(self, next_event: Callable[[], Any]) -> object:
        """One document from a parser's ``get_event``-like callable; None for an empty stream.

        The hot path is inlined (composing costs as much as libyaml's parsing, so every call per
        event shows in a 1,000,000-node file): a scalar without tag (plain, or quoted without a
        control character) or a finished list or mapping, going into a list or under a new key.
        Anything else, and every error, goes through :meth:`scalar` / :meth:`add` with the same
        checks in the same order.
        """
        # stack entries: [container, pending key (maps), key position, merges, anchor]
        stack: list[list[Any]] = []
        root: object = None
        have_root = False
        docs = 0
        kinds, resolve, text_first, control = _KINDS, resolve_plain, TEXT_FIRST, _CONTROL_RE.search
        nokey = _NOKEY
        written = 0  # scalars, lists and mappings written out (aliases have their own budget)
        while True:
            ev = next_event()
            kind = kinds.get(type(ev), _SKIP)
            if kind == _SCALAR:
                mark = ev.start_mark
                pos: Pos = (mark.line + 1, mark.column + 1)
                written += 1
                if written > MAX_NODES:
                    raise self.too_many(pos)
                value, style, anchor, tag = ev.value, ev.style, ev.anchor, ev.tag
                plain = not style and tag is None
                size = 1  # 0: not for the inlined path
                if tag is None and len(value) <= MAX_SCALAR_CHARS:
                    if plain:  # text unless it starts like a null, bool or number
                        node = value if value[:1] in text_first else resolve(value)
                    elif style != '"' or control(value) is None:
                        node = value
                    else:
                        node, size = self.scalar(ev, pos), 0  # raises the control character's error
                else:
                    node, size = self.scalar(ev, pos), 0
            elif kind == _END:
                entry = stack.pop()
                node = entry[0]
                if entry[3]:
                    self.merge(node, entry[3], entry[2])
                anchor, pos, plain, size = entry[4], node.pos, False, node.size
            elif kind in (_MAP, _SEQ):
                mark = ev.start_mark
                pos = (mark.line + 1, mark.column + 1)
                written += 1
                if written > MAX_NODES:
                    raise self.too_many(pos)
                tag = ev.tag
                if tag is not None and tag not in ("!", _TAG + "map", _TAG + "seq"):
                    raise self.fail(pos, f"unsupported tag {_short(tag)!r}")
                if len(stack) >= MAX_DEPTH:
                    raise self.fail(pos, f"nested more than {MAX_DEPTH} levels deep")
                container: YMap | YSeq = YMap(pos) if kind == _MAP else YSeq(pos)
                stack.append([container, nokey, pos, None, ev.anchor])
                continue
            elif kind == _ALIAS:
                mark = ev.start_mark
                pos = (mark.line + 1, mark.column + 1)
                name = ev.anchor
                if name not in self.anchors:
                    raise self.fail(pos, f"unknown alias *{_short(name)}")
                node = self.anchors[name]
                anchor, plain, size = None, False, 0
                self.alias_nodes += _size(node)
                if self.alias_nodes > MAX_ALIAS_NODES:
                    raise self.fail(
                        pos,
                        f"alias *{_short(name)} takes the document past {MAX_ALIAS_NODES:,} values reached through "
                        "aliases (an alias bomb?); write the values out or alias fewer, smaller nodes",
                    )
            elif kind == _DOC:
                docs += 1
                if docs > 1:
                    mark = ev.start_mark
                    raise self.fail(
                        (mark.line + 1, mark.column + 1), "expected one YAML document, found another (remove the '---')"
                    )
                continue
            elif kind == _STOP:
                break
            else:  # _SKIP
                continue
            if anchor is not None:
                self.anchors[anchor] = node
            if not stack:
                root, have_root = node, True
                continue
            top = stack[-1]
            parent = top[0]
            if size:  # the inlined add()
                key = top[1]
                if type(parent) is YSeq:
                    if len(parent) < MAX_LIST_ITEMS:
                        parent.append(node)
                        parent.itempos.append(pos)
                        parent.size += size
                        continue
                elif key is nokey:
                    keys = parent.keypos
                    if kind == _SCALAR and node != "<<" and node not in keys and len(keys) < MAX_MAPPING_KEYS:
                        top[1] = node
                        top[2] = pos
                        continue
                elif key is not _MERGE:
                    top[1] = nokey
                    parent.size += 1 + size
                    parent[key] = node
                    parent.keypos[key] = top[2]
                    parent.valpos[key] = pos
                    continue
            self.add(top, node, pos, plain)  # the general path, which raises the right error
        self.written = written
        return root if have_root else None

    def too_many(self, pos: Pos) -> ScenarioError:
        return self.fail(
            pos,
            f"the document holds more than {MAX_NODES:,} values; describe large runs with compact "
            "batches (invoices: {count: N, properties: [...]}) or split the scenario",
        )

    def add(self, top: list[Any], node: object, pos: Pos, plain: bool) -> None:
        parent = top[0]
        if isinstance(parent, YSeq):
            if len(parent) >= MAX_LIST_ITEMS:
                raise self.fail(
                    pos,
                    f"a list of more than {MAX_LIST_ITEMS:,} items; use compact batches "
                    "(invoices: {count: N, properties: [...]}) or split the scenario",
                )
            parent.append(node)
            parent.itempos.append(pos)
            parent.size += _size(node)
            return
        if top[1] is _NOKEY:  # node is a key
            if isinstance(node, YMap | YSeq):
                raise self.fail(pos, "a mapping key must be a plain value, not a list or mapping")
            if node == "<<" and plain:
                top[1] = _MERGE
            else:
                if node in parent.keypos:
                    first = parent.keypos[node]
                    raise self.fail(pos, f"duplicate key {_short(node)!r} (first at line {first[0]})")
                if len(parent.keypos) >= MAX_MAPPING_KEYS:
                    raise self.fail(pos, f"a mapping of more than {MAX_MAPPING_KEYS:,} keys; use a list instead")
                top[1] = node
            top[2] = pos
            return
        key = top[1]
        top[1] = _NOKEY
        parent.size += 1 + _size(node)
        if key is _MERGE:
            sources = node if isinstance(node, YSeq) else [node]
            for src in sources:
                if not isinstance(src, YMap):
                    raise self.fail(pos, "a merge key (<<) needs a mapping or a list of mappings")
            if top[3] is None:
                top[3] = []
            top[3].extend(sources)
            return
        parent[key] = node
        parent.keypos[key] = top[2]
        parent.valpos[key] = pos

    def merge(self, target: YMap | YSeq, sources: list[YMap], pos: Pos) -> None:
        """Apply ``<<`` sources; each distinct source once (a list of the same alias adds nothing)."""
        assert isinstance(target, YMap)
        seen: set[int] = set()
        for src in sources:
            if id(src) in seen:
                continue
            seen.add(id(src))
            for key, value in src.items():
                if key not in target:
                    if len(target) >= MAX_MAPPING_KEYS:
                        raise self.fail(pos, f"a mapping of more than {MAX_MAPPING_KEYS:,} keys; use a list instead")
                    target[key] = value
                    target.keypos[key] = src.keypos.get(key, src.pos)
                    target.valpos[key] = src.valpos.get(key, src.pos)


_NOKEY = object()
_MERGE = object()


def _short(value: object, limit: int = 60) -> str:
    """Text of a key, tag or value short enough for a one-line message."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # the parsers' line breaks


def _line_col(text: str, index: int) -> Pos:
    """(line, column) of a character index, counting line breaks as the parsers do (a lone CR too)."""
    index = max(0, min(index, len(text)))
    line, start = 1, 0
    for found in _BREAK_RE.finditer(text, 0, index):
        line, start = line + 1, found.end()
    return (line, index - start + 1)


def _index(text: str, line: int, column: int) -> int:
    """The character index of a parser's 1-based (line, column)."""
    start = 0
    for _ in range(line - 1):
        found = _BREAK_RE.search(text, start)
        if found is None:
            return len(text)
        start = found.end()
    return min(len(text), start + column - 1)


def _char_index(text: str, byte_offset: int) -> int:
    """libyaml reports reader errors as a byte offset into the UTF-8 text."""
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def _error_types() -> tuple[tuple[type[BaseException], ...], ...]:
    """Both parsers' (marked, reader, any) YAML error classes."""
    ry = _ruamel()
    marked: tuple[type[BaseException], ...] = (ry.error.MarkedYAMLError,)
    reader: tuple[type[BaseException], ...] = (ry.reader.ReaderError,)
    anything: tuple[type[BaseException], ...] = (ry.error.YAMLError,)
    if _pyyaml is not None:
        marked += (_pyyaml.MarkedYAMLError,)
        reader += (_pyyaml.reader.ReaderError,)
        anything += (_pyyaml.YAMLError,)
    return marked, reader, anything


def _error(path: str, text: str, exc: BaseException, byte_positions: bool) -> ScenarioError:
    marked, reader, anything = _error_types()
    if isinstance(exc, marked):
        mark = exc.problem_mark or exc.context_mark  # type: ignore[attr-defined]
        problem = str(exc.problem or exc.context or "invalid YAML")  # type: ignore[attr-defined]
        if exc.context and exc.problem:  # type: ignore[attr-defined]
            problem = f"{exc.context}: {exc.problem}"  # type: ignore[attr-defined]
        if "maximum nesting depth" in problem:  # libyaml's own cap (1000) can come before ours
            problem = f"nested more than {MAX_DEPTH} levels deep"
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return ScenarioError(path, line, col, f"invalid YAML: {problem}")
    if isinstance(exc, reader):
        index = exc.position  # type: ignore[attr-defined]
        if byte_positions:
            index = _char_index(text, index)
        line, col = _line_col(text, index)
        char = text[index] if index < len(text) else exc.character  # type: ignore[attr-defined]
        reason = exc.reason  # type: ignore[attr-defined]
        return ScenarioError(path, line, col, f"invalid YAML: {reason} (character {char!r})")
    if isinstance(exc, RecursionError):
        return ScenarioError(path, 1, 1, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
    if isinstance(exc, anything):
        return ScenarioError(path, 1, 1, f"invalid YAML: {_short(exc, 200)}")
    return ScenarioError(path, 1, 1, f"invalid YAML: {type(exc).__name__}: {_short(exc, 200)}")


def _libyaml_events(text: str) -> Callable[[], Any]:
    assert _LibyamlParser is not None
    return _LibyamlParser(text).get_event


def _ruamel_events(text: str) -> Callable[[], Any]:
    ry = _ruamel()
    try:  # the C parser of ruamel.yaml.clib, when installed
        import _ruamel_yaml  # noqa: F401

        pure = False
    except ImportError:  # pragma: no cover - depends on the environment
        pure = True
    events: Iterator[Any] = ry.YAML(typ="safe", pure=pure).parse(text)
    return events.__next__  # the stream ends with a StreamEndEvent before StopIteration


_BACKENDS: dict[str, Callable[[str], Callable[[], Any]]] = {"libyaml": _libyaml_events, "ruamel": _ruamel_events}


def too_large(path: str, size: int | None) -> ScenarioError:
    """The error for a scenario over :data:`MAX_FILE_BYTES` (``size`` None: unknown, e.g. a pipe)."""
    what = f"{size / 2**20:,.1f} MiB" if size is not None else f"more than {MAX_FILE_BYTES // 2**20} MiB"
    return ScenarioError(
        path,
        1,
        1,
        f"the scenario is {what}; at most {MAX_FILE_BYTES // 2**20} MiB are read "
        "(describe large runs with compact batches: invoices: {count: N, properties: [...]})",
    )


def check_text(text: str, path: str) -> None:
    """The limits a text breaks before any parsing: its size and text a parser cannot take."""
    if len(text) > MAX_FILE_BYTES:
        raise too_large(path, len(text))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        line, col = _line_col(text, e.start)
        raise ScenarioError(path, line, col, f"invalid text: {text[e.start]!r} is not a Unicode character") from None


@contextmanager
def no_cyclic_gc() -> Generator[None, None, None]:
    """Pause the cyclic garbage collector while a tree is built or validated.

    The trees hold no reference cycles, but each of their millions of dicts and lists is an
    object the collector rescans on every pass: with it running, loading 200,000 explicit
    invoices took twice as long. Nested uses are fine; the outermost restores the state.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_yaml(text: str, path: str) -> object:
    """The single document in ``text`` as YMap/YSeq/scalars (None when empty)."""
    with no_cyclic_gc():
        return _parse_yaml(text, path)


def _parse_yaml(text: str, path: str) -> object:
    check_text(text, path)
    backend = BACKEND if BACKEND in _BACKENDS and (BACKEND != "libyaml" or _LibyamlParser is not None) else "ruamel"
    events = _BACKENDS[backend]
    spliced = splice(text) if FAST_ROWS else None
    if spliced is not None:  # long lists of one-line rows read by flowrows, the rest by the parser
        composer = _Composer(path)
        try:
            root = composer.compose(events(spliced.text))
        except Exception:  # the original text gives the parser's own error
            pass
        else:
            if plug(root, spliced, composer.written):
                return root
    try:
        return _Composer(path).compose(events(text))
    except ScenarioError:
        raise
    except Exception as exc:  # the parsers raise assorted exceptions on odd input
        error = _error(path, text, exc, byte_positions=backend == "libyaml")
    if error.message.endswith(_TOO_DEEP):
        # libyaml's scanner looks ahead and stops at its own cap (1,000 flow levels) before we see the
        # 65th level; the text before that point reaches ours, at the position it really is
        try:
            _Composer(path).compose(events(text[: _index(text, error.line, error.column)]))
        except ScenarioError as inner:
            if inner.message.endswith(_TOO_DEEP):
                raise inner from None
        except Exception:  # the first error stands
            pass
    raise error
