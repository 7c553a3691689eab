"""The loader's quick paths (``Kind.quick``, ``Table.quick_row`` and the sections' row loops) agree
with the general path on every row: the same Scenario, or the same first error, word for word.

The quick paths convert plainly valid rows of contacts, properties and their contacts, compact
batches and their property lists, and mailboxes' user lists without building a position or a
path, and hand anything else to the general path. Here rows are mostly valid with wrong types,
unknown and missing keys, nulls, counts out of range or past the invoice cap, blank strings, long
ids, unknown references and duplicates (ids, addresses differing by case or spaces, a contact
listed twice) mixed in; each document is loaded with the quick paths on and off
(``fields.QUICK_PATHS``) and the outcomes compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenario import fields
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

HEADER = """\
schema: mailsim/1
start: 2026-11-02T00:00:00Z
organization:
  branches: [{id: b1}, {id: b2}]
"""

# values a row may hold instead of a good one: other types, blanks, spaces, a too-long id, a non-breaking space
ODD: list[object] = [None, 5, 1.5, True, False, "", " ", "a b", "x" * 201, "n\u00a0b", [], {}, ["c0"], {"id": "c0"}]
WRONG_KEYS = ["emial", "ID", "contacts_", 7]


@st.composite
def value(draw: st.DrawFn, good: st.SearchStrategy[object]) -> object:
    """Mostly a good value, sometimes an odd one."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(ODD))
    return draw(good)


@st.composite
def row(draw: st.DrawFn, fields_: dict[str, st.SearchStrategy[object]], required: tuple[str, ...]) -> object:
    """A mapping of the table's keys (optional ones left out at random), now and then broken."""
    out: dict[object, object] = {}
    for key, good in fields_.items():
        if key in required or draw(st.booleans()):
            out[key] = draw(value(good))
    roll = draw(st.integers(0, 29))
    if roll == 0 and out:
        out.pop(draw(st.sampled_from(sorted(out, key=str))))  # a key missing
    elif roll == 1:
        out[draw(st.sampled_from(WRONG_KEYS))] = "x"  # an unknown key
    elif roll == 2:
        return draw(st.sampled_from(["c1", 3, None, ["a"]]))  # not a mapping at all
    return out


def ids(prefix: str, n: int) -> st.SearchStrategy[object]:
    """Mostly distinct, sometimes repeated ids (prefix + a number a little past n)."""
    return st.integers(0, n + 2).map(lambda i: f"{prefix}{i}")


def emails(n: int) -> st.SearchStrategy[object]:
    """Addresses that collide now and then after trimming and lower-casing."""
    return st.tuples(st.integers(0, n + 2), st.sampled_from(["", " ", "  "]), st.booleans()).map(
        lambda t: f"{t[1]}{'Client' if t[2] else 'client'}{t[0]}@x.example{t[1]}"
    )


@st.composite
def document(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 8))
    contacts = [
        draw(row({"id": ids("c", n), "email": emails(n), "active": st.booleans()}, ("id", "email"))) for _ in range(n)
    ]
    links = st.lists(
        row(
            {
                "contact": ids("c", n),
                "email_invoice": st.booleans(),
                "primary": st.booleans(),
                "billing": st.booleans(),
            },
            ("contact",),
        ),
        max_size=3,
    )
    properties = [
        draw(
            row({"id": ids("p", n), "branch": st.sampled_from(["b1", "b2", "b3"]), "contacts": links}, ("id", "branch"))
        )
        for _ in range(draw(st.integers(1, n)))
    ]
    refs = st.lists(value(ids("p", n)), min_size=0, max_size=4)
    counts = st.sampled_from([10, 1, 3_000_000, 10**9, 10**9 + 1, 0, -1])  # 5,000,000 invoices at most in all
    compact = row({"count": counts, "properties": refs}, ("count", "properties"))
    invoices = st.one_of(compact, compact, st.just([{"id": "I1", "property": "p0"}]))
    batches = [draw(row({"id": ids("B", 2), "invoices": invoices}, ("id",))) for _ in range(draw(st.integers(0, 3)))]
    users = st.lists(value(st.sampled_from(["jane", "bob", "x@y", "a b", "é", "j\u2028k"])), max_size=4)
    mailboxes = [{"domain": f"d{k}.example", "users": draw(users)} for k in range(draw(st.integers(0, 2)))]
    lines = [HEADER]
    for name, rows in (
        ("contacts", contacts),
        ("properties", properties),
        ("batches", batches),
        ("mailboxes", mailboxes),
    ):
        lines.append(f"{name}:\n")
        lines.extend(f"  - {json.dumps(r)}\n" for r in rows)  # JSON is YAML flow style; one row per line
    return "".join(lines)


BATCH_HEADER = (
    HEADER
    + """\
contacts: [{id: c0, email: a@x.example}]
properties: [{id: p0, branch: b1}, {id: p1, branch: b2}, {id: p2, branch: b1}]
"""
)


@st.composite
def batch_row(draw: st.DrawFn, i: int) -> object:
    """A valid compact batch with at most one fault, so each kind of fault decides the outcome."""
    row: dict[object, Any] = {
        "id": f"B{i}" if draw(st.integers(0, 7)) else "B0",  # now and then a duplicate id
        "invoices": {
            "count": draw(st.sampled_from([10, 1, 10**9, 2_500_000])),  # 5,000,000 invoices at most in all
            "properties": draw(st.lists(st.sampled_from(["p0", "p1", "p2"]), min_size=1, max_size=3)),
        },
    }
    fault = draw(st.integers(0, 11))
    if fault == 0:
        row["invoices"]["count"] = draw(st.sampled_from([0, -1, 10**9 + 1, True, "5", 1.5, None, 10**50]))
    elif fault == 1:
        row["invoices"]["properties"] = draw(st.sampled_from([[], ["p3"], ["p0", 5], None, "p0", [None], ["p0", ""]]))
    elif fault == 2:
        row["id"] = draw(st.sampled_from(ODD))
    elif fault == 3:
        row["invoices"] = draw(st.sampled_from([None, [], [{"id": "I1", "property": "p0"}], "x", 5]))
    elif fault == 4:
        row[draw(st.sampled_from(WRONG_KEYS))] = 1
    elif fault == 5:
        row["invoices"]["propertys"] = ["p0"]
    elif fault == 6:
        del row[draw(st.sampled_from(["id", "invoices"]))]
    elif fault == 7:
        del row["invoices"][draw(st.sampled_from(["count", "properties"]))]
    return row


@st.composite
def batch_document(draw: st.DrawFn) -> str:
    """Valid contacts and properties, then compact batches with a fault here and there."""
    rows = [draw(batch_row(i)) for i in range(draw(st.integers(1, 4)))]
    return BATCH_HEADER + "batches:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rows)


@contextmanager
def quick_paths(on: bool) -> Iterator[None]:
    before = fields.QUICK_PATHS
    fields.QUICK_PATHS = on
    try:
        yield
    finally:
        fields.QUICK_PATHS = before


def outcome(text: str, quick: bool) -> Scenario | str:
    with quick_paths(quick):
        try:
            return load_scenario_text(text, "q.yaml")
        except ScenarioError as e:
            return str(e)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_quick_paths_agree_with_the_general_path(text: str) -> None:
    assert outcome(text, True) == outcome(text, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_document())
def test_quick_batches_agree_with_the_general_path(text: str) -> None:
    assert outcome(text, True) == outcome(text, False)


VALID = (
    HEADER
    + """\
contacts:
  - {id: c1, email: " Jane@x.example"}
  - {id: c2, email: bob@x.example, active: false}
properties:
  - {id: p1, branch: b1, contacts: [{contact: c1, email_invoice: true}, {contact: c2, billing: true}]}
  - {id: p2, branch: b2}
batches:
  - {id: B1, invoices: {count: 4, properties: [p1, p2]}}
mailboxes:
  - {domain: x.example, users: [jane, bob]}
"""
)


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("", "", None),
        (
            "{id: c2, email: bob",
            "{id: c1, email: bob",
            "q.yaml:7:10: duplicate contact id 'c1' (first defined at line 6)",
        ),
        (
            "email: bob@x.example",
            "email: jane@X.example ",
            "q.yaml:7:21: contacts[1].email: duplicate contact email 'jane@X.example': contact 'c1' (line 6) "
            "already has it (emails are unique, ignoring case and spaces)",
        ),
        (
            "{contact: c2, billing",
            "{contact: c1, billing",
            "q.yaml:9:83: properties[0].contacts[1].contact: contact 'c1' is listed twice on this property "
            "(first at line 9)",
        ),
        (
            "{id: p2, branch: b2}",
            "{id: p1, branch: b2}",
            "q.yaml:10:10: duplicate property id 'p1' (first defined at line 9)",
        ),
        (
            "[p1, p2]",
            "[p1, p3]",
            "q.yaml:12:52: batches[0].invoices.properties[1]: unknown property 'p3'; did you mean 'p2'?",
        ),
        (
            "[jane, bob]",
            "[jane, bob@x]",
            "q.yaml:14:39: mailboxes[0].users[1]: expected a local part like 'bob' (the domain is the mailbox's), "
            "got 'bob@x'",
        ),
        (
            "active: false}",
            "active: no}",
            "q.yaml:7:44: contacts[1].active: expected true or false, got 'no' (YAML 1.2: write true or false)",
        ),
    ],
)
def test_rows_load_or_fail_alike_both_ways(old: str, new: str, error: str | None) -> None:
    """Exact outcomes of a valid file and of one break each, with the quick paths on and off."""
    text = VALID.replace(old, new, 1)
    assert text != VALID or not old
    quick, general = outcome(text, True), outcome(text, False)
    assert quick == general
    if error is None:
        assert isinstance(quick, Scenario)
        assert [c.id for c in quick.contacts] == ["c1", "c2"]
        assert quick.contacts[0].email == " Jane@x.example" and quick.contacts[1].active is False
        assert quick.contacts[1].loc == "q.yaml:7:5"
        assert quick.properties[0].contacts[1].billing is True and quick.properties[1].contacts == ()
        assert quick.batches[0].compact is not None and quick.batches[0].compact.properties == ("p1", "p2")
        assert quick.mailboxes[0].users == ("jane", "bob")
    else:
        assert quick == error
