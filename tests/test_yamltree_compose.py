"""The composer's inlined hot paths build the same tree, or raise the same first error, as the
general path (:meth:`_Composer.scalar` and :meth:`_Composer.add` for every event).

``general_compose`` below is that general path written out: the event loop with no inlined case.
Documents mix plain, quoted and block scalars, keys that repeat, ``<<`` plain and quoted, merges,
anchors and aliases (known and unknown), tags, control characters in double quotes, nulls,
booleans and numbers; both parsers' event streams are composed both ways and compared with every
position and size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenario import yamltree
from simulator.scenario.errors import ScenarioError
from simulator.scenario.yamltree import YMap, YSeq

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["libyaml", "ruamel"] if yamltree._LibyamlParser is not None else ["ruamel"]


def general_compose(composer: yamltree._Composer, next_event: Callable[[], Any]) -> object:
    """Every event through scalar()/add(): the reference the inlined compose() must agree with."""
    y = yamltree
    stack: list[list[Any]] = []
    root: object = None
    have_root = False
    docs = 0
    written = 0
    while True:
        ev = next_event()
        kind = y._KINDS.get(type(ev), y._SKIP)
        if kind == y._SKIP:
            continue
        if kind == y._STOP:
            break
        mark = ev.start_mark
        pos = (mark.line + 1, mark.column + 1)
        if kind in (y._SCALAR, y._MAP, y._SEQ):
            written += 1
            if written > y.MAX_NODES:
                raise composer.too_many(pos)
        if kind == y._SCALAR:
            node = composer.scalar(ev, pos)
            anchor = ev.anchor
            plain = not ev.style and ev.tag is None
        elif kind == y._ALIAS:
            if ev.anchor not in composer.anchors:
                raise composer.fail(pos, f"unknown alias *{y._short(ev.anchor)}")
            node, anchor, plain = composer.anchors[ev.anchor], None, False
            composer.alias_nodes += y._size(node)
            if composer.alias_nodes > y.MAX_ALIAS_NODES:
                raise composer.fail(pos, "alias bomb")
        elif kind in (y._MAP, y._SEQ):
            tag = ev.tag
            if tag is not None and tag not in ("!", y._TAG + "map", y._TAG + "seq"):
                raise composer.fail(pos, f"unsupported tag {y._short(tag)!r}")
            if len(stack) >= y.MAX_DEPTH:
                raise composer.fail(pos, f"nested more than {y.MAX_DEPTH} levels deep")
            container = YMap(pos) if kind == y._MAP else YSeq(pos)
            stack.append([container, y._NOKEY, pos, None, ev.anchor])
            continue
        elif kind == y._END:
            entry = stack.pop()
            if entry[3]:
                composer.merge(entry[0], entry[3], entry[2])
            node, anchor, pos, plain = entry[0], entry[4], entry[0].pos, False
        else:
            docs += 1
            if docs > 1:
                raise composer.fail(pos, "expected one YAML document, found another (remove the '---')")
            continue
        if anchor is not None:
            composer.anchors[anchor] = node
        if not stack:
            root, have_root = node, True
            continue
        composer.add(stack[-1], node, pos, plain)
    return root if have_root else None


def tree(node: object) -> object:
    """Values, every position and every size, as plain data."""
    if isinstance(node, YMap):
        items = [(repr(k), node.keypos[k], node.valpos[k], tree(v)) for k, v in node.items()]
        return ("map", node.pos, node.size, items)
    if isinstance(node, YSeq):
        return ("seq", node.pos, node.size, node.itempos, [tree(v) for v in node])
    return (type(node).__name__, repr(node))


def outcome(text: str, backend: str, compose: Callable[[yamltree._Composer, Callable[[], Any]], object]) -> object:
    composer = yamltree._Composer("t.yaml")
    try:
        return tree(compose(composer, yamltree._BACKENDS[backend](text)))
    except ScenarioError as e:
        return str(e)
    except Exception as e:  # a parser's own error: the same event reached both ways
        return f"parser: {type(e).__name__}"


def agree(text: str) -> None:
    for backend in BACKENDS:
        inlined = outcome(text, backend, yamltree._Composer.compose)
        assert inlined == outcome(text, backend, general_compose), backend


SCALARS = [
    "a",
    "id",
    "c1",
    "true",
    "True",
    "false",
    "null",
    "~",
    "",
    "0",
    "-1",
    "1_000",
    "0x1f",
    "0o17",
    "1.5",
    ".5",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "yes",
    "no",
    "N",
    "t",
    "+x",
    "-",
    ".",
    "no way",
    "<<",
    "'<<'",
    '"<<"',
    "'q'",
    '"dq"',
    '"a\\x01b"',
    '"tab\\tok"',
    '"\\e"',
    "!!str 5",
    "!!int 7",
    "!!int x",
    "!!float 2",
    "!!bool true",
    "!!null ~",
    "!custom v",
    "! bang",
    "!!binary AA==",
    "&a1 v",
    "*a1",
    "*nope",
    "'it''s'",
    "x" * 70,
]


@st.composite
def node(draw: st.DrawFn, depth: int = 0) -> str:
    """A flow-style YAML node (scalars, lists, mappings, anchors, aliases, merges)."""
    roll = draw(st.integers(0, 9))
    if depth >= 3 or roll < 5:
        scalar = draw(st.sampled_from(SCALARS))
        if scalar[:1] not in "&*" and draw(st.integers(0, 4)) == 0:
            scalar = draw(st.sampled_from(["&a1 ", "&m "])) + scalar  # an anchored scalar, aliased later
        return scalar
    anchor = draw(st.sampled_from(["", "", "", "&m ", "&a1 "]))
    if roll < 7:
        items = draw(st.lists(node(depth + 1), max_size=4))
        return f"{anchor}[{', '.join(items)}]"
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(
            st.sampled_from(
                ["a", "b", "a", "1", "~", "true", "'<<'", "<<", "[x]", "{k: v}", "!!str k", "!!str <<", "! <<"]
            )
        )
        value = draw(st.sampled_from(["*m", "[*m, *a1]", "*a1"])) if key == "<<" else draw(node(depth + 1))
        pairs.append(f"{key}: {value}")
    tag = draw(st.sampled_from(["", "", "!!map ", "!!set "]))
    return f"{anchor}{tag}{{{', '.join(pairs)}}}"


@st.composite
def document(draw: st.DrawFn) -> str:
    """A block mapping or list of flow nodes, sometimes with a second document."""
    lines = []
    if draw(st.booleans()):
        for i in range(draw(st.integers(0, 6))):
            key = draw(st.sampled_from(["k", f"k{i}", "<<", "'<<'", "k0", "5"]))
            value = draw(st.sampled_from(["*m", "*a1"])) if key == "<<" else draw(node())
            lines.append(f"{key}: {value}")
    else:
        lines.extend(f"- {draw(node())}" for _ in range(draw(st.integers(0, 6))))
    if draw(st.integers(0, 9)) == 0:
        lines.append("---\nx: 1")
    return "\n".join(lines) + "\n"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_inlined_compose_agrees_with_the_general_path(text: str) -> None:
    agree(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, 'y', \"z\", ~, true, 0x10]\n",
        "a: 1\na: 2\n",  # duplicate key
        "{'<<': 1, b: 2}\n",  # a quoted << is a key
        "base: &b {x: 1}\nuse: {<<: *b, y: 2}\n",
        "base: &b {x: 1}\nother: &c {y: 2}\nuse: {<<: [*b, *c], z: 3}\n",  # a merge list ends as a sequence
        "a: &x v\nb: *x\nc: [&y w, *y]\n",  # anchored scalars
        "base: &b {x: 1}\nuse: {!!str <<: *b}\n",  # a tagged << is a key, not a merge
        'a: "bad\\x01"\n',  # control character
        "- !!int x\n",
        "[[a], {b: c}, &q [d], *q]\n",
        "plain\n",
        "'quoted'\n",
        "k: |\n  block\n",
    ],
)
def test_inlined_compose_agrees_on_each_case(text: str) -> None:
    agree(text)


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "tests" / "data").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_inlined_compose_agrees_on_the_corpus(path: Path) -> None:
    agree(path.read_text(encoding="utf-8"))


def test_limits_apply_alike_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node, list and key limits fail at the same node on the inlined path."""
    monkeypatch.setattr(yamltree, "MAX_LIST_ITEMS", 3)
    monkeypatch.setattr(yamltree, "MAX_MAPPING_KEYS", 2)
    for text in (
        "[a, b, c, d]\n",
        "[[a], [b], [c], [d]]\n",
        "{a: 1, b: 2, c: 3}\n",
        "[a, b, c]\n",
        "{a: [1], b: {}}\n",
    ):
        agree(text)
    assert outcome("[[a], [b], [c], [d]]\n", BACKENDS[0], yamltree._Composer.compose) == (
        "t.yaml:1:17: a list of more than 3 items; use compact batches (invoices: {count: N, properties: [...]}) "
        "or split the scenario"
    )
    monkeypatch.setattr(yamltree, "MAX_NODES", 5)
    for text in ("[a, b, c]\n", "[[a], [b, c]]\n", "{a: [1], b: {}}\n"):
        agree(text)
    assert outcome("- [a, b, c]\n- [d, e]\n", BACKENDS[0], yamltree._Composer.compose) == (
        "t.yaml:2:3: the document holds more than 5 values; describe large runs with compact batches "
        "(invoices: {count: N, properties: [...]}) or split the scenario"
    )
