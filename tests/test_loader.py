"""The scenario loader: the §3 example loads field by field; every error names file:line:col."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulator.domain.dns import Dns
from simulator.domain.entities import (
    DEFAULT_PROVIDERS,
    DEFAULT_RETRY_SCHEDULE,
    CompactInvoices,
    Configuration,
    Platform,
    Provider,
    Settings,
    SpfPolicy,
)
from simulator.domain.events import EVENT_KINDS
from simulator.domain.reasons import REASONS
from simulator.domain.vocabulary import REASON_CODES
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import SUPPORTED_SCHEMAS, load_scenario, load_scenario_text
from simulator.scenario.model import Scenario

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "design_example.yaml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
H = 3600
D = 86400

MINI = """\
schema: mailsim/1
start: 2026-11-02T09:00:00Z
"""

ORG = (
    MINI
    + """\
organization:
  regions: [{id: north}]
  branches: [{id: b1, region: north}]
users:
  - {id: u1, email: ar@acme.example}
contacts:
  - {id: c1, email: jane@client.example}
properties:
  - {id: p1, branch: b1, contacts: [{contact: c1, email_invoice: true}]}
batches:
  - {id: B1, invoices: [{id: INV-1, property: p1}]}
"""
)


def mutated(old: str, new: str, text: str = TEXT) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def pos_of(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of needle."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def error_of(text: str, path: str = "s.yaml") -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, path)
    err = e.value
    assert str(err) == f"{path}:{err.line}:{err.column}: {err.message}"
    return err


def assert_error(text: str, needle: str, *fragments: str, nth: int = 0) -> ScenarioError:
    """The error is located at ``needle`` (its nth occurrence) and mentions every fragment."""
    err = error_of(text)
    assert (err.line, err.column) == pos_of(text, needle, nth), str(err)
    for fragment in fragments:
        assert fragment in err.message, str(err)
    return err


# --- the §3 example -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scn() -> Scenario:
    return load_scenario(EXAMPLE)


def test_example_top_level(scn: Scenario) -> None:
    assert scn.name == "token-expired-region-sender"
    assert scn.description == "Region sender's token lapsed; invoices wait in queue."
    assert scn.start == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert type(scn.start) is datetime
    assert scn.seed == 7
    assert scn.until == 2 * D
    assert scn.tags == ("step-2", "step-3")
    assert scn.source == str(EXAMPLE)
    assert scn.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert scn.iso(3600) == "2026-11-02T10:00:00Z"


def test_example_settings_platform_providers(scn: Scenario) -> None:
    assert scn.settings == Settings()
    assert scn.settings.retry_schedule == (300, 600, 1200, 2400, 4800, 9600, 14400) == DEFAULT_RETRY_SCHEDULE
    assert scn.platform == Platform(("198.51.100.10",), "out.platform.example")
    ms = scn.provider("microsoft365")
    assert isinstance(ms, Provider)
    assert ms.sending_ips == ("203.0.113.20",) and ms.spf_include == "spf.protection.outlook.com"
    assert ms.helo == "mail.protection.outlook.com"  # not in the file: kept from the defaults
    google = scn.provider("google")
    assert google is not None and google.spf_include == "_spf.google.com"
    assert [p.name for p in scn.providers] == ["microsoft365", "google"]


def test_example_organization(scn: Scenario) -> None:
    org = scn.organization
    assert org.configuration == Configuration("billing@acme.example", ("email_invoice",))
    (north,) = org.regions
    assert (north.id, north.invoicing_email_from) == ("north", "ar@acme.example")
    assert north.loc == f"{EXAMPLE}:21:14"
    b1, b2 = org.branches
    assert (b1.id, b1.region, b1.invoicing_email_from) == ("b1", "north", None)
    assert (b2.id, b2.region, b2.invoicing_email_from) == ("b2", "north", "b2@acme.example")


def test_example_users_contacts_properties(scn: Scenario) -> None:
    u1, u2, u3 = scn.users
    assert u1.email == "ar@acme.example" and u1.active
    assert u1.sync is not None and u3.sync is not None
    assert u1.sync.provider == "microsoft365"
    assert (u1.sync.synced, u1.sync.last_login, u1.sync.password_changed) == (-200 * D, -95 * D, None)
    assert u2.sync is None
    assert u3.sync.provider == "google"
    assert (u3.sync.synced, u3.sync.last_login, u3.sync.password_changed) == (-10 * D, -1 * D, -2 * D)
    assert u1.loc == f"{EXAMPLE}:24:5"
    c1, c2 = scn.contacts
    assert (c1.id, c1.email, c1.active) == ("c1", "jane@client.example", True)
    assert c2.email == "bob@client.example "  # raw, stray space kept (a guide cause)
    (p1,) = scn.properties
    assert p1.branch == "b1"
    (pc,) = p1.contacts
    assert (pc.contact, pc.email_invoice, pc.primary, pc.billing) == ("c1", True, True, True)
    assert p1.loc == f"{EXAMPLE}:32:5"


def test_example_batches(scn: Scenario) -> None:
    b1, b2 = scn.batches
    assert b1.compact is None and len(b1.invoices) == 1
    inv = b1.invoices[0]
    assert (inv.id, inv.property, inv.amount) == ("INV-1", "p1", 120.0)
    assert b2.invoices == () and b2.compact == CompactInvoices(100000, ("p1",))
    assert b2.count == 100000
    assert b2.invoice_id(0) == "B2-000001" and b2.invoice_id(99999) == "B2-100000"


def test_example_dns_mailboxes(scn: Scenario) -> None:
    txt, mx, a = scn.dns.records
    assert (txt.name, txt.type, txt.ttl) == ("acme.example", "TXT", 300)
    assert txt.value == "v=spf1 include:spf.protection.outlook.com ip4:198.51.100.10 -all"
    assert (mx.name, mx.type, mx.value) == ("client.example", "MX", "10 mx.client.example")
    assert (a.name, a.type, a.value) == ("mx.client.example", "A", "192.0.2.25")
    assert scn.dns.unreachable == ()
    (mb,) = scn.mailboxes
    assert mb.domain == "client.example" and mb.users == ("jane", "bob")
    assert mb.spf_policy == SpfPolicy()
    assert (mb.greylist, mb.quota, mb.size_limit) == (0, 0, 10 * 1024 * 1024)


def test_example_timeline(scn: Scenario) -> None:
    ev = scn.timeline
    assert [e.kind for e in ev] == [
        "complete_batch",
        "login",
        "resync",
        "change_password",
        "set_contact_email",
        "set_contact_active",
        "set_property_contact",
        "set_invoicing_email_from",
        "set_sync",
        "dns_set",
        "dns_delete",
        "deactivate_user",
    ]
    assert [e.index for e in ev] == list(range(12))
    assert [e.at for e in ev] == [
        1 * H,
        3 * H,
        4 * H,
        5 * H,
        6 * H,
        7 * H,
        8 * H,
        9 * H,
        10 * H,
        11 * H,
        12 * H,
        13 * H,
    ]
    assert ev[0].batch == "B1" and ev[0].loc == f"{EXAMPLE}:53:5"
    assert ev[1].user == ev[2].user == "u1" and ev[3].user == "u3"
    assert (ev[4].contact, ev[4].email) == ("c2", "bob@client.example")
    assert (ev[5].contact, ev[5].active) == ("c1", False)
    assert (ev[6].property, ev[6].contact, ev[6].email_invoice, ev[6].primary, ev[6].billing) == (
        "p1",
        "c2",
        True,
        None,
        None,
    )
    assert (ev[7].branch, ev[7].region, ev[7].configuration, ev[7].email) == ("b1", None, False, "b2@acme.example")
    assert (ev[8].user, ev[8].provider) == ("u2", "google")
    assert (ev[9].name, ev[9].type, ev[9].value) == ("acme.example", "TXT", "v=spf1 -all")
    assert type(ev[10]).__name__ == "DnsDelete" and (ev[10].name, ev[10].type) == ("acme.example", "TXT")
    assert not hasattr(ev[10], "value")  # each event type carries exactly its own arguments
    assert ev[11].user == "u3"


def test_example_faults(scn: Scenario) -> None:
    f0, f1, f2, f3 = scn.faults
    assert (f0.index, f0.kind, f0.at, f0.for_, f0.target, f0.probability) == (
        0,
        "outage",
        2 * H,
        1800,
        "client.example",
        1.0,
    )
    assert (f1.kind, f1.stage, f1.probability, f1.at, f1.for_) == ("tempfail", "rcpt", 0.05, None, None)
    assert (f2.kind, f2.at, f2.for_, f2.target) == ("dns_timeout", H, 600, "acme.example")
    assert (f3.index, f3.kind, f3.stage, f3.target, f3.delay) == (3, "disconnect", "data", None, 0)
    assert f0.loc == f"{EXAMPLE}:66:5"


def test_example_expect(scn: Scenario) -> None:
    e0, e1, e2, e3, e4 = scn.expect
    assert e0.text == "INV-1 email_status=In Queue reason=sync-token-expired at +2h"
    assert (e0.invoice, e0.email_status, e0.reason, e0.at, e0.when) == (
        "INV-1",
        "In Queue",
        "sync-token-expired",
        2 * H,
        2 * H,
    )
    assert e1.text == "INV-1 recipient=jane@client.example outcome=inbox within +5h"
    assert (e1.recipient, e1.outcome, e1.within, e1.when) == ("jane@client.example", "inbox", 5 * H, 5 * H)
    assert e2.text == "INV-1 never email_status=Sent until +3h"
    assert (e2.never, e2.until) == ((("email_status", "Sent"),), 3 * H)
    assert e3.text == "mailbox ar@acme.example bounces=0"
    assert (e3.mailbox, e3.bounces, e3.inbox, e3.junk, e3.at) == ("ar@acme.example", 0, None, None, None)
    assert e4.text == "count email_status=In Queue equals=0 at end"
    assert (e4.count, e4.equals, e4.at, e4.when) == ((("email_status", "In Queue"),), 0, None, None)
    assert [e.index for e in scn.expect] == [0, 1, 2, 3, 4]
    assert e0.loc == f"{EXAMPLE}:71:5"


def test_load_scenario_text_matches_file() -> None:
    a = load_scenario(EXAMPLE)
    b = load_scenario_text(TEXT, str(EXAMPLE))
    assert a == b


# --- defaults ------------------------------------------------------------------------------------


def test_minimal_scenario_defaults() -> None:
    s = load_scenario_text(MINI, "dir/minimal.yaml")
    assert s.name == "minimal"  # the file's stem
    assert (s.seed, s.description, s.until, s.tags) == (0, "", None, ())
    assert s.settings == Settings() and s.platform == Platform() and s.providers == DEFAULT_PROVIDERS
    assert s.organization.configuration == Configuration()
    assert s.dns == Dns() and s.users == () and s.timeline == () and s.expect == ()
    assert s.source == "dir/minimal.yaml"


def test_null_means_unset() -> None:
    text = MINI + "seed: null\nuntil: ~\nsettings: {queue_poll: null, retry_schedule: null}\ntags:\nplatform: {}\n"
    s = load_scenario_text(text)
    assert s.seed == 0 and s.until is None and s.settings == Settings() and s.tags == ()
    assert s.platform == Platform()


def test_settings_all_keys() -> None:
    text = MINI + (
        "settings: {queue_poll: 30s, stuck_after: 2h, token_lifetime: 10d, smtp_path_requires_spf: false,\n"
        "           retry_schedule: [1m, 2m], max_queue_lifetime: 1d}\n"
    )
    s = load_scenario_text(text).settings
    assert s == Settings(30, 2 * H, 10 * D, False, (60, 120), D)


def test_providers_override_and_add() -> None:
    text = MINI + (
        "providers:\n"
        "  google: {sending_ips: [203.0.113.31, '2001:db8::1']}\n"
        "  zoho: {sending_ips: [192.0.2.7], spf_include: zoho.example., helo: MX.Zoho.Example}\n"
        "  microsoft365:\n"
    )
    s = load_scenario_text(text)
    assert [p.name for p in s.providers] == ["microsoft365", "google", "zoho"]
    g = s.provider("google")
    z = s.provider("zoho")
    assert g is not None and z is not None
    assert g.sending_ips == ("203.0.113.31", "2001:db8::1") and g.spf_include == "_spf.google.com"
    assert (z.spf_include, z.helo) == ("zoho.example", "mx.zoho.example")
    assert s.provider("microsoft365") == DEFAULT_PROVIDERS[0]


def test_invoice_recipients_roles() -> None:
    text = MINI + "organization:\n  configuration: {invoice_recipients: [email_invoice, billing]}\n"
    assert load_scenario_text(text).organization.configuration.invoice_recipients == ("email_invoice", "billing")
    bad = MINI + "organization:\n  configuration: {invoice_recipients: [email_invoice, biling]}\n"
    assert_error(bad, "biling", "unknown role 'biling'", "did you mean 'billing'?")
    dup = MINI + "organization:\n  configuration: {invoice_recipients: [billing, billing]}\n"
    assert_error(dup, "billing", "listed twice", nth=1)


def test_dns_normalisation_and_values() -> None:
    text = MINI + (
        "dns:\n"
        "  records:\n"
        '    - {name: Acme.Example., type: txt, value: ["v=spf1 ", "-all"], ttl: 60}\n'
        "    - {name: '*.acme.example', type: AAAA, value: '2001:DB8:0::1'}\n"
        "    - {name: acme.example, type: mx, value: '010  MX.Acme.Example.'}\n"
        "    - {name: www.acme.example, type: CNAME, value: Acme.Example.}\n"
        "    - {name: 10.2.0.192.in-addr.arpa, type: PTR, value: mail.acme.example}\n"
        "    - {name: acme.example, type: NS, value: ns1.acme.example}\n"
        "    - {name: acme.example, type: SPF, value: 'v=spf1 -all'}\n"
        "  unreachable: [Slow.Example.]\n"
    )
    recs = load_scenario_text(text).dns
    r = recs.records
    assert (r[0].name, r[0].type, r[0].value, r[0].ttl, r[0].text) == (
        "acme.example",
        "TXT",
        ("v=spf1 ", "-all"),
        60,
        "v=spf1 -all",
    )
    assert (r[1].name, r[1].value) == ("*.acme.example", "2001:db8::1")
    assert r[2].value == "10 mx.acme.example"
    assert r[3].value == "acme.example"
    assert r[4].type == "PTR" and r[5].type == "NS" and r[6].type == "SPF"
    assert recs.unreachable == ("slow.example",)


def test_mailbox_options() -> None:
    text = MINI + (
        "mailboxes:\n"
        "  - {domain: Client.Example, spf_policy: {softfail: inbox, fail: junk}, greylist: 5m, quota: 3,"
        " size_limit: 1000}\n"
        "  - {domain: other.example, users: []}\n"
    )
    a, b = load_scenario_text(text).mailboxes
    assert a.domain == "client.example" and a.users is None
    assert a.spf_policy == SpfPolicy(softfail="inbox", fail="junk")
    assert a.spf_policy.action("pass") == "inbox" and a.spf_policy.action("temperror") == "defer"
    assert (a.greylist, a.quota, a.size_limit) == (300, 3, 1000)
    assert b.users == ()


# --- timeline shapes ------------------------------------------------------------------------------


def test_every_event_kind() -> None:
    text = ORG + (
        "timeline:\n"
        "  - {at: +1h, complete_batch: B1}\n"
        "  - {at: +1h, login: u1}\n"
        "  - {at: +1h, resync: u1}\n"
        "  - {at: +1h, change_password: u1}\n"
        "  - {at: +1h, set_contact_email: {contact: c1, email: ' x@client.example'}}\n"
        "  - {at: +1h, set_contact_active: {contact: c1, active: true}}\n"
        "  - {at: +1h, set_property_contact: {property: p1, contact: c1, email_invoice: false, primary: true,"
        " billing: false}}\n"
        "  - {at: +1h, set_invoicing_email_from: {region: north, email: null}}\n"
        "  - {at: +1h, set_invoicing_email_from: {configuration: true, email: ar@acme.example}}\n"
        "  - {at: +1h, set_sync: {user: u1, provider: zoho}}\n"
        "  - {at: +1h, remove_sync: u1}\n"
        "  - {at: +1h, dns_set: {name: Acme.Example, type: TXT, value: [a, b]}}\n"
        "  - {at: +1h, dns_delete: {name: acme.example, type: mx}}\n"
        "  - {at: +1h, deactivate_user: u1}\n"
        "  - {at: '2026-11-02T11:00:00+01:00', activate_user: u1}\n"
        "  - {at: +2h, set_token_lifetime: {lifetime: 30d}}\n"
    )
    ev = load_scenario_text(text).timeline
    assert sorted({e.kind for e in ev}) == sorted(EVENT_KINDS)
    assert ev[4].email == " x@client.example"
    assert (ev[6].email_invoice, ev[6].primary, ev[6].billing) == (False, True, False)
    assert (ev[7].region, ev[7].email, ev[7].configuration) == ("north", None, False)
    assert (ev[8].configuration, ev[8].email, ev[8].branch) == (True, "ar@acme.example", None)
    assert ev[9].provider == "zoho"
    assert (ev[11].name, ev[11].value) == ("acme.example", ("a", "b"))
    assert ev[15].lifetime == 30 * 86400
    assert ev[12].type == "MX"
    assert ev[14].at == H


# --- compact batches --------------------------------------------------------------------------------


def test_compact_batch_not_expanded_and_refs_in_range() -> None:
    text = ORG + (
        "  - {id: BIG, invoices: {count: 1000000, properties: [p1, p1]}}\n"
        "expect:\n"
        "  - {invoice: BIG-0000001, email_status: Pending}\n"
        "  - {invoice: BIG-1000000, email_status: Pending}\n"
    )
    s = load_scenario_text(text)
    big = s.batches[1]
    assert big.invoices == () and big.compact == CompactInvoices(1_000_000, ("p1", "p1"))
    assert big.invoice_id(999_999) == "BIG-1000000"


@pytest.mark.parametrize("ref", ["BIG-1000001", "BIG-0000000", "BIG-001", "BIG-x"])
def test_compact_ref_out_of_range(ref: str) -> None:
    text = ORG + (
        "  - {id: BIG, invoices: {count: 1000000, properties: [p1]}}\n"
        f"expect:\n  - {{invoice: {ref}, email_status: Pending}}\n"
    )
    assert_error(text, ref, f"unknown invoice {ref!r}", "BIG-0000001 … BIG-1000000")


def test_many_compact_batches() -> None:
    body = "".join(f"  - {{id: C{i}, invoices: {{count: 1000, properties: [p1]}}}}\n" for i in range(1000))
    s = load_scenario_text(ORG + body)
    assert len(s.batches) == 1001 and sum(b.count for b in s.batches) == 1_000_001


def test_explicit_id_colliding_with_compact_batch() -> None:
    text = ORG.replace("{id: INV-1, property: p1}", "{id: B2-07, property: p1}") + (
        "  - {id: B2, invoices: {count: 10, properties: [p1]}}\n"
    )
    assert_error(text, "B2-07", "duplicate invoice id 'B2-07'", "compact batch 'B2' generates B2-01 … B2-10")
    fine = ORG.replace("{id: INV-1, property: p1}", "{id: B2-007, property: p1}") + (
        "  - {id: B2, invoices: {count: 10, properties: [p1]}}\n"
    )
    load_scenario_text(fine)  # a different width: no collision


def test_duplicate_explicit_invoice_across_batches() -> None:
    text = ORG + "  - {id: B2, invoices: [{id: INV-1, property: p1}]}\n"
    assert_error(text, "INV-1", "duplicate invoice id 'INV-1'", "first in batch 'B1' at line 13", nth=1)


def test_compact_validation() -> None:
    assert_error(
        ORG + "  - {id: B2, invoices: {count: 0, properties: [p1]}}\n", "0, properties", "from 1 to 1000000000"
    )
    assert_error(ORG + "  - {id: B2, invoices: {count: 5, properties: []}}\n", "[]", "needs at least one property")
    assert_error(
        ORG + "  - {id: B2, invoices: {count: 5, properties: [p9]}}\n",
        "p9",
        "unknown property 'p9'",
        "did you mean 'p1'?",
    )
    assert_error(
        ORG + "  - {id: B2, invoices: {count: 5, propertys: [p1]}}\n", "propertys", "did you mean 'properties'?"
    )
    assert_error(ORG + "  - {id: B2, invoices: {properties: [p1]}}\n", "{properties", "missing required key 'count'")
    assert_error(
        ORG + "  - {id: B2, invoices: {count: true, properties: [p1]}}\n", "true, prop", "expected a whole number"
    )
    assert_error(ORG + "  - {id: B2, invoices: B1}\n", "B1}", "expected a list of invoices or {count: N")


# --- errors: exact positions and messages ---------------------------------------------------------


def test_error_format() -> None:
    err = error_of(mutated("  queue_poll: 1m", "  queue_pol: 1m"))
    assert str(err) == "s.yaml:9:3: unknown key 'queue_pol' in settings; did you mean 'queue_poll'?"
    assert (err.path, err.line, err.column) == ("s.yaml", 9, 3)
    assert err.message == "unknown key 'queue_pol' in settings; did you mean 'queue_poll'?"
    assert err.loc == "s.yaml:9:3"


def test_error_from_file_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(mutated("seed: 7 ", "seed: seven"), encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert str(e.value).startswith(f"{p}:5:7: seed: expected a whole number, got 'seven'")


def test_missing_file() -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario("/nonexistent/x.yaml")
    assert str(e.value).startswith("/nonexistent/x.yaml:1:1: cannot read the file")


@pytest.mark.parametrize(
    ("old", "new", "needle", "fragments"),
    [
        (
            "  queue_poll: 1m",
            "  queue_poll: five minutes",
            "five",
            ["expected a duration like 5m or 1h30m, got 'five minutes'"],
        ),
        ("stuck_after: 1h", "stuck_after: 60", "60", ["add a unit, e.g. 60s"]),
        ("branch: b1\n", "branch: b3\n", "b3", ["unknown branch 'b3'", "did you mean"]),
        (
            "schema: mailsim/1",
            "schema: mailsim/2",
            "mailsim/2",
            ["unsupported schema 'mailsim/2'", "supported: mailsim/1"],
        ),
        ("start: 2026-11-02T09:00:00Z", "start: 2026-11-02T09:00:00", "2026-11-02T09", ["a time zone is required"]),
        ("seed: 7 ", "seed: yes", "yes", ["expected a whole number, got 'yes'"]),
        ("seed: 7 ", "seed: -1", "-1", ["from 0 to"]),
        ("seed: 7 ", "seed: " + "9" * 60, "999", ["a number too large"]),
        ("tags: [step-2, step-3]", "tags: step-2", "step-2", ["tags: expected a list of tags, got 'step-2'"]),
        ("tags: [step-2, step-3]", "tags: [step-2, [x]]", "[x]", ["tags[1]: expected a string, got a list"]),
        ("until: +2d", "until: -2d", "-2d", ["must not be before start"]),
        ("until: +2d", "until: end", "end", ["'end' is only allowed in expect:"]),
        (
            "region: north}, {id: b2",
            "region: south}, {id: b2",
            "south",
            ["unknown region 'south'", "did you mean 'north'?"],
        ),
        (
            "{id: b1, region",
            "{id: b2, region",
            "b2, region: north, invoicing",
            ["duplicate branch id 'b2' (first defined at line 22)"],
        ),
        ("active: true,\n", "active: yes,\n", "yes", ["expected true or false, got 'yes'", "write true or false"]),
        ("active: true,\n", "active: 1,\n", "1,", ["expected true or false, got the number 1"]),
        ("synced: -200d", "synced: +200d", "+200d", ["after start", "timeline event"]),
        ("synced: -200d", "synced: null", "null", ["users[0].sync.synced: a value is required, got null"]),
        (
            "{provider: microsoft365, synced: -200d, ",
            "{provider: microsoft365, ",
            "{provider",
            ["missing required key 'synced'"],
        ),
        ("provider: microsoft365,", "providr: microsoft365,", "providr", ["did you mean 'provider'?"]),
        (
            "{id: u2, email: billing@acme.example}",
            "{id: u2, emial: billing@acme.example}",
            "emial",
            ["did you mean 'email'?"],
        ),
        ("{id: u2, email: billing@acme.example}", "{id: u2}", "{id: u2}", ["missing required key 'email' in users[1]"]),
        ("{id: u2, email", "{id: 2, email", "2, email", ["expected an id (a string), got the number 2", "quote it"]),
        ("{id: u2, email", "{id: 'u 2', email", "'u 2'", ["without spaces"]),
        (
            '"bob@client.example "',
            '" JANE@Client.example"',
            '" JANE',
            ["duplicate contact email", "contact 'c1' (line 29)"],
        ),
        ("contacts: [{contact: c1,", "contacts: [{contact: c9,", "c9", ["unknown contact 'c9'", "did you mean"]),
        (
            "email_invoice: true, primary",
            "email_invoice: 'true', primary",
            "'true'",
            ["expected true or false, got 'true'"],
        ),
        ("amount: 120.00", "amount: lots", "lots", ["expected a number like 120.00"]),
        ("amount: 120.00", "amount: .nan", ".nan", ["expected a finite amount"]),
        ("property: p1, amount", "property: p2, amount", "p2", ["unknown property 'p2'", "did you mean 'p1'?"]),
        ("{id: B1, invoices: [{id: INV-1,", "{id: B1, invoices: [{ident: INV-1,", "ident", ["did you mean 'id'?"]),
        (
            "{id: B2, invoices",
            "{id: B1, invoices",
            "B1",
            ["duplicate batch id 'B1' (first defined at line 36)"],
        ),
        ("value: 192.0.2.25", "value: 192.0.2.256", "192.0.2.256", ["expected an IPv4 address like 192.0.2.25"]),
        ("type: A, value: 192.0.2.25", "type: A, value: '2001:db8::1'", "'2001", ["IPv4"]),
        ('value: "10 mx.client.example"', 'value: "mx.client.example"', '"mx.client', ["preference 0-65535"]),
        ('value: "10 mx.client.example"', 'value: "70000 mx.client.example"', '"70000', ["preference 0-65535"]),
        ("type: MX", "type: MXX", "MXX", ["unknown record type 'MXX'", "did you mean 'MX'?"]),
        (
            "{name: client.example, type: MX",
            "{name: 'client..example', type: MX",  # a space is a label character now (DESIGN §8)
            "'client..example'",
            ["expected a DNS name"],
        ),
        ('type: TXT, value: "v=spf1 include', 'type: TXT, value: 5, x: "v=spf1 include', "x:", ["unknown key 'x'"]),
        ("unreachable: []", "unreachable: [bad..name]", "bad..name", ["expected a DNS name"]),
        ("users: [jane, bob]", "users: [jane@client.example, bob]", "jane@", ["expected a local part like 'jane'"]),
        ("users: [jane, bob]", "users: jane", "jane", ["expected a list of user names"]),
        ("spf_policy: {pass: inbox", "spf_policy: {pas: inbox", "pas:", ["unknown key 'pas'", "did you mean 'pass'?"]),
        (
            "spf_policy: {pass: inbox",
            "spf_policy: {pass: accept",
            "accept",
            ["unknown action 'accept'", "inbox, junk, reject, defer"],
        ),
        ("greylist: 0s", "greylist: soon", "soon", ["mailboxes[0].greylist: expected a duration"]),
        ("quota: 0", "quota: -1", "-1", ["from 0 to"]),
        (
            "- domain: client.example",
            "- domain: client.example\n    sizelimit: 5",
            "sizelimit",
            ["did you mean 'size_limit'?"],
        ),
        ("{at: +13h, deactivate_user: u3}", "{at: 13h, deactivate_user: u3}", "13h", ["did you mean '+13h'?"]),
        ("{at: +13h, deactivate_user: u3}", "{at: -1h, deactivate_user: u3}", "-1h", ["must not be before start"]),
        ("{at: +13h, deactivate_user: u3}", "{deactivate_user: u3}", "{deactivate_user", ["missing required key 'at'"]),
        ("{at: +13h, deactivate_user: u3}", "{at: +13h}", "{at: +13h}", ["needs one event key"]),
        (
            "{at: +13h, deactivate_user: u3}",
            "{at: +13h, deactivate_user: u3, login: u1}",
            "login",
            ["one event per entry, got 'deactivate_user' and 'login'"],
        ),
        (
            "{at: +1h, complete_batch: B1}",
            "{at: +1h, complete_btch: B1}",
            "complete_btch",
            ["did you mean 'complete_batch'?"],
        ),
        (
            "{at: +1h, complete_batch: B1}",
            "{at: +1h, complete_batch: B9}",
            "B9",
            ["unknown batch 'B9'", "did you mean"],
        ),
        (
            "{at: +3h, login: u1}",
            "{at: +3h, login: u9}",
            "u9",
            ["timeline[1].login: unknown user 'u9'", "did you mean"],
        ),
        ("{at: +3h, login: u1}", "{at: +3h, login: {user: u1}}", "{user", ["expected a user id, e.g. login: u1"]),
        (
            "{contact: c2, email: bob@client.example}",
            "{contact: c2}",
            "{contact: c2}",
            ["missing required key 'email'"],
        ),
        ("{contact: c1, active: false}", "{contact: c1, active: off}", "off", ["expected true or false"]),
        (
            "{property: p1, contact: c2, email_invoice: true}",
            "{property: p1, contact: c2, email_invoce: true}",
            "email_invoce",
            ["did you mean 'email_invoice'?"],
        ),
        (
            "{branch: b1, email: b2@acme.example}",
            "{branch: b1, region: north, email: b2@acme.example}",
            "region:",
            ["exactly one of branch:, region:, configuration: true"],
        ),
        ("{branch: b1, email: b2@acme.example}", "{email: b2@acme.example}", "{email", ["exactly one of branch:"]),
        ("{branch: b1, email: b2@acme.example}", "{configuration: false, email: x@y}", "false", ["must be true"]),
        ("{branch: b1, email: b2@acme.example}", "{branch: b7, email: x@y}", "b7", ["unknown branch 'b7'"]),
        ("{user: u2, provider: google}", "{user: u2}", "{user: u2}", ["missing required key 'provider'"]),
        (
            'type: TXT, value: "v=spf1 -all"}',
            "type: TXT}",
            "{name: acme.example, type: TXT}",
            ["missing required key 'value'"],
        ),
        ("{name: acme.example, type: TXT}}", "{name: acme.example, type: TEXT}}", "TEXT", ["did you mean 'TXT'?"]),
        ("kind: outage", "kind: outtage", "outtage", ["unknown fault kind 'outtage'", "did you mean 'outage'?"]),
        ("probability: 0.05", "probability: 1.5", "1.5", ["expected a probability from 0 to 1"]),
        ("probability: 0.05", "probability: true", "true", ["expected a probability from 0 to 1, got true"]),
        ("kind: dns_timeout", "kind: dns_timeout, stage: rcpt", "stage", ["applies to SMTP faults"]),
        ("stage: data", "stage: dta", "dta", ["unknown stage 'dta'", "did you mean 'data'?"]),
        ("{at: +2h, for: 30m", "{at: +2h, for: 30", "30,", ["add a unit"]),
        ("{at: +2h, for: 30m", "{at: +2h, fr: 30m", "fr:", ["did you mean 'for'?"]),
        ("kind: outage,", "kind: outage, delay: 5s,", "delay", ["delay applies only to kind: slow"]),
        (
            "retry_schedule: [5m, 10m, 20m, 40m, 1h20m, 2h40m, 4h]",
            "retry_schedule: []",
            "[]",
            ["needs at least one interval"],
        ),
        (
            "retry_schedule: [5m, 10m, 20m, 40m, 1h20m, 2h40m, 4h]",
            "retry_schedule: [5m, 0s]",
            "0s",
            ["must be longer than 0s"],
        ),
        (
            "retry_schedule: [5m, 10m, 20m, 40m, 1h20m, 2h40m, 4h]",
            "retry_schedule: 5m",
            "5m",
            ["expected a list of durations"],
        ),
        ("queue_poll: 1m", "queue_poll: 0s", "0s", ["must be longer than 0s"]),
        ("smtp_path_requires_spf: true", "smtp_path_requires_spf: True!", "True!", ["expected true or false"]),
        ("platform: {sending_ips: [198.51.100.10]", "platform: {sending_ips: []", "[]", ["needs at least one IP"]),
        (
            "platform: {sending_ips: [198.51.100.10]",
            "platform: {sending_ips: [198.51.100]",
            "198.51.100]",
            ["expected an IP address"],
        ),
        (
            "{sending_ips: [203.0.113.30], spf_include",
            "{sending_ip: [203.0.113.30], spf_include",
            "sending_ip:",
            ["did you mean 'sending_ips'?"],
        ),
        (
            "invoice: INV-1, email_status: In Queue",
            "invoice: INV-2, email_status: In Queue",
            "INV-2",
            ["unknown invoice 'INV-2'", "did you mean 'INV-1'?"],
        ),
        (
            "email_status: In Queue, reason",
            "email_status: in queue, reason",
            "in queue",
            ["unknown email status 'in queue'", "did you mean 'In Queue'?"],
        ),
        (
            "reason: sync-token-expired",
            "reason: sync-token-expird",
            "sync-token-expird",
            ["unknown reason code", "did you mean 'sync-token-expired'?"],
        ),
        ("outcome: inbox", "outcome: delivered", "delivered", ["unknown outcome 'delivered'"]),
        ("never: {email_status: Sent}", "never: {email_status: Done}", "Done", ["unknown email status 'Done'"]),
        (
            "never: {email_status: Sent}",
            "never: Sent",
            "Sent, until",
            ["expected a mapping like {email_status: In Queue}"],
        ),
        (
            "{mailbox: ar@acme.example, bounces: 0}",
            "{mailbox: ar@acme.example}",
            "{mailbox",
            ["needs bounces:, inbox: or junk:"],
        ),
        ("{mailbox: ar@acme.example, bounces: 0}", "{mailbox: ar, bounces: 0}", "ar,", ["expected an email address"]),
        ("{mailbox: ar@acme.example, bounces: 0}", "{mailbox: ar@acme.example, bounces: -1}", "-1", ["from 0 to"]),
        ("equals: 0, at: end}", "equal: 0, at: end}", "equal", ["unknown key 'equal'", "did you mean 'equals'?"]),
        ("equals: 0, at: end}", "equals: 0, within: end}", "within", ["'within' does not go with count:"]),
        ("equals: 0, at: end}", "at: end}", "{count", ["missing required key 'equals'"]),
        ("{count: {email_status: In Queue}", "{count: {status: In Queue}", "status", ["did you mean 'email_status'?"]),
        (
            "{invoice: INV-1, never: {email_status: Sent}, until: +3h}",
            "{invoce: INV-1, never: {email_status: Sent}, until: +3h}",
            "invoce",
            ["did you mean 'invoice'?"],
        ),
        ("outcome: inbox, within: +5h", "outcome: inbox, within: tomorrow", "tomorrow", ["or end"]),
        ("outcome: inbox, within: +5h", "within: +5h", "{invoice: INV-1, recipient", ["needs outcome: or reason:"]),
    ],
)
def test_error_positions(old: str, new: str, needle: str, fragments: list[str]) -> None:
    """The error sits on ``needle``: its first occurrence from the start of the edited line."""
    text = mutated(old, new)
    line_start = text.rfind("\n", 0, TEXT.index(old)) + 1
    index = text.index(needle, line_start)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    err = error_of(text)
    assert (err.line, err.column) == (line, col), str(err)
    for fragment in fragments:
        assert fragment in err.message, str(err)


def test_reason_is_optional_in_invoice_expectations() -> None:
    s = load_scenario_text(mutated("reason: sync-token-expired, at: +2h}", "at: +2h}"))
    assert s.expect[0].reason is None and s.expect[0].text == "INV-1 email_status=In Queue at +2h"


# --- YAML-level errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("", 1, 1, "the file is empty"),
        ("# only a comment\n", 1, 1, "the file is empty"),
        ("[1, 2]\n", 1, 1, "expected a mapping of scenario keys"),
        ("just text\n", 1, 1, "got 'just text'"),
        ("schema: mailsim/1\nstart: [1,\n", 3, 1, "invalid YAML"),
        ("schema: mailsim/1\n  start: x\n", 2, 8, "invalid YAML"),
        ("schema: mailsim/1\nschema: mailsim/1\n", 2, 1, "duplicate key 'schema' (first at line 1)"),
        ("schema: mailsim/1\nstart: *nope\n", 2, 8, "unknown alias *nope"),
        ("schema: mailsim/1\nstart: !!python/object x\n", 2, 8, "unsupported tag"),
        ("schema: mailsim/1\nstart: !!int x\n", 2, 8, "!!int 'x' is not a valid int"),
        ("schema: mailsim/1\n? [a]\n: 1\n", 2, 3, "a mapping key must be a plain value"),
        ("schema: mailsim/1\n---\nschema: mailsim/1\n", 2, 1, "expected one YAML document"),
        ("schema: mailsim/1\nstart: \x00\n", 2, 8, "invalid YAML"),
        ("start: 2026-11-02T09:00:00Z\n", 1, 1, "missing required key 'schema' (use schema: mailsim/1)"),
        ("schema: mailsim/1\n", 1, 1, "missing required key 'start'"),
        ("schema: 1\n", 1, 9, "unsupported schema the number 1"),
        ("schema: mailsim/1\nstart: 2026-11-02\n", 2, 8, "a time of day and a time zone are required"),
        ("schema: mailsim/1\nstart: +1h\n", 2, 8, "start must be an absolute time"),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nsetings: {}\n", 3, 1, "did you mean 'settings'?"),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\n1: x\n", 3, 1, "unexpected key the number 1"),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nsettings: [1]\n", 3, 11, "settings: expected a mapping"),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nusers: {id: u1}\n", 3, 8, "users: expected a list of users"),
        (
            "schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nusers: [u1]\n",
            3,
            9,
            "users[0]: expected a mapping, got 'u1'",
        ),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nname: ''\n", 3, 7, "expected a non-empty string"),
        ("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nseed: 1.0\n", 3, 7, "expected a whole number"),
        (
            "schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nx: " + "[" * 100 + "]" * 100 + "\n",
            3,
            67,
            "nested more than",
        ),
    ],
)
def test_document_errors(text: str, line: int, col: int, fragment: str) -> None:
    err = error_of(text)
    assert (err.line, err.column) == (line, col), str(err)
    assert fragment in err.message, str(err)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"schema: mailsim/1\nname: caf\xe9\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert (e.value.line, e.value.column) == (2, 10)
    assert "not valid UTF-8" in e.value.message


def test_bom_and_crlf_accepted(tmp_path: Path) -> None:
    p = tmp_path / "win.yaml"
    p.write_bytes(b"\xef\xbb\xbfschema: mailsim/1\r\nstart: 2026-11-02T09:00:00Z\r\nseed: 3\r\n")
    s = load_scenario(p)
    assert s.seed == 3 and s.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_anchors_aliases_and_merge_keys() -> None:
    text = MINI + (
        "mailboxes:\n"
        "  - &base {domain: a.example, spf_policy: &pol {fail: junk}, quota: 2}\n"
        "  - {<<: *base, domain: b.example}\n"
        "  - {domain: c.example, spf_policy: *pol}\n"
    )
    _, b, c = load_scenario_text(text).mailboxes
    assert (b.domain, b.quota, b.spf_policy.fail) == ("b.example", 2, "junk")
    assert c.spf_policy.fail == "junk"


def test_yaml_core_schema_scalars() -> None:
    text = MINI + "seed: 1_000\ntags: [yes, no, on, '1', 2026-11-02]\n"
    s = load_scenario_text(text)
    assert s.seed == 1000
    assert s.tags == ("yes", "no", "on", "1", "2026-11-02")
    s = load_scenario_text(MINI + "seed: 0x10\n")
    assert s.seed == 16


def test_iso_times_and_offsets_in_start_zone() -> None:
    text = "schema: mailsim/1\nstart: 2026-11-02T10:00:00+01:00\nuntil: 2026-11-03T09:00:00Z\n"
    s = load_scenario_text(text)
    assert s.start.utcoffset() == timedelta(hours=1) and s.until == D
    assert s.iso(0) == "2026-11-02T09:00:00Z"


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    err = error_of(MINI + "tags: &a [*a]\n")
    assert "unknown alias *a" in err.message


def test_supported_schemas() -> None:
    assert SUPPORTED_SCHEMAS == ("mailsim/1",)


def test_reason_codes_cover_the_domain_table() -> None:
    """``expect: reason:`` accepts exactly the codes the domain table explains (both ways)."""
    missing = sorted(set(REASONS) - set(REASON_CODES))
    assert not missing, f"add these to vocabulary.REASON_CODES so expect: may name them: {missing}"
    assert sorted(REASONS) == sorted(REASON_CODES)
    # the contract codes of DESIGN §4 are all there, so an emptied or renamed table cannot pass
    assert {"no-invoice-email-contact", "batch-draft", "sender-not-configured", "sender-not-a-user",
            "sync-token-expired", "sync-password-changed", "sender-spf-not-authorized",
            "recipient-email-invalid", "recipient-contact-inactive", "retries-exhausted",
            "no-deliverable-recipient"} <= set(REASONS)


def test_error_message_names_the_section_path() -> None:
    err = error_of(mutated("{at: +2h, for: 30m, kind: outage", "{at: +2h, for: 30m, kind: 5"))
    assert re.match(r"s\.yaml:66:\d+: faults\[0\]\.kind: expected fault kind", str(err))


def test_docs_example_loads_and_matches_the_fixture() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)
    full = [b for b in blocks if b.startswith("schema: mailsim/1")]
    assert len(full) == 1
    from_doc = load_scenario_text(full[0], str(EXAMPLE))
    from_fixture = load_scenario(EXAMPLE)
    import dataclasses

    def no_locs(s: Scenario) -> Scenario:
        return dataclasses.replace(
            s,
            sha256="",
            source="",
            organization=dataclasses.replace(
                s.organization,
                regions=tuple(dataclasses.replace(r, loc="") for r in s.organization.regions),
                branches=tuple(dataclasses.replace(b, loc="") for b in s.organization.branches),
            ),
            users=tuple(dataclasses.replace(u, loc="") for u in s.users),
            contacts=tuple(dataclasses.replace(c, loc="") for c in s.contacts),
            properties=tuple(dataclasses.replace(p, loc="") for p in s.properties),
            batches=tuple(dataclasses.replace(b, loc="") for b in s.batches),
            mailboxes=tuple(dataclasses.replace(m, loc="") for m in s.mailboxes),
            timeline=tuple(dataclasses.replace(e, loc="") for e in s.timeline),
            faults=tuple(dataclasses.replace(f, loc="") for f in s.faults),
            expect=tuple(dataclasses.replace(x, loc="") for x in s.expect),
        )

    assert no_locs(from_doc) == no_locs(from_fixture)


def test_docs_error_examples_are_current() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    for old, new, line in [
        ("  queue_poll: 1m", "  queue_pol: 1m", "s.yaml:9:3: unknown key 'queue_pol'"),
        ("branch: b1\n", "branch: b3\n", "s.yaml:33:13: properties[0].branch: unknown branch 'b3'"),
        ("seed: 7", "seed: 7\nseed: 8", "s.yaml:6:1: duplicate key 'seed' (first at line 5)"),
    ]:
        err = str(error_of(mutated(old, new)))
        assert err.startswith(line)
        assert err in doc, err


# --- providers: at least one sending IP; close misspellings warn (issue 11 items 6 and 8) ----------


def test_provider_with_no_sending_ips_is_a_load_error() -> None:
    text = MINI + "providers:\n  microsoft365: {sending_ips: []}\n"
    err = assert_error(text, "[]}", "providers.microsoft365.sending_ips: needs at least one IP address")
    assert str(err) == "s.yaml:4:31: providers.microsoft365.sending_ips: needs at least one IP address"
    added = MINI + "providers:\n  zoho: {helo: mx.zoho.example}\n"
    err = assert_error(added, "zoho:", "providers.zoho: a provider needs at least one IP address")
    assert "sending_ips: [" in err.message


def test_provider_without_ips_stops_the_run_with_exit_2(tmp_path: Path) -> None:
    """Before the fix the run crashed (exit 3, the HELO name used as an IP); now the CLI exits 2."""
    from typer.testing import CliRunner

    from simulator.cli.main import app

    text = mutated("  microsoft365: {sending_ips: [203.0.113.20]", "  microsoft365: {sending_ips: []")
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    line, col = pos_of(text, "[]")
    expected = f"error: {path}:{line}:{col}: providers.microsoft365.sending_ips: needs at least one IP address"
    assert expected in result.output.replace("\n", "")


def test_misspelt_provider_warns_with_did_you_mean() -> None:
    text = MINI + (
        "providers:\n"
        "  zoho: {sending_ips: [192.0.2.7]}\n"
        "users:\n"
        "  - {id: u1, email: a@acme.example, sync: {provider: microsoft-365, synced: -1d}}\n"
        "  - {id: u2, email: b@acme.example, sync: {provider: zoho, synced: -1d}}\n"
        "  - {id: u3, email: c@acme.example, sync: {provider: exchange, synced: -1d}}\n"
        "timeline:\n"
        "  - {at: +1h, set_sync: {user: u3, provider: gogle}}\n"
    )
    s = load_scenario_text(text, "s.yaml")
    assert s.users[0].sync is not None and s.users[0].sync.provider == "microsoft-365"  # still accepted
    line, col = pos_of(text, "microsoft-365")
    tline, tcol = pos_of(text, "gogle")
    assert s.warnings == (
        f"s.yaml:{line}:{col}: users[0].sync.provider: unknown provider 'microsoft-365', taken as an unsupported "
        "provider (its user sends on the SMTP path); did you mean 'microsoft365'?",
        f"s.yaml:{tline}:{tcol}: timeline[0].set_sync.provider: unknown provider 'gogle', taken as an unsupported "
        "provider (its user sends on the SMTP path); did you mean 'google'?",
    )
    assert load_scenario(EXAMPLE).warnings == ()


def test_validate_and_run_print_the_warnings(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from simulator.cli.main import app

    text = mutated("provider: microsoft365, synced: -200d", "provider: Microsoft365, synced: -200d")
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    line, col = pos_of(text, "Microsoft365")
    warning = f"warning: {path}:{line}:{col}: users[0].sync.provider: unknown provider 'Microsoft365'"
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", str(path)])
    assert validated.exit_code == 0 and warning in validated.output.replace("\n", " ").replace("  ", " ")
    ran = runner.invoke(app, ["run", str(path), "--json"])
    assert warning in ran.output.replace("\n", " ")
