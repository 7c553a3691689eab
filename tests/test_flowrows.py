"""Rows read without the parser (:mod:`simulator.scenario.flowrows`) give the parser's tree or its error.

Every document is parsed with the fast rows on and off (``yamltree.FAST_ROWS``) and compared with
every value, position and size, or the same first error (message, line, column). The documents
mix rows of the subset flowrows reads (plain, quoted, nested, numbers, bools, nulls, duplicates)
with rows just outside it (comments, anchors, tags, escapes, odd spacing, tabs, non-ASCII,
``key: value`` in a list, long values) and with arbitrary flow nodes from the composer's tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_yamltree_compose import node as any_node
from test_yamltree_compose import tree

from simulator.scenario import flowrows, yamltree
from simulator.scenario.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent


def outcome(text: str, fast: bool) -> object:
    old = yamltree.FAST_ROWS
    yamltree.FAST_ROWS = fast
    try:
        return tree(yamltree.parse_yaml(text, "t.yaml"))
    except ScenarioError as e:
        return ("error", e.line, e.column, e.message)
    finally:
        yamltree.FAST_ROWS = old


def agree(text: str) -> object:
    fast = outcome(text, True)
    assert fast == outcome(text, False)
    return fast


@pytest.fixture
def every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read sections of any length, and make a shape from every row."""
    monkeypatch.setattr(flowrows, "MIN_ROWS", 1)
    monkeypatch.setattr(flowrows, "SHAPE_ROWS", 1)


VALUES = ["c0", "a@b.example", "x_1", "p-9", "A/B", "a.b+c", "true", "False", "null", "NULL", "1", "0",
          "10", "1_000", "0x1f", "0o17", "1.5", "1e3", "12345678901234567890123456789012345678901234567890",
          "n", "t", "yes", "on", '"q"', '""', '"a, b"', '"x}"', '"[y]"', '"k: v"', '"1"', '"true"',
          '"~"', '"it\'s"', "[]", "{}", "[a, b]", "[1, 2, 3]", "[{k: v}]", "{a: 1}", "{a: [b, c]}"]
KEYS = ["id", "email", "contact", "count", "properties", "a", "b", "id", "1", "true", "x_y", "k-2"]
ODD = ["# note", " # note", "&a ", "!!str ", "*a", "'single'", '"esc\\n"', '"tab\t"', "é", "a:b", "a b",
       "{a:1}", "{a: 1,b: 2}", "{ a: 1}", "[a,b]", "- x", "<<: {a: 1}", "?", "%", "`", "@x", "-1", ".5",
       "+5", '"\x7f"', "x" * 30]


@st.composite
def subset_value(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 2 and draw(st.integers(0, 5)) == 0:
        if draw(st.booleans()):
            return "[" + ", ".join(draw(st.lists(subset_value(depth + 1), max_size=3))) + "]"
        return "{" + ", ".join(f"{draw(st.sampled_from(KEYS))}: {draw(subset_value(depth + 1))}"
                               for _ in range(draw(st.integers(0, 3)))) + "}"
    return draw(st.sampled_from(VALUES))


@st.composite
def row(draw: st.DrawFn) -> str:
    roll = draw(st.integers(0, 19))
    if roll == 0:
        return "{" + draw(any_node()) + "}"  # anything the composer's tests make, braced
    if roll == 1:
        return draw(any_node())
    pairs = [f"{draw(st.sampled_from(KEYS))}: {draw(subset_value())}" for _ in range(draw(st.integers(0, 4)))]
    text = "{" + ", ".join(pairs) + "}"
    if roll == 2:  # one odd piece somewhere in it
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(ODD)) + text[at:]
    return text


@st.composite
def section(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(["contacts", "properties", "batches", "contacts", "x", "true", "1", "a b",
                                "key # c", "key ", "&s key", "'q'", "<<"]))
    indent = draw(st.sampled_from(["  ", "  ", "", "    "]))
    rows = draw(st.lists(row(), min_size=0, max_size=6))
    lines = [f"{key}:"]
    for r in rows:
        lines.append(f"{indent}- {r}")
        extra = draw(st.integers(0, 30))
        if extra == 0:
            lines.append("")
        elif extra == 1:
            lines.append(f"{indent}# between rows")
        elif extra == 2:
            lines.append(f"{indent}  - nested?")
        elif extra == 3:
            lines.append("   ")
    if rows and draw(st.integers(0, 9)) == 0:
        lines[-1] += draw(st.sampled_from([" ", "  # tail", "\t"]))
    return "\n".join(lines)


@st.composite
def document(draw: st.DrawFn) -> str:
    parts = draw(st.lists(section(), min_size=1, max_size=4))
    if draw(st.booleans()):
        parts.insert(0, draw(st.sampled_from(["name: t", "schema: mailsim/1", "# head", "---", "a: [1,", "{a: 1,",
                                                 "&r {a: 1,", "!!map {b: 2,", "&r", "a: \"x"])))
    text = "\n".join(parts)
    return text + draw(st.sampled_from(["", "\n", "\n\n", "\n...\n", "\n---\nb: 1\n"]))


QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # the fixtures only set constants


@settings(max_examples=600, deadline=None, suppress_health_check=QUIET)
@given(document())
def test_fast_rows_give_the_parsers_tree_or_error(every_section: None, text: str) -> None:
    agree(text)


@settings(max_examples=150, deadline=None, suppress_health_check=QUIET)
@given(document(), st.integers(2, 60))
def test_fast_rows_keep_the_node_and_value_limits(monkeypatch: pytest.MonkeyPatch, text: str, limit: int) -> None:
    """Over a limit, the parser's own error (its position) — the fast rows never hide or move it."""
    monkeypatch.setattr(flowrows, "MIN_ROWS", 1)
    monkeypatch.setattr(flowrows, "SHAPE_ROWS", 1)
    for mod in (yamltree, flowrows):
        monkeypatch.setattr(mod, "MAX_NODES", limit)
        monkeypatch.setattr(mod, "MAX_SCALAR_CHARS", limit // 4 + 1)
        monkeypatch.setattr(mod, "MAX_LIST_ITEMS", limit // 10 + 1)
        monkeypatch.setattr(mod, "MAX_MAPPING_KEYS", limit // 20 + 1)
    agree(text)


def rows_text(n: int, template: str = '{{id: c{i}, email: "client{i}@client-{d:02d}.example"}}') -> str:
    return "\n".join(f"  - {template.format(i=i, d=i % 40)}" for i in range(n))


def long_sections_text() -> str:
    return f"schema: mailsim/1\ncontacts:\n{rows_text(200)}\nproperties:\n" + rows_text(
        100, "{{id: p{i}, branch: b{d}, contacts: [{{contact: c{i}, email_invoice: true}}]}}") + "\nname: x\n"


def test_a_long_section_is_read_by_shapes_and_equals_the_parsers() -> None:
    text = long_sections_text()
    spliced = flowrows.splice(text)
    assert spliced is not None and [(s.key, s.line, len(s.rows)) for s in spliced.sections] == [
        ("contacts", 2, 200), ("properties", 203, 100)]
    assert spliced.text.count("\n") == text.count("\n")  # every other line where it was
    assert agree(text)[0] == "map"  # type: ignore[index]


def test_a_long_section_makes_one_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    if flowrows.__file__.endswith((".so", ".pyd")):
        pytest.skip("counts shapes by patching a method that compiled code calls directly; the pure run counts them")
    text = long_sections_text()
    made: list[int] = []
    of = flowrows._Shape.of

    def counting(tokens: list[flowrows.Token]) -> flowrows._Shape:
        made.append(len(tokens))
        return of(tokens)

    monkeypatch.setattr(flowrows._Shape, "of", staticmethod(counting))
    doc = agree(text)
    assert len(made) == 2  # one shape per section: every other row matched it
    assert doc[0] == "map"  # type: ignore[index]


def test_a_section_outside_the_subset_is_left_to_the_parser(every_section: None) -> None:
    for odd in ("  # a comment\n", "  - &a {id: x}\n", '  - {id: "a\\tb"}\n', "  - {id: x}  \n", "  - {id: é}\n",
                "  - {id: a:b}\n", "  - {id: [a,b]}\n", "    - {id: deeper}\n", "  - !!map {id: x}\n",
                "  - {id: {b: c], d: [e}}\n"):  # the last: brackets closed crosswise
        text = f"a: 1\ncontacts:\n  - {{id: c0}}\n{odd}  - {{id: c1}}\nb: 2\n"
        spliced = flowrows.splice(text)
        assert spliced is None or all(s.key != "contacts" for s in spliced.sections), odd
        agree(text)


def test_errors_in_and_around_fast_rows_are_the_parsers(every_section: None) -> None:
    dup_in_row = "contacts:\n  - {id: c0, id: c1}\n  - {id: c2}\n"
    assert agree(dup_in_row)[:3] == ("error", 2, 14)  # type: ignore[index]
    dup_section = "contacts:\n  - {id: c0}\nx: 1\ncontacts:\n  - {id: c1}\n"
    assert agree(dup_section)[:3] == ("error", 4, 1)  # type: ignore[index]
    syntax_after = "contacts:\n  - {id: c0}\nb: [1, 2\n"
    assert agree(syntax_after)[0] == "error"  # type: ignore[index]
    # a block list inside a flow mapping is an error, though blanking it leaves a valid document
    for flow_root in ("{a: 1,\ncontacts:\n  - {id: c0}\n}\n", "--- {a: 1,\ncontacts:\n  - {id: c0}\n}\n",
                      "x: {a: 1,\ncontacts:\n  - {id: c0}\n}\n", "&r {a: 1,\ncontacts:\n  - {id: c0}\n}\n",
                      "!!map {a: 1,\ncontacts:\n  - {id: c0}\n}\n"):
        assert agree(flow_root)[0] == "error", flow_root  # type: ignore[index]
    # a "section" inside a quoted value that goes on at the margin: the text, not a list, and the real key later
    quoted = 'a: "x\ncontacts:\n  - {id: c0}\ny"\ncontacts: 1\n'
    assert flowrows.splice(quoted) is not None
    doc = agree(quoted)
    assert doc[3][0][3] == ("str", repr("x contacts: - {id: c0} y"))  # type: ignore[index]
    assert doc[3][1][:3] == ("'contacts'", (5, 1), (5, 11))  # type: ignore[index]


def test_limits_reached_in_fast_rows_are_the_parsers_errors(every_section: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    long_value = "contacts:\n  - {id: c0}\n  - {id: c01234567}\n"  # the second row matches the first's shape
    monkeypatch.setattr(yamltree, "MAX_SCALAR_CHARS", 8)
    monkeypatch.setattr(flowrows, "MAX_SCALAR_CHARS", 8)
    assert agree(long_value)[:3] == ("error", 3, 10)  # type: ignore[index]  # 9 characters
    assert agree(long_value.replace("c01234567", "c0123456"))[0] == "map"  # type: ignore[index]
    assert agree(long_value.replace("c01234567", '"c01234567"'))[:3] == ("error", 3, 10)  # type: ignore[index]
    assert agree(long_value.replace("c01234567", '"c0123456"'))[0] == "map"  # type: ignore[index]
    monkeypatch.undo()
    monkeypatch.setattr(flowrows, "MIN_ROWS", 1)
    monkeypatch.setattr(flowrows, "SHAPE_ROWS", 1)
    many = "a: 1\ncontacts:\n" + rows_text(3) + "\nproperties:\n" + rows_text(3) + "\n"
    total = agree(many)[2]  # type: ignore[index]  # the root's size: every node, no aliases
    assert total == 37
    for limit in (6, 12, 20, 28, total - 1, total):  # reached in the first section, the second, or not at all
        monkeypatch.setattr(yamltree, "MAX_NODES", limit)
        monkeypatch.setattr(flowrows, "MAX_NODES", limit)
        assert agree(many)[0] == ("error" if limit < total else "map")  # type: ignore[index]


def test_the_varied_benchmark_scenario_loads_alike_both_ways() -> None:
    from benchmarks.varied import scenario_text
    from simulator.scenario.loader import load_scenario_text

    text = scenario_text(10_000)
    spliced = flowrows.splice(text)
    assert spliced is not None and {s.key for s in spliced.sections} >= {"contacts", "properties"}
    agree(text)
    old = yamltree.FAST_ROWS
    try:
        fast = load_scenario_text(text, "varied.yaml")
        yamltree.FAST_ROWS = False
        assert load_scenario_text(text, "varied.yaml") == fast
    finally:
        yamltree.FAST_ROWS = old
