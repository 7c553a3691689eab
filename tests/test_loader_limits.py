"""The loader's limits (simulator.scenario.limits): absurd files end quickly with a located error.

Every case here is an input that would otherwise cost gigabytes or minutes — a 10 GB file, a
billion invoices, ten million aliased events, nesting a hundred thousand levels deep, alias and
merge-key bombs, 50 MB scalars — and every one must end in a ``ScenarioError`` whose line and
column are inside the text (never a ``RecursionError``, ``MemoryError`` or hang). No test times
anything: the limits make the work small, and a regression shows up as a test that never ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import simulator.scenario.yamltree as yamltree
from simulator.scenario.errors import ScenarioError
from simulator.scenario.limits import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_DNS_RECORDS,
    MAX_ENTITIES,
    MAX_EXPECTATIONS,
    MAX_EXPLICIT_INVOICES,
    MAX_FAULTS,
    MAX_FILE_BYTES,
    MAX_LIST_ITEMS,
    MAX_MAILBOX_DOMAINS,
    MAX_MAPPING_KEYS,
    MAX_SCALAR_CHARS,
    MAX_SMALL_LIST,
    MAX_TIMELINE_EVENTS,
    MAX_TOTAL_INVOICES,
)
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.yamltree import YMap, YSeq, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
MINI = "schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\n"
ORG = MINI + (
    "organization: {branches: [{id: b1}]}\n"
    "users: [{id: u1, email: ar@acme.example}]\n"
    "contacts: [{id: c1, email: jane@client.example}]\n"
    "properties: [{id: p1, branch: b1, contacts: [{contact: c1, email_invoice: true}]}]\n"
)
BACKENDS = ["libyaml", "ruamel"] if yamltree._LibyamlParser is not None else ["ruamel"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both parsers must honour every limit the same way (ruamel is the fallback without PyYAML)."""
    monkeypatch.setattr(yamltree, "BACKEND", request.param)
    yield request.param


def error_of(text: str, path: str = "s.yaml") -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, path)
    assert_located(e.value, text)
    return e.value


def assert_located(err: ScenarioError, text: str) -> None:
    assert 1 <= err.line <= len(text.splitlines()) + 1, str(err)[:300]
    assert err.column >= 1, str(err)[:300]
    assert len(err.message) < 400, err.message[:400]


def line_col(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


# --- file size -------------------------------------------------------------------------------------


def test_a_10_gb_file_is_refused_from_its_size(tmp_path: Path) -> None:
    p = tmp_path / "huge.yaml"
    with p.open("wb") as f:
        f.write(MINI.encode())
        f.truncate(10 * 2**30)  # sparse: no disk used, and the loader must not read it
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert (e.value.line, e.value.column) == (1, 1)
    assert "10,240.0 MiB; at most 64 MiB" in e.value.message and "compact batches" in e.value.message


def test_a_file_just_under_the_cap_is_read(tmp_path: Path) -> None:
    p = tmp_path / "big.yaml"
    p.write_bytes(MINI.encode() + b"#" * (MAX_FILE_BYTES - len(MINI) - 1) + b"\n")
    assert load_scenario(p).name == "big"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_an_endless_device_is_read_only_up_to_the_cap() -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario("/dev/zero")
    assert "more than 64 MiB" in e.value.message


def test_text_over_the_cap_is_refused_before_parsing() -> None:
    err = error_of(MINI + "#" * MAX_FILE_BYTES)
    assert (err.line, err.column) == (1, 1) and "at most 64 MiB" in err.message


def test_unreadable_paths_are_located_errors(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.yaml", "bad\0path.yaml"):
        with pytest.raises(ScenarioError) as e:
            load_scenario(path)
        assert (e.value.line, e.value.column) == (1, 1) and "cannot read the file" in e.value.message


# --- invoices --------------------------------------------------------------------------------------


def test_total_invoices_cap_points_at_the_count_that_crosses_it() -> None:
    text = ORG + (
        "batches:\n"
        "  - {id: B1, invoices: {count: 3000000, properties: [p1]}}\n"
        "  - {id: B2, invoices: {count: 3000000, properties: [p1]}}\n"
    )
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, "3000000", nth=1)
    assert err.message.startswith("batches[1].invoices.count: this makes 6,000,000 invoices across all batches")
    assert f"at most {MAX_TOTAL_INVOICES:,}" in err.message


def test_a_billion_invoices_in_one_batch() -> None:
    text = ORG + "batches: [{id: B1, invoices: {count: 1_000_000_000, properties: [p1]}}]\n"
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, "1_000")
    assert "1,000,000,000 invoices" in err.message


def test_explicit_invoices_count_towards_the_total() -> None:
    text = ORG + (
        "batches:\n"
        f"  - {{id: B1, invoices: {{count: {MAX_TOTAL_INVOICES - 1}, properties: [p1]}}}}\n"
        "  - {id: B2, invoices: [{id: I-1, property: p1}, {id: I-2, property: p1}]}\n"
    )
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, "{id: I-2")
    assert "batches[1].invoices[1]: this makes 5,000,001 invoices" in err.message


def test_exactly_the_cap_loads() -> None:
    text = ORG + (
        "batches:\n"
        f"  - {{id: B1, invoices: {{count: {MAX_TOTAL_INVOICES // 2}, properties: [p1]}}}}\n"
        f"  - {{id: B2, invoices: {{count: {MAX_TOTAL_INVOICES // 2}, properties: [p1]}}}}\n"
    )
    s = load_scenario_text(text)
    assert sum(b.count for b in s.batches) == MAX_TOTAL_INVOICES


# --- list lengths ----------------------------------------------------------------------------------


def test_ten_million_aliased_events_stop_at_a_limit() -> None:
    text = ORG + "timeline: [&e {at: +1h, login: u1}" + ", *e" * 10_000_000 + "]\n"
    err = error_of(text)
    assert "alias *e takes the document past 1,000,000 values" in err.message


@pytest.mark.parametrize(
    ("section", "item", "limit", "advice"),
    [
        ("timeline", "{at: +1h, login: u1}", MAX_TIMELINE_EVENTS, "split the run"),
        ("faults", "{kind: outage}", MAX_FAULTS, "probability:"),
        ("expect", "{mailbox: a@b.example, bounces: 0}", MAX_EXPECTATIONS, "count:"),
    ],
)
def test_section_caps_fail_at_the_first_item_past_them(section: str, item: str, limit: int, advice: str) -> None:
    text = ORG + f"{section}:\n  - &x {item}\n" + "  - *x\n" * limit
    err = error_of(text)
    assert (err.line, err.column) == (ORG.count("\n") + 2 + limit, 5)
    assert err.message.startswith(f"{section}: more than {limit:,} items; at most {limit:,} are allowed here")
    assert advice in err.message


def test_section_cap_is_not_hit_at_the_cap() -> None:
    text = ORG + "faults:\n  - &x {kind: outage}\n" + "  - *x\n" * (MAX_FAULTS - 1)
    assert len(load_scenario_text(text).faults) == MAX_FAULTS


def aliased(items: int) -> str:
    """A flow list of ``items`` copies of one scalar (an anchor, then aliases): cheap to write and parse."""
    return "[&x a" + ", *x" * (items - 1) + "]"


@pytest.mark.parametrize(
    ("template", "where", "limit", "instead"),
    [
        ("users: {L}", "users", MAX_ENTITIES, ""),
        ("contacts: {L}", "contacts", MAX_ENTITIES, ""),
        ("properties: {L}", "properties", MAX_ENTITIES, ""),
        ("batches: {L}", "batches", MAX_ENTITIES, ""),
        ("batches: [{id: B1, invoices: {count: 1, properties: {L}}}]", "batches[0].invoices.properties",
         MAX_ENTITIES, ""),
        ("tags: {L}", "tags", MAX_SMALL_LIST, ""),
        ("settings: {retry_schedule: {L}}", "settings.retry_schedule", MAX_SMALL_LIST,
         " (the last interval repeats until the lifetime ends)"),
        ("platform: {sending_ips: {L}}", "platform.sending_ips", MAX_SMALL_LIST, ""),
        ("dns: {records: {L}}", "dns.records", MAX_DNS_RECORDS, ""),
        ("dns: {unreachable: {L}}", "dns.unreachable", MAX_DNS_RECORDS, ""),
        ("mailboxes: {L}", "mailboxes", MAX_MAILBOX_DOMAINS, ""),
        ("mailboxes: [{domain: a.example, users: {L}}]", "mailboxes[0].users", MAX_ENTITIES, ""),
    ],
)
def test_every_list_has_a_cap(template: str, where: str, limit: int, instead: str) -> None:
    """Each list's own cap, by its own message at the first item past it; at the cap, no cap error."""
    over = MINI + template.replace("{L}", aliased(limit + 1)) + "\n"
    err = error_of(over)
    assert err.message == f"{where}: more than {limit:,} items; at most {limit:,} are allowed here{instead}"
    assert (err.line, err.column) == line_col(over, "*x", nth=limit - 1)
    at_cap = MINI + template.replace("{L}", aliased(limit)) + "\n"
    try:
        load_scenario_text(at_cap, "s.yaml")
    except ScenarioError as e:  # 'a' is no user, IP, ...: an error about the items, not their number
        assert e.message.startswith(f"{where}[0]") or "unknown" in e.message, e.message
        assert "are allowed here" not in e.message, e.message


def test_explicit_invoices_have_a_cap_across_batches() -> None:
    """Invoices written out one by one: the real cap (the monkeypatched test below proves the counting)."""
    body = "".join(f"  - {{id: I{i}, property: p1}}\n" for i in range(MAX_EXPLICIT_INVOICES + 1))
    text = ORG + "batches:\n- id: B1\n  invoices:\n" + body
    err = error_of(text)
    assert err.message == (
        f"batches[0].invoices[{MAX_EXPLICIT_INVOICES}]: more than {MAX_EXPLICIT_INVOICES:,} invoices written out"
        " one by one across all batches; use the compact form, invoices: {count: N, properties: [...]}"
    )
    assert (err.line, err.column) == line_col(text, f"{{id: I{MAX_EXPLICIT_INVOICES},")


def test_a_list_of_more_than_a_million_items_stops_while_composing() -> None:
    text = MINI + "tags: [" + "x, " * (MAX_LIST_ITEMS + 1) + "]\n"
    err = error_of(text)
    assert (err.line, err.column) == (3, 8 + 3 * MAX_LIST_ITEMS)
    assert f"a list of more than {MAX_LIST_ITEMS:,} items" in err.message


def test_a_million_key_mapping_stops_at_the_key_past_the_cap() -> None:
    text = MINI + "settings: {" + ", ".join(f"k{i}: {i}" for i in range(1_000_000)) + "}\n"
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, f"k{MAX_MAPPING_KEYS}:")
    assert f"a mapping of more than {MAX_MAPPING_KEYS:,} keys" in err.message


# --- nesting ---------------------------------------------------------------------------------------


def nest(style: str, depth: int) -> str:
    """``tags:`` holding ``depth - 1`` more levels (the root mapping is level 1)."""
    n = depth - 1
    if style == "flow-seq":
        return "tags: " + "[" * n + "]" * n + "\n"
    if style == "flow-map":
        return "tags: " + "{a: " * (n - 1) + "{}" + "}" * (n - 1) + "\n"
    if style == "block-seq":
        return "tags:\n  " + "- " * (n - 1) + "[]\n"
    if style == "block-map":
        return "tags:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(n - 2)) + " " * (n - 1) + "k: {}\n"
    if style == "mixed":
        parts = ["- ", "{a: ", "[", "? "]
        body = "".join(parts[i % 3] for i in range(n))
        return "tags:\n  " + body + "\n"
    raise AssertionError(style)


STYLES = ["flow-seq", "flow-map", "block-seq", "block-map"]


@pytest.mark.parametrize("style", STYLES)
def test_nesting_up_to_the_cap_composes(backend: str, style: str) -> None:
    with pytest.raises(ScenarioError, match="nested more than"):
        parse_yaml(MINI + nest(style, MAX_DEPTH + 1), "s.yaml")
    tree = parse_yaml(MINI + nest(style, MAX_DEPTH), "s.yaml")
    assert isinstance(tree, YMap)
    depth, node = 2, tree["tags"]  # the root mapping is level 1
    while isinstance(node, YMap | YSeq) and node:
        node = node[0] if isinstance(node, YSeq) else next(iter(node.values()))
        depth += 1
    assert depth == MAX_DEPTH


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 1000, 100_000])
def test_nesting_past_the_cap_fails_at_the_level_past_it(backend: str, style: str, depth: int) -> None:
    if style == "block-map" and depth > 1000:
        depth = 3000  # indentation makes the text quadratic in the depth
    text = MINI + nest(style, depth)
    expected = error_of(MINI + nest(style, MAX_DEPTH + 2))  # a level past the cap, of the style's own kind
    err = error_of(text)
    assert err.message == f"nested more than {MAX_DEPTH} levels deep", err.message
    assert (err.line, err.column) == (expected.line, expected.column)


@pytest.mark.parametrize("depth", [100, 10_000, 1_000_000])
def test_deep_mixed_nesting_is_a_located_error(backend: str, depth: int) -> None:
    if backend == "ruamel":
        depth = min(depth, 10_000)
    err = error_of(MINI + nest("mixed", depth))
    assert "nested" in err.message or "invalid YAML" in err.message


def test_a_deep_but_allowed_tree_fails_validation_without_recursing() -> None:
    text = MINI + "expect: [{count: {email_status: " + "[" * 58 + "]" * 58 + "}, equals: 0}]\n"
    err = error_of(text)
    assert "expect[0].count.email_status: expected email status" in err.message


# --- aliases and merge keys ------------------------------------------------------------------------


def list_bomb(levels: int, width: int = 10) -> str:
    """A billion-laughs list: each level holds the previous one ``width`` times (defined inline)."""
    node = "[" + ", ".join(["lol"] * width) + "]"
    for k in range(levels):
        node = f"[&b{k} {node}" + f", *b{k}" * (width - 1) + "]"
    return node


def map_bomb(levels: int, width: int = 10) -> str:
    node = "{" + ", ".join(f"k{i}: lol" for i in range(width)) + "}"
    for k in range(levels):
        node = f"{{k0: &m{k} {node}" + "".join(f", k{i}: *m{k}" for i in range(1, width)) + "}"
    return node


def merge_bomb(levels: int, width: int = 10) -> str:
    """Merge keys whose sources hold the previous level ``width`` times, merged again and again."""
    node = "{" + ", ".join(f"a{i}: lol" for i in range(width)) + "}"
    for k in range(levels):
        node = f"{{<<: [&g{k} {node}" + f", *g{k}" * (width - 1) + "]" + f", x{k}: [*g{k}" + f", *g{k}" * width + "]}"
    return node


def same_source_merge(width: int = 1000, uses: int = 100_000) -> str:
    """One wide mapping merged ``uses`` times into one mapping."""
    return "{<<: [&w {" + ", ".join(f"a{i}: 1" for i in range(width)) + "}" + ", *w" * uses + "]}"


BOMBS = {
    "list": list_bomb,
    "map": map_bomb,
    "merge": merge_bomb,
}

# every place where the format accepts a list ({L}) or a mapping ({M})
PLACES = [
    "tags: {L}",
    "settings: {M}",
    "settings: {retry_schedule: {L}}",
    "platform: {M}",
    "platform: {sending_ips: {L}}",
    "providers: {M}",
    "providers: {x: {M}}",
    "providers: {x: {sending_ips: {L}}}",
    "organization: {M}",
    "organization: {configuration: {M}}",
    "organization: {configuration: {invoice_recipients: {L}}}",
    "organization: {regions: {L}}",
    "organization: {branches: {L}}",
    "organization: {regions: [{M}]}",
    "users: {L}",
    "users: [{M}]",
    "users: [{id: u9, email: x@y.example, sync: {M}}]",
    "contacts: {L}",
    "contacts: [{M}]",
    "properties: {L}",
    "properties: [{M}]",
    "properties: [{id: p9, branch: b1, contacts: {L}}]",
    "properties: [{id: p9, branch: b1, contacts: [{M}]}]",
    "batches: {L}",
    "batches: [{M}]",
    "batches: [{id: B9, invoices: {L}}]",
    "batches: [{id: B9, invoices: {M}}]",
    "batches: [{id: B9, invoices: [{M}]}]",
    "batches: [{id: B9, invoices: {count: 2, properties: {L}}}]",
    "dns: {M}",
    "dns: {records: {L}}",
    "dns: {records: [{M}]}",
    "dns: {records: [{name: a.example, type: TXT, value: {L}}]}",
    "dns: {unreachable: {L}}",
    "mailboxes: {L}",
    "mailboxes: [{M}]",
    "mailboxes: [{domain: a.example, users: {L}}]",
    "mailboxes: [{domain: a.example, spf_policy: {M}}]",
    "timeline: {L}",
    "timeline: [{M}]",
    "timeline: [{at: +1h, set_contact_email: {M}}]",
    "timeline: [{at: +1h, login: {L}}]",
    "timeline: [{at: {L}, login: u1}]",
    "faults: {L}",
    "faults: [{M}]",
    "expect: {L}",
    "expect: [{M}]",
    "expect: [{count: {M}, equals: 0}]",
    "expect: [{invoice: I-1, never: {M}}]",
    "expect: [{invoice: I-1, email_status: Sent, at: {L}}]",
    "{M}",
]
BASE = ORG + "batches: [{id: B1, invoices: [{id: I-1, property: p1}]}]\n"


def place(template: str, bomb: str) -> str:
    """BASE with one section replaced (or added) by ``template`` holding ``bomb``."""
    line = template.replace("{L}", bomb).replace("{M}", bomb)
    key = template.split(":", 1)[0]
    if template == "{M}":
        return MINI + f"description: {bomb}\n"
    kept = [ln for ln in BASE.splitlines() if not ln.startswith(key + ":")]
    return "\n".join(kept) + "\n" + line + "\n"


#: Where each bomb kind's parse-time budget runs out: the alias named in the message and which of its
#: uses in the text crosses MAX_ALIAS_NODES (0-based). A list level holds ~111,111 values, so the 9th
#: ``*b4`` crosses; the same alias at 5 levels and at 12, as the budget stops before the outer levels.
BUDGET_CROSSING = {"list": ("*b4", 8), "map": ("*m4", 3), "merge": ("*g3", 4)}


@pytest.mark.parametrize("kind", sorted(BOMBS))
@pytest.mark.parametrize("levels", [5, 12])
def test_alias_bombs_stop_at_parse_time_at_the_crossing_alias(backend: str, kind: str, levels: int) -> None:
    """``description:`` is a plain string the validator never walks: only the composer can stop it."""
    text = place("{M}", BOMBS[kind](levels))
    alias, nth = BUDGET_CROSSING[kind]
    err = error_of(text)
    assert err.message == (
        f"alias {alias} takes the document past {MAX_ALIAS_NODES:,} values reached through aliases (an alias "
        "bomb?); write the values out or alias fewer, smaller nodes"
    )
    assert (err.line, err.column) == line_col(text, alias, nth)


def test_alias_bombs_stop_before_validation_wherever_they_are() -> None:
    """The same crossing alias in every place the format takes a list or mapping: nothing is validated first."""
    alias, _nth = BUDGET_CROSSING["list"]
    wrong = {template: error_of(place(template, list_bomb(5))).message for template in PLACES}
    assert {m for m in wrong.values() if not m.startswith(f"alias {alias} takes the document past")} == set()


#: Below the budget (3 levels, ~1,000 values) a bomb is an ordinary wrong value: each place's own
#: validator names it — the aliased nodes are walked like written ones, and merge keys are resolved
#: (``x2`` is the merge bomb's own key) before the keys are checked. Unknown-key messages are compared up
#: to their list of allowed keys.
UNDER_BUDGET = {
    ("tags: {L}", "list"): "tags[0]: expected a string, got a list",
    ("settings: {M}", "map"): "unknown key 'k0' in settings",
    ("settings: {M}", "merge"): "unknown key 'x2' in settings",
    ("settings: {retry_schedule: {L}}", "list"):
        "settings.retry_schedule[0]: expected a duration like 5m or 1h30m, got a list",
    ("platform: {M}", "map"): "unknown key 'k0' in platform",
    ("platform: {M}", "merge"): "unknown key 'x2' in platform",
    ("platform: {sending_ips: {L}}", "list"):
        "platform.sending_ips[0]: expected an IP address like 198.51.100.10, got a list",
    ("providers: {M}", "map"): "unknown key 'k0' in providers.k0",
    ("providers: {M}", "merge"): "providers.x2: expected a mapping, got a list",
    ("providers: {x: {M}}", "map"): "unknown key 'k0' in providers.x",
    ("providers: {x: {M}}", "merge"): "unknown key 'x2' in providers.x",
    ("providers: {x: {sending_ips: {L}}}", "list"):
        "providers.x.sending_ips[0]: expected an IP address like 198.51.100.10, got a list",
    ("organization: {M}", "map"): "unknown key 'k0' in organization",
    ("organization: {M}", "merge"): "unknown key 'x2' in organization",
    ("organization: {configuration: {M}}", "map"): "unknown key 'k0' in organization.configuration",
    ("organization: {configuration: {M}}", "merge"): "unknown key 'x2' in organization.configuration",
    ("organization: {configuration: {invoice_recipients: {L}}}", "list"):
        "organization.configuration.invoice_recipients[0]: expected role (email_invoice, billing, primary), got a list",
    ("organization: {regions: {L}}", "list"): "organization.regions[0]: expected a mapping, got a list",
    ("organization: {branches: {L}}", "list"): "organization.branches[0]: expected a mapping, got a list",
    ("organization: {regions: [{M}]}", "map"): "unknown key 'k0' in organization.regions[0]",
    ("organization: {regions: [{M}]}", "merge"): "unknown key 'x2' in organization.regions[0]",
    ("users: {L}", "list"): "users[0]: expected a mapping, got a list",
    ("users: [{M}]", "map"): "unknown key 'k0' in users[0]",
    ("users: [{M}]", "merge"): "unknown key 'x2' in users[0]",
    ("users: [{id: u9, email: x@y.example, sync: {M}}]", "map"): "unknown key 'k0' in users[0].sync",
    ("users: [{id: u9, email: x@y.example, sync: {M}}]", "merge"): "unknown key 'x2' in users[0].sync",
    ("contacts: {L}", "list"): "contacts[0]: expected a mapping, got a list",
    ("contacts: [{M}]", "map"): "unknown key 'k0' in contacts[0]",
    ("contacts: [{M}]", "merge"): "unknown key 'x2' in contacts[0]",
    ("properties: {L}", "list"): "properties[0]: expected a mapping, got a list",
    ("properties: [{M}]", "map"): "unknown key 'k0' in properties[0]",
    ("properties: [{M}]", "merge"): "unknown key 'x2' in properties[0]",
    ("properties: [{id: p9, branch: b1, contacts: {L}}]", "list"):
        "properties[0].contacts[0]: expected a mapping, got a list",
    ("properties: [{id: p9, branch: b1, contacts: [{M}]}]", "map"): "unknown key 'k0' in properties[0].contacts[0]",
    ("properties: [{id: p9, branch: b1, contacts: [{M}]}]", "merge"): "unknown key 'x2' in properties[0].contacts[0]",
    ("batches: {L}", "list"): "batches[0]: expected a mapping, got a list",
    ("batches: [{M}]", "map"): "unknown key 'k0' in batches[0]",
    ("batches: [{M}]", "merge"): "unknown key 'x2' in batches[0]",
    ("batches: [{id: B9, invoices: {L}}]", "list"):
        "batches[0].invoices[0]: expected an invoice {id, property, amount}, got a list",
    ("batches: [{id: B9, invoices: {M}}]", "map"): "unknown key 'k0' in batches[0].invoices (compact form)",
    ("batches: [{id: B9, invoices: {M}}]", "merge"): "unknown key 'x2' in batches[0].invoices (compact form)",
    ("batches: [{id: B9, invoices: [{M}]}]", "map"): "unknown key 'k0' in batches[0].invoices[0]",
    ("batches: [{id: B9, invoices: [{M}]}]", "merge"): "unknown key 'x2' in batches[0].invoices[0]",
    ("batches: [{id: B9, invoices: {count: 2, properties: {L}}}]", "list"):
        "batches[0].invoices.properties[0]: expected an id (a string), got a list",
    ("dns: {M}", "map"): "unknown key 'k0' in dns",
    ("dns: {M}", "merge"): "unknown key 'x2' in dns",
    ("dns: {records: {L}}", "list"): "dns.records[0]: expected a mapping, got a list",
    ("dns: {records: [{M}]}", "map"): "unknown key 'k0' in dns.records[0]",
    ("dns: {records: [{M}]}", "merge"): "unknown key 'x2' in dns.records[0]",
    ("dns: {records: [{name: a.example, type: TXT, value: {L}}]}", "list"):
        "dns.records[0].value[0]: expected a string, got a list",
    ("dns: {unreachable: {L}}", "list"): "dns.unreachable[0]: expected a DNS name like mx.client.example, got a list",
    ("mailboxes: {L}", "list"): "mailboxes[0]: expected a mapping, got a list",
    ("mailboxes: [{M}]", "map"): "unknown key 'k0' in mailboxes[0]",
    ("mailboxes: [{M}]", "merge"): "unknown key 'x2' in mailboxes[0]",
    ("mailboxes: [{domain: a.example, users: {L}}]", "list"): "mailboxes[0].users[0]: expected a string, got a list",
    ("mailboxes: [{domain: a.example, spf_policy: {M}}]", "map"): "unknown key 'k0' in mailboxes[0].spf_policy",
    ("mailboxes: [{domain: a.example, spf_policy: {M}}]", "merge"): "unknown key 'x2' in mailboxes[0].spf_policy",
    ("timeline: {L}", "list"): "timeline[0]: expected an entry {at: TIME, <event>: ...}, got a list",
    ("timeline: [{M}]", "map"): "unknown key 'k0' in timeline[0] (an event)",
    ("timeline: [{M}]", "merge"): "unknown key 'x2' in timeline[0] (an event)",
    ("timeline: [{at: +1h, set_contact_email: {M}}]", "map"): "unknown key 'k0' in timeline[0].set_contact_email",
    ("timeline: [{at: +1h, set_contact_email: {M}}]", "merge"): "unknown key 'x2' in timeline[0].set_contact_email",
    ("timeline: [{at: +1h, login: {L}}]", "list"): "timeline[0].login: expected an id (a string), got a list",
    ("timeline: [{at: {L}, login: u1}]", "list"):
        "timeline[0].at: expected a time like +2h, -95d or 2026-11-02T09:00:00Z, got a list",
    ("faults: {L}", "list"): "faults[0]: expected a mapping, got a list",
    ("faults: [{M}]", "map"): "unknown key 'k0' in faults[0] (a fault)",
    ("faults: [{M}]", "merge"): "unknown key 'x2' in faults[0] (a fault)",
    ("expect: {L}", "list"): "expect[0]: expected an expectation mapping, got a list",
    ("expect: [{M}]", "map"): "unknown key 'k0' in expect[0] (an expectation)",
    ("expect: [{M}]", "merge"): "unknown key 'x2' in expect[0] (an expectation)",
    ("expect: [{count: {M}, equals: 0}]", "map"): "unknown key 'k0' in expect[0].count",
    ("expect: [{count: {M}, equals: 0}]", "merge"): "unknown key 'x2' in expect[0].count",
    ("expect: [{invoice: I-1, never: {M}}]", "map"): "unknown key 'k0' in expect[0].never",
    ("expect: [{invoice: I-1, never: {M}}]", "merge"): "unknown key 'x2' in expect[0].never",
    ("expect: [{invoice: I-1, email_status: Sent, at: {L}}]", "list"):
        "expect[0].at: expected a time like +2h, -95d or 2026-11-02T09:00:00Z or end, got a list",
    ("{M}", "map"): "description: expected a string, got a mapping",
    ("{M}", "merge"): "description: expected a string, got a mapping",
}


def test_small_alias_bombs_get_each_places_own_error() -> None:
    assert sorted(UNDER_BUDGET) == sorted(
        (t, k) for t in PLACES for k in (("list",) if "{L}" in t else ("map", "merge"))
    )
    got = {}
    for (template, kind), _message in UNDER_BUDGET.items():
        text = place(template, BOMBS[kind](3))
        got[template, kind] = error_of(text).message.split("; expected one of:")[0]  # key lists: test_loader
    assert got == UNDER_BUDGET


def test_one_mapping_merged_a_hundred_thousand_times() -> None:
    err = error_of(MINI + "settings: " + same_source_merge() + "\n")
    assert "alias *w takes the document past" in err.message


def test_merging_the_same_source_twice_adds_nothing() -> None:
    tree = parse_yaml("a: &w {x: 1, y: 2}\nb: {<<: [*w, *w, *w], z: 3}\n", "s.yaml")
    assert isinstance(tree, YMap) and tree["b"] == {"x": 1, "y": 2, "z": 3}


def test_alias_budget_boundary(backend: str) -> None:
    defined = "a: &a [" + ", ".join(["1"] * 999) + "]\n"  # 1,000 nodes with the list itself
    under = defined + "b: [" + ", ".join(["*a"] * (MAX_ALIAS_NODES // 1000)) + "]\n"
    assert isinstance(parse_yaml(under, "s.yaml"), YMap)
    over = defined + "b: [" + ", ".join(["*a"] * (MAX_ALIAS_NODES // 1000 + 1)) + "]\n"
    with pytest.raises(ScenarioError) as e:
        parse_yaml(over, "s.yaml")
    assert (e.value.line, e.value.column) == (2, 5 + 4 * (MAX_ALIAS_NODES // 1000))


def test_harmless_aliases_still_load() -> None:
    text = ORG + (
        "batches:\n"
        "  - {id: B1, invoices: {count: 5, properties: &ps [p1]}}\n"
        "  - {id: B2, invoices: {count: 5, properties: *ps}}\n"
        "timeline:\n"
        "  - &ev {at: +1h, complete_batch: B1}\n"
        "  - {<<: *ev, complete_batch: B2}\n"
    )
    s = load_scenario_text(text)
    assert [e.batch for e in s.timeline] == ["B1", "B2"]


# --- scalars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("name: " + "x" * 50_000_000, 7),
        ("users: [{id: '" + "u" * 1_000_000 + "', email: a@b.example}]", 14),
        ("seed: 1." + "0" * 5_000_000, 7),
        ("seed: " + "9" * 5_000_000, 7),
        ("? " + "k" * 100_000 + "\n: 1", 3),  # an explicit key: a plain one is at most 1,024 characters
        ('description: "' + "é" * 70_000 + '"', 14),
    ],
)
def test_giant_scalars(line: str, column: int) -> None:
    text = MINI + line + "\n"
    err = error_of(text)
    assert (err.line, err.column) == (3, column)
    assert "characters; at most 65,536 are allowed in one value" in err.message


def test_a_scalar_at_the_cap_loads() -> None:
    s = load_scenario_text(MINI + "description: " + "x" * MAX_SCALAR_CHARS + "\n")
    assert len(s.description) == MAX_SCALAR_CHARS


def test_long_keys_and_values_are_shortened_in_messages() -> None:
    err = error_of(MINI + "k" * 1000 + ": 1\n")
    assert err.message.startswith("unknown key 'kkkk") and len(err.message) < 400
    err = error_of(MINI + "faults: [{kind: " + "z" * 60_000 + "}]\n")
    assert "unknown fault kind 'zzz" in err.message and len(err.message) < 400


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ('name: "clear\\e[2J"', 7),
        ('users: [{id: "u\\0", email: a@b.example}]', 14),
        ('contacts: [{id: c1, email: "a\\x07@b.example"}]', 28),
        ('description: "\\u009b"', 14),
    ],
)
def test_control_characters_from_escapes_are_refused(line: str, column: int) -> None:
    err = error_of(MINI + line + "\n")
    assert (err.line, err.column) == (3, column)
    assert "control character" in err.message


def test_tabs_and_line_breaks_are_fine() -> None:
    s = load_scenario_text(MINI + 'description: "a\\tb\\nc\\r"\n')
    assert s.description == "a\tb\nc\r"


def test_ids_with_control_characters_are_refused() -> None:
    err = error_of(MINI + 'users: [{id: !!str "u\\x01", email: a@b.example}]\n')
    assert "control character" in err.message


def test_lone_surrogate_in_text() -> None:
    text = MINI + "name: a\ud800b\n"
    err = error_of(text)
    assert (err.line, err.column) == (3, 8) and "not a Unicode character" in err.message


# --- both parsers build the same trees -------------------------------------------------------------


def _tree(node: object) -> object:
    """Values and every position, as plain data for comparison."""
    if isinstance(node, YMap):
        return ("map", node.pos, [(k, node.keypos[k], node.valpos[k], _tree(v)) for k, v in node.items()])
    if isinstance(node, YSeq):
        return ("seq", node.pos, node.itempos, [_tree(v) for v in node])
    return (type(node).__name__, repr(node))


@pytest.mark.requires_tool("libyaml")
@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "tests" / "data").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_both_parsers_compose_the_same_tree(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    trees = []
    for name in BACKENDS:
        monkeypatch.setattr(yamltree, "BACKEND", name)
        trees.append(_tree(parse_yaml(text, str(path))))
    assert trees[0] == trees[1]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("schema: mailsim/1\rstart: 2026-11-02T09:00:00Z\rname: a\x00\r", 3, 8),  # old Mac line ends
        ("schema: mailsim/1\r\nname: a\x00\r\n", 2, 8),
        ("schema: mailsim/1\nname: é\x01\n", 2, 8),  # libyaml counts bytes; the position counts characters
        ("schema: mailsim/1\u2028name: a\x00\n", 2, 8),
    ],
)
def test_reader_errors_count_lines_as_the_parser_does(backend: str, text: str, line: int, column: int) -> None:
    err = error_of(text)
    assert (err.line, err.column) == (line, column), str(err)
    assert err.message.startswith("invalid YAML: "), str(err)


def test_a_decade_of_one_second_polls_is_refused_at_until() -> None:
    text = MINI + "until: +3650d\nsettings: {queue_poll: 1s}\n"
    err = error_of(text)
    assert (err.line, err.column) == (3, 8)
    assert "polls the queue 315,360,000 times (every 1s); at most 10,000,000" in err.message


def test_long_runs_with_coarse_polls_load() -> None:
    assert load_scenario_text(MINI + "until: +3650d\n").until == 3650 * 86400  # 1m polls: 5.3 million
    assert load_scenario_text(MINI + "until: +100d\nsettings: {queue_poll: 1s}\n").until == 100 * 86400


def test_loading_leaves_the_garbage_collector_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    load_scenario_text(ORG)
    assert gc.isenabled()
    error_of(MINI + "tags: [" + "[" * 100 + "\n")
    assert gc.isenabled()
    gc.disable()
    try:
        load_scenario_text(ORG)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_written_values_are_capped_while_composing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamltree, "MAX_NODES", 20)
    text = MINI + "tags: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o]\n"  # 7 values before a: n is the 21st
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, "n,")
    assert "the document holds more than 20 values" in err.message and "compact" in err.message


def test_explicit_invoices_are_capped_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.scenario.sections.batches as batches

    monkeypatch.setattr(batches, "MAX_EXPLICIT_INVOICES", 3)
    text = ORG + (
        "batches:\n"
        "  - {id: B1, invoices: [{id: I-1, property: p1}, {id: I-2, property: p1}]}\n"
        "  - {id: B2, invoices: [{id: I-3, property: p1}, {id: I-4, property: p1}]}\n"
    )
    err = error_of(text)
    assert (err.line, err.column) == line_col(text, "{id: I-4")
    assert err.message.startswith("batches[1].invoices[1]: more than 3 invoices written out one by one")
    assert "compact form" in err.message
