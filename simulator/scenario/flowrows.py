"""Long lists of one-line rows (``  - {id: c0, email: "a@b.example"}``) read without the YAML parser.

A large scenario is mostly such rows: the 1M-invoice benchmark's 20,000 contacts and 20,000
properties are 40,000 of its 42,000 lines, and composing them from libyaml's events (≈10 Python
event objects a row, each turned into a node) was most of its load time. A top-level section
whose every line is such a row, written in the plain subset below, is read here with one regex
scan a row; the parser gets the text with those lines blanked (line numbers unchanged) and its
tree gets the rows back where the section's empty value was. Anything outside the subset — a
comment, an anchor, a tag, a single-quoted or escaped string, a ``:`` in a plain value, unusual
spacing, a non-ASCII character, a limit reached — leaves the section to the parser, and any
error anywhere sends the whole text back to it: the tree, its positions and sizes, and every
error are the parser's own (``tests/test_flowrows.py`` compares them).

The subset: a flow mapping ``{key: value, ...}`` (``, `` and ``: `` exactly) whose keys are plain
and whose values are plain scalars of ``[A-Za-z0-9_][A-Za-z0-9_.@+/-]*``, double-quoted strings
of printable ASCII without ``"`` or ``\\``, or flow sequences / mappings of the same, a few deep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.scenario.limits import MAX_LIST_ITEMS, MAX_MAPPING_KEYS, MAX_NODES, MAX_SCALAR_CHARS
from simulator.scenario.ynodes import TEXT_FIRST, Pos, YMap, YSeq, node_size, resolve_plain

__all__ = ["MIN_ROWS", "Section", "Spliced", "plug", "splice"]

#: sections with fewer rows are left to the parser (not worth the splice); tests lower it
MIN_ROWS = 32
MAX_NESTING = 6  # flow levels inside a row (the scenario's rows use three)

MAX_SHAPES = 16  # shapes remembered per section (rows of other shapes are read token by token)
SHAPE_ROWS = 64  # a shape is made only while at least this many rows are left to read

_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):")
_ROW_LINE = re.compile(r"( *)- (\{.*\})")


class _NotFast(Exception):
    """A row outside the subset: its section goes to the parser."""


@dataclass(frozen=True, slots=True)
class Section:
    """A top-level key whose rows were read here: its 1-based line and the rows (``rows.size`` nodes)."""

    key: str
    line: int
    rows: YSeq


@dataclass(frozen=True, slots=True)
class Spliced:
    """The text for the parser (the sections' rows blanked) and the sections to put back."""

    text: str
    sections: tuple[Section, ...]


def splice(text: str) -> Spliced | None:
    """The sections of ``text`` that can be read here, and the text left for the parser; None: none."""
    if "\r" in text or text.startswith("\ufeff"):
        return None
    lines = text.split("\n")
    sections: list[Section] = []
    blank: list[tuple[int, int]] = []  # [start, end) line indexes to blank
    i, n = 0, len(lines)
    while i < n:
        key = _KEY_LINE.fullmatch(lines[i])
        if key is None or resolve_plain(key.group(1)) != key.group(1):
            i += 1
            continue
        start = j = i + 1
        indent: str | None = None
        while j < n:
            row = _ROW_LINE.fullmatch(lines[j])
            if row is None or (indent is not None and row.group(1) != indent):
                break
            indent = row.group(1)
            j += 1
        rows = j - start
        after = j
        while after < n and lines[after] == "":  # blank lines may follow the rows
            after += 1
        # what comes next starts at the left margin (a key, a comment): nothing more of this value
        ends_well = after == n or lines[after][:1] not in (" ", "\t", "-")
        if indent is not None and rows >= MIN_ROWS and rows <= MAX_LIST_ITEMS and ends_well:
            try:
                seq = _rows(lines, start, j, len(indent))
            except _NotFast:
                pass
            else:
                sections.append(Section(key.group(1), i + 1, seq))
                blank.append((start, j))
        i = max(j, i + 1)
    if not sections:
        return None
    for a, b in blank:
        lines[a:b] = [""] * (b - a)
    return Spliced("\n".join(lines), tuple(sections))


def plug(root: object, spliced: Spliced, written: int) -> bool:
    """Put the sections' rows into ``root`` (the parser's tree of ``spliced.text``, ``written`` nodes).

    False when the tree is not what the sections were read for (the root is not a block mapping
    at the left margin — in a flow mapping a block list is an error — or the key is not one of
    its keys with an empty value on that line) or the whole would pass the node limit: the
    caller then parses the original text, which gives the parser's own tree or error.
    """
    if not isinstance(root, YMap):
        return False
    line = spliced.text.split("\n", root.pos[0])[root.pos[0] - 1]
    # a block mapping's first key at the margin; not a flow mapping (maybe behind "--- ", an anchor or a tag)
    if not (line[:1].isalnum() or line[:1] in "_\"'"):
        return False
    total = written
    for s in spliced.sections:
        if root.keypos.get(s.key) != (s.line, 1) or s.key not in root or root[s.key] is not None:
            return False
        total += s.rows.size - 1  # the empty value the parser saw was one node
    if total > MAX_NODES:
        return False
    for s in spliced.sections:
        root[s.key] = s.rows
        root.valpos[s.key] = s.rows.pos
        root.size += s.rows.size - 1
    return True


def _rows(lines: list[str], start: int, end: int, indent: int) -> YSeq:
    """The block sequence of rows ``lines[start:end]`` (each ``<indent>- {...}``).

    The rows of a section mostly share a shape (the same keys, nesting and list lengths, other
    values): the first row of each shape is read token by token (:func:`_row`), which also makes
    the shape's regex and builder; the rows that match it cost one match and one builder call.
    """
    seq = YSeq((start + 1, indent + 1))
    itempos = seq.itempos
    shapes: list[_Shape] = []
    at = indent + 2
    for k in range(start, end):
        line = lines[k]
        row = None
        for shape in shapes:
            m = shape.regex.fullmatch(line, at)
            if m is not None:
                row = shape.build(m, k + 1)
                break
        if row is None:
            row, tokens = _row(line, k + 1, at)
            if len(shapes) < MAX_SHAPES and end - k >= SHAPE_ROWS:  # a shape costs ≈1 ms to make
                shapes.insert(0, _Shape.of(tokens))
        seq.append(row)
        itempos.append(row.pos)
        seq.size += row.size
    return seq


Token = tuple[str | None, str, int]  # (kind, text, 1-based column)

# a plain value, or a double-quoted one (printable ASCII, no escapes); their length is checked apart
_PLAIN = "[A-Za-z0-9_][A-Za-z0-9_.@+/-]*"
_QUOTED = '"[ !#-\\[\\]-~]*"'
_TOKEN = re.compile(f"(?P<open>[{{\\[])|(?P<close>[}}\\]])|(?P<comma>, )|(?P<colon>: )|(?P<plain>{_PLAIN})"
                    f"|(?P<quoted>{_QUOTED})")


def _row(line: str, lineno: int, at: int) -> tuple[YMap, list[Token]]:
    """One row (``line[at:]`` is its flow mapping) as the composer builds it, and its tokens."""
    if not line.isascii():
        raise _NotFast
    tokens: list[Token] = []
    pos = at
    for m in _TOKEN.finditer(line, at):
        if m.start() != pos:
            raise _NotFast  # something between tokens: not the subset
        tokens.append((m.lastgroup, m.group(), m.start() + 1))
        pos = m.end()
    if pos != len(line):
        raise _NotFast
    node, i = _node(tokens, 0, lineno, 0)
    if i != len(tokens) or not isinstance(node, YMap):
        raise _NotFast
    return node, tokens


def _scalar(kind: str | None, text: str) -> object:
    """A plain (resolved) or quoted (its text) token; one over the length limit is the parser's to name."""
    if kind == "plain":
        if len(text) > MAX_SCALAR_CHARS:
            raise _NotFast
        return text if text[0] in TEXT_FIRST else resolve_plain(text)
    if len(text) > MAX_SCALAR_CHARS + 2:
        raise _NotFast
    return text[1:-1]


def _more(tokens: list[Token], i: int, close: str) -> tuple[bool, int]:
    """After an item of a flow list or mapping: (True, the next item) after ``, ``, (False, past it) at ``close``."""
    if i < len(tokens):
        if tokens[i][0] == "comma":
            return True, i + 1
        if tokens[i][1] == close:
            return False, i + 1
    raise _NotFast


def _node(tokens: list[Token], i: int, lineno: int, depth: int) -> tuple[object, int]:
    """The node starting at ``tokens[i]``, and the index after it."""
    if i >= len(tokens):
        raise _NotFast
    kind, text, col = tokens[i]
    if kind == "plain" or kind == "quoted":
        return _scalar(kind, text), i + 1
    if kind != "open" or depth >= MAX_NESTING:
        raise _NotFast
    i += 1
    if text == "[":
        seq = YSeq((lineno, col))
        if i < len(tokens) and tokens[i][1] == "]":
            return seq, i + 1
        while True:
            item_col = tokens[i][2] if i < len(tokens) else 0
            item, i = _node(tokens, i, lineno, depth + 1)
            seq.append(item)
            seq.itempos.append((lineno, item_col))
            seq.size += node_size(item)
            if len(seq) > MAX_LIST_ITEMS:
                raise _NotFast
            more, i = _more(tokens, i, "]")
            if not more:
                return seq, i
    mapping = YMap((lineno, col))
    if i < len(tokens) and tokens[i][1] == "}":
        return mapping, i + 1
    while True:
        if i + 2 >= len(tokens) or tokens[i][0] != "plain" or tokens[i + 1][0] != "colon":
            raise _NotFast
        key = _scalar("plain", tokens[i][1])
        if key in mapping.keypos or len(mapping) >= MAX_MAPPING_KEYS:
            raise _NotFast  # the parser names the duplicate (or the limit)
        key_pos: Pos = (lineno, tokens[i][2])
        val_pos: Pos = (lineno, tokens[i + 2][2])
        value, i = _node(tokens, i + 2, lineno, depth + 1)
        mapping[key] = value
        mapping.keypos[key] = key_pos
        mapping.valpos[key] = val_pos
        mapping.size += 1 + node_size(value)
        more, i = _more(tokens, i, "}")
        if not more:
            return mapping, i


_SLOT = f"{_QUOTED}|{_PLAIN}"  # a shape's value slot: one quoted or plain token (its length checked by _value)


def _value(text: str) -> object:
    """A value slot of a shape, read as :func:`_scalar` reads the token."""
    return _scalar("quoted" if text[0] == '"' else "plain", text)


@dataclass(frozen=True, slots=True)
class _Shape:
    """The regex of the rows shaped like one already read (its tokens, any value in each value's
    place) and a builder made for it that builds such a row as :func:`_node` would.

    The keys and punctuation are the read row's, and the builder checks that each value slot
    holds one plain or quoted token of allowed length (else the section is the parser's), so a row it
    builds has its tokens in the same order and kinds (a slot's token ends where the punctuation
    after it begins, which neither kind of token can contain), and so the same structure, keys
    and sizes; only the values and the columns differ, and the builder takes both from the match.
    """

    regex: re.Pattern[str]
    build: Callable[[re.Match[str], int], YMap]

    @classmethod
    def of(cls, tokens: list[Token]) -> _Shape:
        rx: list[str] = []
        code: list[str] = []
        consts: list[object] = []
        groups = 0

        def group(pattern: str) -> int:
            nonlocal groups
            groups += 1
            rx.append(f"({pattern})")
            return groups

        def node(i: int) -> tuple[str, int, int]:  # (variable, its size, next token)
            kind, text, _col = tokens[i]
            var = f"v{i}"
            if kind != "open":  # a value slot
                g = group(_SLOT)
                code.append(f"{var} = V(g({g}))")
                return var, 1, i + 1
            g = group(re.escape(text))
            seq = text == "["
            code.append(f"{var} = {'YSeq' if seq else 'YMap'}((L, s({g}) + 1))")
            size = 1
            i += 1
            while tokens[i][0] != "close":
                if seq:
                    first = groups + 1
                    item, item_size, i = node(i)
                    code.append(f"{var}.append({item}); {var}.itempos.append((L, s({first}) + 1))")
                else:
                    consts.append(_scalar("plain", tokens[i][1]))
                    key = f"K[{len(consts) - 1}]"
                    kg = group(re.escape(tokens[i][1]))
                    rx.append(": ")
                    first = groups + 1
                    item, item_size, i = node(i + 2)
                    code.append(f"{var}[{key}] = {item}; {var}.keypos[{key}] = (L, s({kg}) + 1); "
                                f"{var}.valpos[{key}] = (L, s({first}) + 1)")
                    item_size += 1
                size += item_size
                if tokens[i][0] == "comma":
                    rx.append(", ")
                    i += 1
            rx.append(re.escape(tokens[i][1]))
            code.append(f"{var}.size = {size}")
            return var, size, i + 1

        root, _size, _end = node(0)
        src = "def build(m, L):\n    s = m.start\n    g = m.group\n" + "".join(
            f"    {line}\n" for line in code) + f"    return {root}\n"
        namespace: dict[str, Any] = {"YMap": YMap, "YSeq": YSeq, "V": _value, "K": tuple(consts)}
        exec(compile(src, "<flowrows shape>", "exec"), namespace)  # the source is made of escaped tokens above
        return cls(re.compile("".join(rx)), namespace["build"])
