"""`mailsim schema`: the JSON Schema agrees with the loader it is generated from.

Every file the loader accepts validates (the corpus and hypothesis-generated scenarios); the
shape errors it refuses (unknown keys, wrong types, a wrong schema tag, missing keys) the
schema refuses too; and each pattern accepts exactly the strings its converter accepts, up to
the magnitudes only the loader checks (100 years, real calendar days, label octets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # a dev dependency: its absence is a failure, not a skip
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from simulator.cli.main import command
from simulator.domain.dns import DNS_RECORD_TYPES
from simulator.domain.events import EVENT_KINDS
from simulator.domain.faults import FAULT_KINDS, SMTP_STAGES
from simulator.domain.vocabulary import SPF_ACTIONS, SPF_RESULTS
from simulator.scenario import kinds
from simulator.scenario.convert import Pos, Reader
from simulator.scenario.errors import ScenarioError
from simulator.scenario.fields import Kind
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.schema import scenario_schema, schema_text
from simulator.scenario.sections.dns import MX_PATTERN, TYPE_PATTERN, dns_type, dns_value
from simulator.scenario.yamltree import parse_yaml

ROOT = Path(__file__).parent.parent
CORPUS = sorted(
    [*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("tests/data/*.yaml"), *ROOT.glob("tests/data/chaos/*.yaml")]
)
EXAMPLE = ROOT / "tests" / "data" / "design_example.yaml"
SCHEMA = scenario_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def schema_errors(doc: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)]


def tree(text: str) -> object:
    """The document as an editor's YAML 1.2 server sees it (the loader's own reader)."""
    return parse_yaml(text, "s.yaml")


# --- the schema itself ---------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False and SCHEMA["required"] == ["schema", "start"]


def test_cli_prints_the_generated_schema(tmp_path: Path) -> None:
    app = command()
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == schema_text()
    assert json.loads(result.stdout) == SCHEMA
    out = tmp_path / "mailsim.schema.json"
    assert CliRunner().invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == schema_text()
    bad = CliRunner().invoke(app, ["schema", "--out", str(tmp_path / "missing" / "x.json")])
    assert bad.exit_code == 2 and "error: --out: cannot write" in bad.output


def test_descriptions_and_defaults_come_from_the_tables() -> None:
    settings_schema = SCHEMA["properties"]["settings"]
    poll = settings_schema["properties"]["queue_poll"]
    assert poll["default"] == "1m" and poll["description"].startswith("The queue worker polls")
    assert settings_schema["properties"]["retry_schedule"]["default"] == [
        "5m",
        "10m",
        "20m",
        "40m",
        "1h20m",
        "2h40m",
        "4h",
    ]
    mailbox = SCHEMA["properties"]["mailboxes"]["items"]["properties"]
    assert mailbox["spf_policy"]["default"] == {
        "pass": "inbox",
        "fail": "reject",
        "softfail": "junk",
        "neutral": "inbox",
        "none": "inbox",
        "permerror": "junk",
        "temperror": "defer",
    }
    assert mailbox["greylist"]["default"] == "0s" and mailbox["quota"]["default"] == 0
    timeline_item = SCHEMA["properties"]["timeline"]["items"]
    assert set(timeline_item["properties"]) == {"at", "note", *EVENT_KINDS}
    fault = SCHEMA["properties"]["faults"]["items"]["properties"]
    assert fault["kind"]["enum"] == list(FAULT_KINDS) and fault["probability"]["default"] == 1.0


# --- everything the loader accepts validates ------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_corpus_validates(path: Path) -> None:
    load_scenario(path)
    assert schema_errors(tree(path.read_text(encoding="utf-8"))) == []


# --- shape errors the loader refuses, the schema refuses -----------------------------------------

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")

SHAPE_ERRORS = [
    ("schema: mailsim/1", "schema: mailsim/2"),
    ("schema: mailsim/1", "schema: 1"),
    ("start: 2026-11-02T09:00:00Z", "start: +1h"),
    ("start: 2026-11-02T09:00:00Z", "start: 2026-11-02T09:00:00"),
    ("seed: 7", "sead: 7"),
    ("seed: 7", "seed: '7'"),
    ("until: +2d", "until: +2d1"),
    ("  queue_poll: 1m", "  queue_poll: 5mins"),
    ("  queue_poll: 1m", "  queue_poll: 0s"),
    ("  queue_poll: 1m", "  queue_pol: 1m"),
    ("  smtp_path_requires_spf: true", "  smtp_path_requires_spf: yes"),
    ("  retry_schedule: [5m, 10m, 20m, 40m, 1h20m, 2h40m, 4h]", "  retry_schedule: []"),
    ("platform: {sending_ips: [198.51.100.10]", "platform: {sending_ips: [198.51.100.300]"),
    ("platform: {sending_ips: [198.51.100.10]", "platform: {sending_ips: []"),
    ("  microsoft365: {sending_ips: [203.0.113.20]", "  microsoft365: {sending_ips: []"),
    (
        "  microsoft365: {sending_ips: [203.0.113.20]",
        "  zoho: {helo: x.example}\n  microsoft365: {sending_ips: [203.0.113.20]",
    ),
    ("  regions:  [{id: north,", "  regions:  [{id: 'no rth',"),
    ("  - {id: u2, email: billing@acme.example}", "  - {id: u2, email: billing@acme.example, role: admin}"),
    ("  - {id: u2, email: billing@acme.example}", "  - {id: u2}"),
    ("synced: -200d", "synced: +2d"),
    ("synced: -200d", "synced: -200"),
    ("  - {id: c1, email: jane@client.example}", "  - {id: c1, email: jane@client.example, active: 1}"),
    ("amount: 120.00", "amount: '120'"),
    ("{count: 100000, properties: [p1]}", "{count: 0, properties: [p1]}"),
    ("{count: 100000, properties: [p1]}", "{count: 100000, properties: []}"),
    (
        '    - {name: client.example, type: MX, value: "10 mx.client.example"}',
        '    - {name: client.example, type: MX, value: "mx.client.example"}',
    ),
    (
        "    - {name: mx.client.example, type: A, value: 192.0.2.25}",
        "    - {name: mx.client.example, type: A, value: 2001:db8::1}",
    ),
    (
        "    - {name: mx.client.example, type: A, value: 192.0.2.25}",
        "    - {name: mx.client.example, type: TXTT, value: x}",
    ),
    (
        "    - {name: mx.client.example, type: A, value: 192.0.2.25}",
        "    - {name: 'a..example', type: A, value: 192.0.2.25}",
    ),
    ("    greylist: 0s", "    greylist: 5mins"),
    ("    quota: 0", "    quota: -1"),
    ("    users: [jane, bob]", "    users: [jane@client.example]"),
    ("temperror: defer}", "temperror: bounce}"),
    ("  - {at: +1h, complete_batch: B1}", "  - {at: +1h}"),
    ("  - {at: +1h, complete_batch: B1}", "  - {at: +1h, complete_batch: B1, login: u1}"),
    ("  - {at: +1h, complete_batch: B1}", "  - {at: -1h, complete_batch: B1}"),
    ("  - {at: +1h, complete_batch: B1}", "  - {complete_batch: B1}"),
    ("  - {at: +3h, login: u1}", "  - {at: +3h, login: {user: u1}}"),
    ("{branch: b1, email: b2@acme.example}", "{branch: b1, region: north, email: b2@acme.example}"),
    ("{branch: b1, email: b2@acme.example}", "{configuration: false, email: b2@acme.example}"),
    ('{name: acme.example, type: TXT, value: "v=spf1 -all"}', '{name: acme.example, type: A, value: "v=spf1 -all"}'),
    ("  - {at: +2h, for: 30m, kind: outage", "  - {at: +2h, for: 30m, kind: outgage"),
    ("{kind: tempfail, stage: rcpt, probability: 0.05", "{kind: tempfail, stage: rcpt, probability: 1.5"),
    (
        "  - {at: +1h, for: 10m, kind: dns_timeout, target: acme.example}",
        "  - {at: +1h, for: 10m, kind: dns_timeout, stage: rcpt, target: acme.example}",
    ),
    ("  - {kind: disconnect, stage: data, probability: 0.01}", "  - {kind: disconnect, delay: 5s}"),
    ("  - {mailbox: ar@acme.example, bounces: 0}", "  - {mailbox: ar@acme.example}"),
    ("  - {mailbox: ar@acme.example, bounces: 0}", "  - {mailbox: ar@acme.example, bounces: 0, outcome: inbox}"),
    ("  - {mailbox: ar@acme.example, bounces: 0}", "  - {mailbox: ar.acme.example, bounces: 0}"),
    ("{count: {email_status: In Queue}, equals: 0, at: end}", "{count: {email_status: Queued}, equals: 0, at: end}"),
    ("{count: {email_status: In Queue}, equals: 0, at: end}", "{count: {}, equals: 0, at: end}"),
    (
        "{invoice: INV-1, never: {email_status: Sent}, until: +3h}",
        "{invoice: INV-1, never: {outcome: inbox}, until: +3h}",
    ),
    ("outcome: inbox, within: +5h}", "outcome: inbox, within: +5h, at: +4h}"),
    ("outcome: inbox, within: +5h}", "within: +5h}"),
    ("reason: sync-token-expired, at: +2h}", "reason: sync-token-expird, at: +2h}"),
    ("expect:\n", "expect:\n  - {}\n"),
]


@pytest.mark.parametrize(("old", "new"), SHAPE_ERRORS)
def test_shape_errors_are_refused_by_both(old: str, new: str) -> None:
    assert EXAMPLE_TEXT.count(old) == 1, old
    text = EXAMPLE_TEXT.replace(old, new)
    with pytest.raises(ScenarioError):
        load_scenario_text(text, "s.yaml")
    assert schema_errors(tree(text)), f"the schema accepts what the loader refuses: {new}"


def _mappings(node: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        found.append(path)
        for key, value in node.items():
            found += _mappings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _mappings(value, (*path, i))
    return found


EXAMPLE_MAPPINGS = _mappings(json.loads(json.dumps(tree(EXAMPLE_TEXT))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(EXAMPLE_MAPPINGS), key=st.sampled_from(["extra", "Name", "id_", "sync2", "valu"]))
def test_an_unknown_key_anywhere_is_refused_by_both(where: tuple[Any, ...], key: str) -> None:
    doc = json.loads(json.dumps(tree(EXAMPLE_TEXT)))
    node = doc
    for step in where:
        node = node[step]
    assume(key not in node)
    node[key] = 1
    with pytest.raises(ScenarioError):
        load_scenario_text(json.dumps(doc), "s.yaml")
    assert schema_errors(doc)


# --- hypothesis-generated valid scenarios validate -------------------------------------------------

IDS = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
DURATIONS = st.sampled_from(["45s", "5m", "1h30m", "90d", "2w", "1d2h30m", " 10m ", "0s", 0])
POSITIVE = st.sampled_from(["45s", "5m", "1h30m", "90d", "2w", "1d2h30m", "1s"])
LATER = st.sampled_from(["+0s", "+2h", "+1d2h30m", "2026-11-02T10:00:00Z", "2026-11-03 09:00:00+01:00", "-0s"])
EARLIER = st.sampled_from(["-95d", "-0s", "+0s", "2026-11-01T09:00:00Z", "2026-11-02T09:00:00.000+00:00"])
IPS = st.sampled_from(["198.51.100.10", "2001:db8::1", "192.0.2.7", "::ffff:192.0.2.1"])
NULLABLE = st.none()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A valid mailsim/1 document: ids unique, references resolved, every optional key sometimes null."""

    def maybe(value: Any) -> Any:
        return draw(st.sampled_from([value, value, None]))

    doc: dict[str, Any] = {"schema": "mailsim/1", "start": "2026-11-02T09:00:00Z"}
    doc["name"] = maybe(draw(st.sampled_from(["tour", "a b", "x"])))
    doc["seed"] = draw(st.integers(0, 2**64 - 1))
    doc["until"] = maybe(draw(st.sampled_from(["+2d", "+1h", "2026-11-04T09:00:00Z"])))
    doc["tags"] = maybe(draw(st.lists(st.sampled_from(["step-1", "x"]), max_size=3)))
    doc["settings"] = maybe(
        {
            "queue_poll": maybe(draw(POSITIVE)),
            "stuck_after": maybe(draw(DURATIONS)),
            "token_lifetime": maybe(draw(POSITIVE)),
            "smtp_path_requires_spf": maybe(draw(st.booleans())),
            "retry_schedule": maybe(draw(st.lists(POSITIVE, min_size=1, max_size=4))),
            "max_queue_lifetime": maybe(draw(DURATIONS)),
        }
    )
    if doc["settings"] and doc["until"] == "+2d":
        doc["settings"]["queue_poll"] = "1m"
    doc["platform"] = maybe(
        {"sending_ips": maybe(draw(st.lists(IPS, min_size=1, max_size=2))), "helo": maybe("Out.Platform.Example.")}
    )
    providers: dict[str, Any] = {"microsoft365": maybe({"sending_ips": maybe(["203.0.113.21"])})}
    if draw(st.booleans()):
        providers["zoho"] = {
            "sending_ips": draw(st.lists(IPS, min_size=1, max_size=2)),
            "spf_include": maybe("zoho.example"),
            "helo": maybe("mx.zoho.example"),
        }
    doc["providers"] = maybe(providers)
    regions = draw(st.lists(IDS, max_size=3, unique=True))
    branches = draw(st.lists(IDS, min_size=1, max_size=3, unique=True))
    doc["organization"] = {
        "configuration": maybe(
            {
                "invoice_email_from": maybe("billing@acme.example"),
                "invoice_recipients": maybe(draw(st.permutations(["billing", "email_invoice", "primary"]))[:2]),
            }
        ),
        "regions": [{"id": r, "invoicing_email_from": maybe(f"{r}@acme.example")} for r in regions],
        "branches": [
            {
                "id": b,
                "region": maybe(draw(st.sampled_from(regions))) if regions else None,
                "invoicing_email_from": maybe(f"{b}@acme.example"),
            }
            for b in branches
        ],
    }
    users = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    provider_names = [
        "microsoft365",
        "google",
        "exchange",
        *(["zoho"] if doc["providers"] and "zoho" in providers else []),
    ]
    doc["users"] = [
        {
            "id": u,
            "email": f"{u}@acme.example",
            "active": maybe(draw(st.booleans())),
            "sync": maybe(
                {
                    "provider": draw(st.sampled_from(provider_names)),
                    "synced": draw(EARLIER),
                    "last_login": maybe(draw(EARLIER)),
                    "password_changed": maybe(draw(EARLIER)),
                }
            ),
        }
        for u in users
    ]
    contacts = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    doc["contacts"] = [
        {"id": c, "email": f" {c}@Client.example", "active": maybe(draw(st.booleans()))} for c in contacts
    ]
    properties = draw(st.lists(IDS, min_size=1, max_size=3, unique=True))
    doc["properties"] = [
        {
            "id": p,
            "branch": draw(st.sampled_from(branches)),
            "contacts": [
                {
                    "contact": c,
                    "email_invoice": maybe(draw(st.booleans())),
                    "primary": maybe(True),
                    "billing": maybe(False),
                }
                for c in draw(st.lists(st.sampled_from(contacts), unique=True))
            ],
        }
        for p in properties
    ]
    doc["batches"] = [
        {
            "id": "B1",
            "invoices": [{"id": "INV-1", "property": properties[0], "amount": maybe(draw(st.floats(0, 1e6)))}],
        },
        {"id": "B2", "invoices": {"count": draw(st.integers(1, 500)), "properties": properties}},
        {"id": "B3", "invoices": None},
    ]
    doc["dns"] = maybe(
        {
            "records": [
                {
                    "name": "acme.example",
                    "type": draw(st.sampled_from(["TXT", "txt", " spf "])),
                    "value": draw(st.sampled_from(["v=spf1 -all", ["v=spf1 ", "-all"], 'a\\"b\\\\c\\255'])),
                },
                {
                    "name": "*.client.example",
                    "type": "MX",
                    "value": draw(st.sampled_from(["10 mx.client.example", "0 .", " 65535  MX.client.example. "])),
                },
                {"name": "mx.client.example", "type": "A", "value": "192.0.2.25", "ttl": maybe(60)},
                {"name": "v6.client.example", "type": "aaaa", "value": "2001:DB8::25"},
                {"name": "www.client.example", "type": "CNAME", "value": "odd name\\.x.example"},
            ],
            "unreachable": [
                draw(st.sampled_from(["slow.example", "."])),
                {"name": "half.example", "types": maybe(["TXT", "mx"]), "subdomains": maybe(False)},
            ],
        }
    )
    doc["mailboxes"] = [
        {
            "domain": "client.example",
            "users": maybe(["jane", "bob"]),
            "spf_policy": maybe(
                {
                    r: draw(st.sampled_from(SPF_ACTIONS))
                    for r in draw(st.lists(st.sampled_from(SPF_RESULTS), unique=True))
                }
            ),
            "greylist": maybe(draw(DURATIONS)),
            "quota": maybe(draw(st.integers(0, 10))),
            "size_limit": maybe(draw(st.integers(1, 10**7))),
        }
    ]
    events: list[dict[str, Any]] = []
    for kind in draw(st.lists(st.sampled_from(EVENT_KINDS), max_size=8)):
        args: Any = {
            "complete_batch": "B1",
            "set_contact_email": {"contact": contacts[0], "email": "new@client.example"},
            "set_contact_active": {"contact": contacts[0], "active": False},
            "set_property_contact": {"property": properties[0], "contact": contacts[-1], "billing": maybe(True)},
            "set_invoicing_email_from": draw(
                st.sampled_from(
                    [
                        {"branch": branches[0], "email": "x@acme.example"},
                        {"configuration": True, "email": None},
                        *([{"region": regions[0]}] if regions else []),
                    ]
                )
            ),
            "set_sync": {"user": users[0], "provider": draw(st.sampled_from(provider_names))},
            "dns_set": {"name": "acme.example", "type": "TXT", "value": "v=spf1 +all"},
            "dns_delete": {"name": "acme.example", "type": "txt"},
            "set_token_lifetime": {"lifetime": draw(POSITIVE)},
        }.get(kind, users[-1])
        events.append({"at": draw(LATER), kind: args, "note": maybe("Now the token expires")})
    doc["timeline"] = maybe(events)
    doc["faults"] = [
        {
            "kind": draw(st.sampled_from([k for k in FAULT_KINDS if k != "slow" and not k.startswith("dns_")])),
            "at": maybe(draw(LATER)),
            "for": maybe(draw(DURATIONS)),
            "stage": maybe(draw(st.sampled_from(SMTP_STAGES))),
            "probability": maybe(draw(st.floats(0, 1))),
            "target": maybe("client.example"),
        },
        {"kind": "slow", "delay": maybe("30s"), "note": maybe("slow server")},
        {"kind": "dns_servfail", "target": "acme.example", "stage": None},
    ]
    doc["expect"] = [
        {"invoice": "INV-1", "email_status": "In Queue", "reason": maybe("sync-token-expired"), "at": maybe("+2h")},
        {
            "invoice": "B2-" + "1".zfill(len(str(doc["batches"][1]["invoices"]["count"]))),
            "recipient": "jane@client.example",
            "outcome": "inbox",
            "within": maybe("end"),
        },
        {"invoice": "INV-1", "never": {"email_status": "Sent"}, "until": maybe("+3h")},
        {"mailbox": "ar@acme.example", "bounces": 0, "junk": maybe(1)},
        {"count": {"email_status": "In Queue", "outcome": "deferred"}, "equals": 0, "at": "end"},
    ]
    return doc


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=scenarios())
def test_generated_valid_scenarios_validate(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)  # JSON is YAML: the same tree reaches the loader and the validator
    load_scenario_text(text, "s.yaml")
    assert schema_errors(tree(text)) == []


# --- the patterns accept exactly what the converters accept -----------------------------------------

#: Refusals that depend on magnitudes or on start, which no pattern expresses (documented).
MAGNITUDE = re.compile(
    r"too long|too far|out of range|must be in|between the years|octets|must not be before start|is after start"
    r"|not a real date"
)


def loader_verdict(convert: Callable[[Reader, object, Pos, str], object], value: str) -> str | None:
    """None when the converter accepts ``value``, else its message."""
    reader = Reader("s.yaml")
    reader.start = START
    try:
        convert(reader, value, Pos(1, 1), "k")
    except ScenarioError as e:
        return e.message
    return None


def agree(pattern: str, convert: Callable[[Reader, object, Pos, str], object], value: str) -> None:
    matched = re.search(pattern, value) is not None
    verdict = loader_verdict(convert, value)
    if verdict is None:
        assert matched, f"the loader accepts {value!r}, the pattern refuses it"
    elif matched:
        assert MAGNITUDE.search(verdict), f"the pattern accepts {value!r}, the loader refuses it: {verdict}"


def pattern_of(kind: Kind[Any]) -> str:
    schema = kind.schema
    if "anyOf" in schema:
        return str(next(s["pattern"] for s in schema["anyOf"] if "pattern" in s))
    return str(schema["pattern"])


TIME_ALPHABET = "0123456789wdhms+- :TZ.e\u00a0"
TIME_KINDS = [
    kinds.DURATION,
    kinds.POSITIVE_DURATION,
    kinds.TIME,
    kinds.TIME_NOT_BEFORE_START,
    kinds.INITIAL_TIME,
    kinds.TIME_OR_END,
]
TIME_EXAMPLES = [
    "+2d1",
    "5mins",
    "1h30m",
    " +1d2h30m ",
    "0",
    "+0",
    "-0s",
    "2w",
    "0s",
    "1m1h",
    "+",
    "",
    "end",
    "1e3",
    "2026-11-02T09:00:00Z",
    "2026-11-02 09:00+01:00",
    "2026-11-02T09:00:00",
    "2026-02-30T00:00:00Z",
    "2026-11-02T09:00:00.5Z",
    "2026-11-02T09:00:00.000Z",
    "20261102T090000Z",
    "2026-11-02T09Z",
    "9999999999999w",
    "5200w",
    "+5300w",
]


@pytest.mark.parametrize("kind", TIME_KINDS, ids=lambda k: k.convert.__name__)
@pytest.mark.parametrize("value", TIME_EXAMPLES)
def test_time_patterns_on_known_cases(kind: Kind[Any], value: str) -> None:
    agree(pattern_of(kind), kind.convert, value)


@pytest.mark.parametrize("kind", TIME_KINDS, ids=lambda k: k.convert.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_time_patterns_agree_with_the_parsers(kind: Kind[Any], data: st.DataObject) -> None:
    pattern = pattern_of(kind)
    value = data.draw(st.one_of(st.text(TIME_ALPHABET, max_size=14), st.from_regex(pattern)))
    agree(pattern, kind.convert, value)


def test_the_issue_examples_are_flagged() -> None:
    assert re.search(pattern_of(kinds.TIME), "+2d1") is None and loader_verdict(kinds.TIME.convert, "+2d1")
    assert re.search(pattern_of(kinds.DURATION), "5mins") is None and loader_verdict(kinds.DURATION.convert, "5mins")


NAME_ALPHABET = "ab-_*.\\09 %"
SCALAR_KINDS = [kinds.ID, kinds.TEXT, kinds.IP, kinds.DNS_NAME, kinds.OWNER_NAME, kinds.TARGET_NAME]


@pytest.mark.parametrize("kind", SCALAR_KINDS, ids=lambda k: k.convert.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_name_and_address_patterns_agree_with_the_converters(kind: Kind[Any], data: st.DataObject) -> None:
    pattern = pattern_of(kind)
    alphabet = "0123456789abcdefABCDEF:.% " if kind is kinds.IP else NAME_ALPHABET
    value = data.draw(st.one_of(st.text(alphabet, max_size=16), st.from_regex(pattern)))
    agree(pattern, kind.convert, value)


def _record_value(rtype: str) -> Callable[[Reader, object, Pos, str], object]:
    return lambda reader, value, pos, where: dns_value(reader, value, pos, where, rtype)


def _value_pattern(rtype: str) -> str:
    rule = next(
        r
        for r in SCHEMA["properties"]["dns"]["properties"]["records"]["items"]["allOf"]
        if re.search(r["if"]["properties"]["type"]["pattern"], rtype)
    )
    value = rule["then"]["properties"]["value"]
    value = value["anyOf"][0] if "anyOf" in value else value
    return str(SCHEMA["$defs"][value["$ref"].rsplit("/", 1)[1]]["pattern"] if "$ref" in value else value["pattern"])


def test_shared_patterns_are_defined_once() -> None:
    text = schema_text()
    assert text.count(kinds.TIME_OR_END.schema["pattern"].replace("\\", "\\\\")) == 1
    until = SCHEMA["properties"]["until"]
    assert until["anyOf"] == [{"$ref": "#/$defs/time-not-before-start"}, {"type": "null"}]
    assert SCHEMA["$defs"]["duration"]["pattern"] == pattern_of(kinds.DURATION)


@pytest.mark.parametrize("rtype", DNS_RECORD_TYPES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
@example(data=None)
def test_record_value_patterns_agree_with_the_loader(rtype: str, data: st.DataObject | None) -> None:
    pattern = _value_pattern(rtype)
    if data is None:  # the cases the issue and DESIGN §8 name
        for value in [
            "10 mx.client.example",
            "0 .",
            "65536 mx.example",
            "10",
            "v=spf1 -all",
            "\\256",
            "a\\",
            "192.0.2.1",
            "2001:db8::1",
            "fe80::1%eth0",
            "a b.example",
            "a..example",
        ]:
            agree(pattern, _record_value(rtype), value)
        return
    alphabet = {"A": "0123456789. ", "AAAA": "0123456789abcdef:. %", "MX": "0123456789 .abx\\-"}.get(
        rtype, NAME_ALPHABET
    )
    value = data.draw(st.one_of(st.text(alphabet, max_size=16), st.from_regex(pattern)))
    agree(pattern, _record_value(rtype), value)


@settings(max_examples=200, deadline=None)
@given(value=st.text("aAmMxXsSpPfFtTnN ", max_size=6))
def test_record_type_pattern_agrees_with_the_loader(value: str) -> None:
    agree(TYPE_PATTERN, dns_type, value)
    assert MX_PATTERN.startswith("^")


# --- editors run the patterns as ECMA-262 regexes ----------------------------------------------------


def _patterns(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.add(value)
            else:
                found |= _patterns(value)
    elif isinstance(node, list):
        for value in node:
            found |= _patterns(value)
    return found


ECMA_SAMPLES = [
    "+2d1",
    "5mins",
    "1h30m",
    " +2h ",
    "-95d",
    "2026-11-02T09:00:00Z",
    "end",
    "0",
    "a..b",
    "*.a.b",
    "a\\046b",
    "10 mx.client.example",
    "0 .",
    "198.51.100.10",
    "2001:db8::1",
    "u1",
    "jane",
    "x\n",
    "\u00a0+1h\u3000",
    "\u0085",
    "In Queue",
    "v=spf1 -all",
    "\\256",
    "",
]


def test_patterns_read_the_same_as_ecma_262(tmp_path: Path) -> None:
    """The YAML language server runs the patterns in JavaScript (``u`` flag): same verdicts as Python's re."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the ECMA-262 reading of the patterns is not checked here")
    patterns = sorted(_patterns(SCHEMA))
    script = tmp_path / "check.js"
    script.write_text(
        "const [patterns, samples] = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "console.log(JSON.stringify(patterns.map(p => { const r = new RegExp(p, 'u');"
        " return samples.map(s => r.test(s)); })));\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [node, str(script)],
        input=json.dumps([patterns, ECMA_SAMPLES]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ecma = json.loads(done.stdout)
    python = [[re.search(p, s) is not None for s in ECMA_SAMPLES] for p in patterns]
    assert len(patterns) > 20
    assert ecma == python


def test_a_javascript_validator_agrees(tmp_path: Path) -> None:
    """Ajv (JavaScript regexes, as in editors) accepts the corpus and refuses every shape error above."""
    import os
    import shutil
    import subprocess

    node = shutil.which("node")
    modules = Path("/usr/share/nodejs")  # Debian's node-ajv
    if node is None or not (modules / "ajv").is_dir():
        pytest.skip("node and ajv (apt-get install node-ajv) are needed to check the schema in JavaScript")
    script = tmp_path / "validate.js"
    script.write_text(
        "const Ajv = require('ajv');\n"
        "const [schema, docs] = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "delete schema['$schema'];  // Ajv 6 reads the 2020-12 keywords used here but not its meta-schema\n"
        "const ajv = new Ajv({validateSchema: false, logger: false});\n"
        "const validate = ajv.compile(schema);\n"
        "console.log(JSON.stringify(docs.map(d => validate(d) ? null : ajv.errorsText(validate.errors))));\n",
        encoding="utf-8",
    )
    corpus = [json.loads(json.dumps(tree(p.read_text(encoding="utf-8")))) for p in CORPUS]
    refused = [json.loads(json.dumps(tree(EXAMPLE_TEXT.replace(old, new)))) for old, new in SHAPE_ERRORS]
    done = subprocess.run(
        [node, str(script)],
        input=json.dumps([SCHEMA, corpus + refused]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    verdicts = json.loads(done.stdout)
    assert verdicts[: len(corpus)] == [None] * len(corpus)
    assert [new for (_old, new), v in zip(SHAPE_ERRORS, verdicts[len(corpus) :], strict=True) if v is None] == []
