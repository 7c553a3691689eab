"""Write a scenario file back with a few top-level changes, keeping everything else as the author wrote it.

Both ``mailsim step``'s ``save`` and ``mailsim chaos``'s reproduction files are "the original file,
plus or minus a few entries": a person reads them next to the original, so the rest of the file
(comments, layout, quoting) should survive byte for byte. The text editor does that for the usual
block-style top level; anything it cannot place safely falls back to ruamel.yaml's round trip, which
keeps comments but may reflow. Callers validate the text editor's output by loading it
(:func:`apply_edit` does) because a text edit is only a best guess at the YAML structure.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from simulator.scenario.errors import ScenarioError

_TOP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")
# where a missing top-level scalar goes: after the first of these keys that the file has
_ANCHORS = ("seed", "start")


@dataclass(frozen=True, slots=True)
class ListEdit:
    """Changes to one top-level list (``timeline``, ``faults``, ``expect``): items are one-line flow YAML."""

    key: str
    remove: frozenset[int] = frozenset()  # item positions to drop (0-based, in the file's order)
    append: tuple[str, ...] = ()
    replace: tuple[str, ...] | None = None  # the whole list (``remove``/``append`` are then ignored)


@dataclass(frozen=True, slots=True)
class ScenarioEdit:
    #: top-level scalars to set: written as ``key: value`` (text) or assigned as is (round trip)
    scalars: tuple[tuple[str, str | int], ...] = ()
    lists: tuple[ListEdit, ...] = field(default_factory=tuple)


def flow(value: object) -> str:
    """A parsed YAML value back as one line of flow YAML."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    s = str(value)
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9_.@-]*", s) is not None
    if plain and s.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return s
    return json.dumps(s, ensure_ascii=False)


def yaml_rt() -> Any:
    """ruamel.yaml round trip, set up the way scenario files are written (2-space maps, ``- `` items)."""
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def dump(y: Any, doc: object) -> str:
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def _blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Top-level key -> (first line, end line) of its block; trailing blank/comment lines excluded."""
    starts = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _TOP.match(line))]
    out: dict[str, tuple[int, int]] = {}
    for k, (i, key) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        while end > i + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        out[key] = (i, end)
    return out


def _items(lines: list[str], i: int, end: int) -> tuple[int, list[tuple[int, int]]] | None:
    """(indent, [(first line, end line)] per item) of the block list under line ``i``; None if not block style."""
    m = _TOP.match(lines[i])
    assert m is not None
    if m.group(2).split("#")[0].strip():
        return None  # flow style (``key: [...]``) or a scalar
    starts = [j for j in range(i + 1, end) if lines[j].lstrip().startswith("- ") or lines[j].strip() == "-"]
    if not starts:
        return 2, []
    indent = len(lines[starts[0]]) - len(lines[starts[0]].lstrip())
    starts = [j for j in starts if len(lines[j]) - len(lines[j].lstrip()) == indent]
    spans = [(a, starts[k + 1] if k + 1 < len(starts) else end) for k, a in enumerate(starts)]
    return indent, spans


def edit_text(text: str, edit: ScenarioEdit) -> str | None:
    """Apply ``edit`` to the text (block-style top level only); None when the layout does not allow it."""
    lines = text.splitlines()
    if any(line.startswith(("---", "...", "%")) for line in lines):
        return None
    blocks = _blocks(lines)
    edits: list[tuple[int, int, list[str]]] = []  # (from, to, replacement lines)
    for key, value in edit.scalars:
        if key in blocks:
            i, end = blocks[key]
            if end != i + 1:
                return None
            edits.append((i, end, [f"{key}: {value}"]))
            continue
        after = next((blocks[a] for a in _ANCHORS if a in blocks), None)
        if after is None or after[1] != after[0] + 1:
            return None
        edits.append((after[1], after[1], [f"{key}: {value}"]))
    for le in edit.lists:
        if le.replace is not None:
            new = [f"{le.key}:", *[f"  - {p}" for p in le.replace]] if le.replace else [f"{le.key}: []"]
            if le.key in blocks:
                i, end = blocks[le.key]
                edits.append((i, end, new))
            else:
                edits.append((len(lines), len(lines), new))
            continue
        if not le.remove and not le.append:
            continue
        if le.key not in blocks:
            if le.remove:
                return None
            edits.append((len(lines), len(lines), [f"{le.key}:", *[f"  - {e}" for e in le.append]]))
            continue
        i, end = blocks[le.key]
        found = _items(lines, i, end)
        if found is None:
            return None
        indent, spans = found
        if any(k >= len(spans) for k in le.remove):
            return None
        for k in le.remove:
            a, b = spans[k]
            edits.append((a, b, []))
        if le.append:
            edits.append((end, end, [" " * indent + f"- {e}" for e in le.append]))
    for a, b, repl in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[a:b] = repl
    return "\n".join(lines) + "\n"


def edit_yaml(text: str, edit: ScenarioEdit) -> str:
    """Apply ``edit`` through ruamel.yaml's round trip (comments kept, layout may change)."""
    from ruamel.yaml.comments import CommentedSeq

    y = yaml_rt()
    doc = y.load(text)
    for le in edit.lists:
        if le.replace is not None:
            if le.key in doc:
                del doc[le.key]
            doc[le.key] = y.load("\n".join(f"- {p}" for p in le.replace)) if le.replace else CommentedSeq()
            continue
        seq = doc.get(le.key)
        if not isinstance(seq, list):
            if le.remove:
                raise ValueError(f"{le.key} is not a list: cannot remove items from it")
            if not le.append:
                continue
            seq = CommentedSeq()
            doc[le.key] = seq
        for k in sorted(le.remove, reverse=True):
            del seq[k]
        for e in le.append:
            seq.append(y.load(f"[{e}]")[0])
    for key, value in edit.scalars:
        if key in doc:
            doc[key] = value
        else:
            keys = list(doc)
            anchor = next((a for a in _ANCHORS if a in keys), None)
            doc.insert(keys.index(anchor) + 1 if anchor is not None else 1, key, value)
    return str(dump(y, doc))


def apply_edit(text: str, edit: ScenarioEdit, path: str = "<string>") -> str:
    """The edited text: as a text edit when that loads as a scenario, else through the round trip."""
    from simulator.scenario.loader import load_scenario_text

    body = edit_text(text, edit)
    if body is not None:
        try:
            load_scenario_text(body, path)
        except ScenarioError:
            body = None
    return body if body is not None else edit_yaml(text, edit)
