"""Domain behaviour the third mutation run of simulator/domain/ found unpinned (docs/testing.md).

Each test fails for at least one mutant that run left alive: a field of a result dropped or
blanked, an argument lost on the way to a helper, a default relied on. Exact values throughout:
whole states, whole decisions, whole trace records.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import email_validator
import pytest

from simulator.domain import contacts
from simulator.domain import events as ev
from simulator.domain.contacts import address_problem
from simulator.domain.display import visible
from simulator.domain.entities import (
    DAY,
    Batch,
    Branch,
    CompactInvoices,
    Configuration,
    Contact,
    Invoice,
    Organization,
    Platform,
    Property,
    PropertyContact,
    Provider,
    Region,
    Sync,
    User,
    format_time,
)
from simulator.domain.faults import Fault, smtp_fault_at
from simulator.domain.sender import SenderDecision, SenderWorld, decide_sender
from simulator.domain.sync import SyncState, initial_state
from simulator.domain.world import Applied, World, apply

LIFE = 90 * DAY


# -- sync: the initial state when the file's login is older than the sync ------------------------------


def test_an_initial_login_before_the_sync_is_kept_but_does_not_refresh() -> None:
    s = initial_state(Sync("google", synced=-10 * DAY, last_login=-20 * DAY, password_changed=-30 * DAY))
    assert s == SyncState("google", -10 * DAY, -10 * DAY, "sync", -20 * DAY, -30 * DAY, False)


# -- world.apply -----------------------------------------------------------------------------------------


def world(**kw: Any) -> World:
    base: dict[str, Any] = dict(
        start=datetime(2026, 11, 2, 9, tzinfo=UTC), token_lifetime=LIFE,
        organization=Organization(Configuration("cfg@acme.example")),
        branches={"b1": Branch("b1", "north")}, regions={"north": Region("north", "north@acme.example")},
        users={"u1": User("u1", "ar@acme.example"), "u2": User("u2", "smtp@acme.example")},
        sync={"u1": initial_state(Sync("google", -10 * DAY)), "u2": None},
        contacts={"c1": Contact("c1", "jane@client.example"), "c2": Contact("c2", "bob@client.example")},
        properties={"p1": Property("p1", "b1", (PropertyContact("c1", True),))}, batch_status={"B1": "Draft"})
    base.update(kw)
    return World(**base)


def test_expiry_of_a_user_without_a_sync_is_none() -> None:
    w = world()
    assert (w.expiry_of("u1"), w.expiry_of("u2"), w.expiry_of("nobody")) == (80 * DAY, None, None)


def test_an_event_type_without_a_rule_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"^no rule for timeline event TimelineEvent$"):
        apply(world(), ev.TimelineEvent(at=0))  # type: ignore[arg-type]


@pytest.mark.parametrize("flags", [
    dict(email_invoice=True), dict(primary=True), dict(billing=True),
    dict(email_invoice=True, primary=True, billing=True),
])
def test_a_new_property_link_takes_the_flags_given(flags: dict[str, bool]) -> None:
    done = apply(world(), ev.SetPropertyContact(
        at=DAY, property="p1", contact="c2", email_invoice=flags.get("email_invoice"), primary=flags.get("primary"),
        billing=flags.get("billing")))
    link = PropertyContact("c2", flags.get("email_invoice", False), flags.get("primary", False),
                           flags.get("billing", False))
    assert done == Applied(
        world(properties={"p1": Property("p1", "b1", (PropertyContact("c1", True), link))}),
        (("property.changed", {"property": "p1", "contact": "c2", "email_invoice": flags.get("email_invoice")}),),
        properties=("p1",))


def test_a_region_sender_is_set() -> None:
    done = apply(world(), ev.SetInvoicingEmailFrom(at=DAY, email="new@acme.example", region="north"))
    assert done == Applied(
        world(regions={"north": Region("north", "new@acme.example")}),
        (("settings.changed", {"where": "region:north", "invoicing_email_from": "new@acme.example"}),),
        sender_changed=True)


def test_a_dns_set_with_one_string_traces_it_as_a_string() -> None:
    done = apply(world(), ev.DnsSet(at=DAY, name="acme.example", type="TXT", value="v=spf1 -all"))
    assert done.records == (("dns.changed", {"name": "acme.example", "type": "TXT", "value": "v=spf1 -all",
                                             "op": "set"}),)


# -- the sender decision: notes carried to every end, a provider missing from the table --------------

PLATFORM = Platform(("198.51.100.10", "198.51.100.11"), "out.platform.example")
MULTI = ("multi-branch-uses-configuration",)


def sender_world(*, providers: dict[str, Provider] | None = None, **sync: SyncState | None) -> SenderWorld:
    return SenderWorld(
        organization=Organization(Configuration("cfg@acme.example")),
        branches={"b1": Branch("b1"), "b2": Branch("b2")}, regions={},
        users={"u1": User("u1", "cfg@acme.example")}, sync={"u1": None, **sync}, token_lifetime=LIFE,
        platform=PLATFORM, providers={} if providers is None else providers, smtp_path_requires_spf=True)


def fail_all(ip: str, sender: str, helo: str) -> tuple[str, str]:
    return ("fail", "no") if ip.endswith("10") else ("softfail", "maybe")


def test_a_multi_branch_batch_keeps_its_note_when_nobody_can_send() -> None:
    w = sender_world()
    no_user = SenderWorld(w.organization, w.branches, w.regions, {}, w.sync, LIFE, PLATFORM, {}, True)
    assert decide_sender(no_user, ("b1", "b2"), 0, fail_all) == SenderDecision(
        address="cfg@acme.example", source="configuration", user=None, path="blocked",
        helo="out.platform.example", reason="sender-not-a-user", notes=MULTI,
        evidence="cfg@acme.example (from configuration) is not the email of an active user")
    expired = initial_state(Sync("google", synced=-100 * DAY))
    assert decide_sender(sender_world(u1=expired), ("b1", "b2"), 0, fail_all) == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="blocked", provider="google",
        helo="out.platform.example", reason="sync-token-expired", notes=MULTI,
        evidence="token lifetime passed since the last refresh")
    assert decide_sender(sender_world(), ("b1", "b2"), 0, fail_all) == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="blocked",
        client_ips=PLATFORM.sending_ips, helo="out.platform.example", reason="sender-spf-not-authorized",
        notes=MULTI,
        evidence="SPF of acme.example for the platform IPs: 198.51.100.10: fail (no); 198.51.100.11: softfail (maybe)",
        spf=(("198.51.100.10", "fail", "no"), ("198.51.100.11", "softfail", "maybe")))


def test_a_sync_whose_provider_is_not_in_the_table_sends_from_no_ip_with_the_platform_helo() -> None:
    g = initial_state(Sync("google", synced=-10 * DAY))
    assert decide_sender(sender_world(u1=g), ("b1",), 0, fail_all) == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="sync", provider="google",
        client_ips=(), helo="out.platform.example", evidence="sync valid", valid_until=80 * DAY)


# -- addresses: the validator's options are the platform's, not the library's global defaults -----------


@pytest.fixture
def permissive_library(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """email-validator with every option a caller leaves unset switched on, and cold caches."""
    for name in ("ALLOW_QUOTED_LOCAL", "ALLOW_DOMAIN_LITERAL", "ALLOW_DISPLAY_NAME"):
        monkeypatch.setattr(email_validator, name, True)
    contacts._checked.cache_clear()
    contacts._domain_checked.cache_clear()
    yield
    contacts._checked.cache_clear()
    contacts._domain_checked.cache_clear()


@pytest.mark.usefixtures("permissive_library")
@pytest.mark.parametrize(("raw", "problem"), [
    ('"jane doe"@client.example', "Quoting the part before the @-sign is not allowed here."),
    ("Jane <jane@client.example>",
     "A display name and angle brackets around the email address are not permitted here."),
    ("jane@[192.0.2.1]", "A bracketed IP address after the @-sign is not allowed here."),
])
def test_the_platform_refuses_what_a_permissive_library_default_would_allow(raw: str, problem: str) -> None:
    assert address_problem(raw) == problem
    assert email_validator.validate_email(raw, check_deliverability=False) is not None  # the library would allow it


# -- batches and times -------------------------------------------------------------------------------


def test_index_of_an_invoice_not_in_an_explicit_batch_is_none() -> None:
    b = Batch("B1", invoices=(Invoice("I-1", "p1"), Invoice("I-2", "p1")))
    assert [b.index_of(x) for x in ("I-1", "I-2", "I-3", "")] == [0, 1, None, None]


def test_compact_ids_of_a_batch_whose_id_holds_a_dash() -> None:
    b = Batch("B-7", compact=CompactInvoices(3, ("p1",)))
    assert [b.index_of(x) for x in ("B-7-1", "B-7-3", "B-7-4", "B-1", "B-7")] == [0, 2, None, None, None]


@pytest.fixture
def local_zone_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_new_york")
def test_times_are_utc_whatever_the_machine_zone() -> None:
    assert time.localtime(0).tm_hour == 19  # the zone took effect: 1970-01-01 00:00Z is 19:00 the day before
    start = datetime(2026, 11, 2, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(start, 0) == "2026-11-02T14:00:00Z"
    assert format_time(datetime(2026, 7, 1, tzinfo=UTC), 0) == "2026-07-01T00:00:00Z"


# -- fault draws reach smtp_fault_at's caller with every part of the key ------------------------------


def reference_draw(seed: int, index: int, message: str, rcpt: str, attempt: int, stage: str) -> float:
    h = hashlib.blake2b(f"{seed}|{index}|{message}|{rcpt}|{attempt}|{stage}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2.0**64


def test_a_probabilistic_fault_fires_by_the_draw_of_its_whole_key() -> None:
    f = Fault(0, "tempfail", probability=0.5)
    keys = [(seed, m, r, a) for seed in (1, 2) for m in ("<A@x>", "<B@x>") for r in ("j@c.example", "b@c.example")
            for a in (1, 2)]
    got = [smtp_fault_at((f,), now=0, seed=s, stage="rcpt", domain="c.example", message_id=m, rcpt=r, attempt=a)
           is f for s, m, r, a in keys]
    want = [reference_draw(s, 0, m, r, a, "rcpt") < 0.5 for s, m, r, a in keys]
    assert got == want
    assert 4 < sum(want) < 12  # both outcomes occur, so a lost key part changes the list


# -- how an address reads on a screen (domain/display.py) -----------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("jane@client.example", "jane@client.example"),
    ("jane@client.example ", "jane@client.example\u2420"),
    ("a b", "a\u2420b"),
    ("jane\u00a0@x", "jane\\xa0@x"),
    ("tab\there", "tab\\x09here"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("private\U000f0000use", "private\\U000f0000use"),
    ("line\u2028sep", "line\\u2028sep"),
    ("José@Bücher.example", "José@Bücher.example"),
    ("back\\slash", "back\\slash"),
    ("", ""),
])
def test_visible_shows_every_invisible_character(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_the_subject_of_each_event_kind() -> None:
    assert ev.TimelineEvent(at=0).subject() == ""
    assert ev.SetInvoicingEmailFrom(at=0, email=None, branch="b1").subject() == "b1"
    assert ev.SetInvoicingEmailFrom(at=0, email=None, region="north").subject() == ""
    assert ev.SetTokenLifetime(at=0, lifetime=DAY).subject() == ""
