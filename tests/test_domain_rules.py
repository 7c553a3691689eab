"""Domain rules pinned at their boundaries, and what mutation testing of simulator/domain/ found unpinned.

Each test here fails for a mutant that ``make mutate`` once left alive (docs/testing.md): a
comparison moved by one, a branch dropped, a default changed. Exact values throughout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import run
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain import contacts, faults
from simulator.domain import events as ev
from simulator.domain.contacts import address_problem, domain_of, envelope_address
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
from simulator.domain.faults import Fault, shareable, stage_of, targets_domain
from simulator.domain.recipients import RecipientPlan, plan_recipients
from simulator.domain.sender import (
    SenderAddress,
    SenderDecision,
    SenderWorld,
    SendingPath,
    decide_sender,
    provider_helo,
    resolve_sender_address,
    sending_path,
)
from simulator.domain.sync import (
    SyncState,
    SyncVerdict,
    change_password,
    expires_at,
    initial_state,
    login,
    resync,
    verdict,
)
from simulator.domain.world import Applied, DnsChange, World, apply

LIFE = 90 * DAY


# -- the token's expiry instant (DESIGN §8: alive on [refresh, refresh + lifetime)) ------------------


@pytest.mark.parametrize(("offset", "refreshed"), [(-1, True), (0, False), (1, False)])
def test_a_login_at_the_expiry_instant_is_too_late(offset: int, refreshed: bool) -> None:
    state = initial_state(Sync("google", synced=0))
    exp = expires_at(state, LIFE)
    assert exp == 90 * DAY
    after, ok = login(state, exp + offset, LIFE)
    assert ok is refreshed
    assert after.last_login == exp + offset
    assert expires_at(after, LIFE) == (exp + offset + LIFE if refreshed else exp)
    assert after.refreshed_by == ("login" if refreshed else "sync")
    assert verdict(after, exp, LIFE).reason == (None if refreshed else "sync-token-expired")


@pytest.mark.parametrize(("login_at", "status", "reason"), [
    ("+23h59m59s", "Sent", None),  # one second before the token dies: the login refreshes it
    ("+1d", "In Queue", "sync-token-expired"),  # at the instant: dead, the login is too late
    ("+1d1s", "In Queue", "sync-token-expired"),
])
def test_the_engine_applies_the_expiry_instant(login_at: str, status: str, reason: str | None) -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -89d}}"  # dies at +1d
    r = run(users=users, timeline=f"  - {{at: {login_at}, login: u1}}\n  - {{at: +2d, complete_batch: B1}}",
            extra="until: +3d")
    v = r.invoice("INV-1")
    assert v is not None and (v.email_status, v.reason) == (status, reason)


# -- sync transitions, whole states (mutants dropped or blanked single fields) --------------------


def test_sync_transitions_keep_every_field() -> None:
    s0 = initial_state(Sync("google", synced=-10 * DAY, last_login=-3 * DAY, password_changed=-20 * DAY))
    assert s0 == SyncState("google", -10 * DAY, -3 * DAY, "login", -3 * DAY, -20 * DAY, False)
    s1, ok = login(s0, 5 * DAY, LIFE)
    assert ok and s1 == SyncState("google", -10 * DAY, 5 * DAY, "login", 5 * DAY, -20 * DAY, False)
    s2 = change_password(s1, 6 * DAY)
    assert s2 == SyncState("google", -10 * DAY, 5 * DAY, "login", 5 * DAY, 6 * DAY, True)
    s3 = resync(s2, None, 7 * DAY)  # keeps the provider, the last login and when the password changed
    assert s3 == SyncState("google", 7 * DAY, 7 * DAY, "sync", 5 * DAY, 6 * DAY, False)
    s4 = resync(s3, "microsoft365", 8 * DAY)
    assert s4 == SyncState("microsoft365", 8 * DAY, 8 * DAY, "sync", 5 * DAY, 6 * DAY, False)
    assert resync(None, "google", 9 * DAY) == SyncState("google", 9 * DAY, 9 * DAY, "sync", None, None, False)
    with pytest.raises(ValueError, match=r"^a re-sync needs an existing sync or a provider$"):
        resync(None, None, 0)


_times = st.integers(-400 * DAY, 400 * DAY)
_states = st.builds(SyncState, st.sampled_from(["google", "microsoft365", "zoho"]), _times, _times,
                    st.sampled_from(["sync", "login"]), st.none() | _times, st.none() | _times, st.booleans())


@settings(max_examples=300)
@given(_states, _times)
def test_transitions_spelled_out_are_the_replace_they_stand_for(state: SyncState, t: int) -> None:
    """login/change_password and the world's sync change name every field (no ``dataclasses.replace``):
    a field added later and forgotten there would silently go back to its default."""
    new, refreshed = login(state, t, LIFE)
    if t < expires_at(state, LIFE):
        assert refreshed and new == replace(state, refreshed=max(state.refreshed, t), refreshed_by="login",
                                            last_login=t)
    else:
        assert not refreshed and new == replace(state, last_login=t)
    assert change_password(state, t) == replace(state, password_changed=t, password_pending=True)
    done = apply(W, ev.Login(at=t, user="u1"))
    after, _ = login(U1, t, LIFE)
    assert done.world == replace(W, sync={**W.sync, "u1": after})
    assert list(done.world.sync) == list(W.sync)  # the file's order, which reaches the trace


# -- world.apply: each rule's whole result ---------------------------------------------------------


def world(**kw: Any) -> World:
    base: dict[str, Any] = dict(
        start=datetime(2026, 11, 2, 9, tzinfo=UTC),
        token_lifetime=LIFE,
        organization=Organization(Configuration("cfg@acme.example")),
        branches={"b1": Branch("b1", "north"), "b2": Branch("b2", "north", "b2@acme.example")},
        regions={"north": Region("north", "north@acme.example")},
        users={"u1": User("u1", "ar@acme.example"), "u2": User("u2", "smtp@acme.example")},
        sync={"u1": initial_state(Sync("microsoft365", -10 * DAY)), "u2": None},
        contacts={"c1": Contact("c1", "jane@client.example"), "c2": Contact("c2", "bob@client.example", False)},
        properties={"p1": Property("p1", "b1", (PropertyContact("c1", True, True, False),)),
                    "p2": Property("p2", "b2", (PropertyContact("c2", False),))},
        batch_status={"B1": "Draft"},
    )
    base.update(kw)
    return World(**base)


W = world()
U1 = W.sync["u1"]
assert U1 is not None


def test_login_refreshes_traces_and_reschedules() -> None:
    new = SyncState("microsoft365", -10 * DAY, DAY, "login", DAY, None, False)
    assert apply(W, ev.Login(at=DAY, user="u1", loc="s.yaml:9:5")) == Applied(
        world(sync={"u1": new, "u2": None}),
        (("user.login", {"user": "u1", "kind": "login", "line": "s.yaml:9:5", "refreshed": True,
                         "expires": "2027-02-01T09:00:00Z"}),),
        sender_changed=True, expiry_users=("u1",), refreshed=True,
    )


def test_login_without_a_sync_changes_nothing_but_the_trace() -> None:
    assert apply(W, ev.Login(at=DAY, user="u2", loc="s.yaml:9:5")) == Applied(
        W, (("user.login", {"user": "u2", "kind": "login", "line": "s.yaml:9:5"}),),
        sender_changed=True, refreshed=False,
    )


def test_resync_and_set_sync() -> None:
    assert apply(W, ev.Resync(at=DAY, user="u1")) == Applied(
        world(sync={"u1": SyncState("microsoft365", DAY, DAY, "sync", None, None, False), "u2": None}),
        (("sync.resynced", {"user": "u1", "provider": "microsoft365"}),), sender_changed=True, expiry_users=("u1",))
    assert apply(W, ev.SetSync(at=DAY, user="u2", provider="google")) == Applied(
        world(sync={"u1": U1, "u2": SyncState("google", DAY, DAY, "sync", None, None, False)}),
        (("sync.set", {"user": "u2", "provider": "google"}),), sender_changed=True, expiry_users=("u2",))
    assert apply(W, ev.Resync(at=DAY, user="u2", loc="s.yaml:3:4")) == Applied(
        W, (("event.refused", {"kind": "resync", "user": "u2", "reason": "no-sync-to-resync", "line": "s.yaml:3:4"}),),
        refused="no-sync-to-resync")


def test_password_change_remove_sync_and_user_activity() -> None:
    assert apply(W, ev.ChangePassword(at=DAY, user="u1")) == Applied(
        world(sync={"u1": replace(U1, password_changed=DAY, password_pending=True), "u2": None}),
        (("user.password_changed", {"user": "u1"}),), sender_changed=True)
    assert apply(W, ev.ChangePassword(at=DAY, user="u2")) == Applied(
        W, (("user.password_changed", {"user": "u2"}),), sender_changed=True)
    assert apply(W, ev.RemoveSync(at=DAY, user="u1")) == Applied(
        world(sync={"u1": None, "u2": None}), (("sync.removed", {"user": "u1"}),), sender_changed=True)
    off = apply(W, ev.DeactivateUser(at=DAY, user="u1"))
    assert off == Applied(world(users={"u1": User("u1", "ar@acme.example", False), "u2": W.users["u2"]}),
                          (("user.deactivated", {"user": "u1"}),), sender_changed=True)
    assert apply(off.world, ev.ActivateUser(at=DAY, user="u1")) == Applied(
        W, (("user.activated", {"user": "u1"}),), sender_changed=True)


def test_contact_edits() -> None:
    assert apply(W, ev.SetContactEmail(at=DAY, contact="c1", email="Jane@Client.example ")) == Applied(
        world(contacts={"c1": Contact("c1", "Jane@Client.example "), "c2": W.contacts["c2"]}),
        (("contact.changed", {"contact": "c1", "email": "Jane@Client.example "}),), properties=("p1",))
    # the inactive c2 holds bob@: still a duplicate (case and spaces ignored)
    assert apply(W, ev.SetContactEmail(at=DAY, contact="c1", email=" BOB@client.example")) == Applied(
        W, (("contact.refused", {"contact": "c1", "email": " BOB@client.example", "reason": "duplicate-email-rejected",
                                 "existing_contact": "c2", "existing_active": False}),),
        refused="duplicate-email-rejected")
    assert apply(W, ev.SetContactActive(at=DAY, contact="c2", active=True)) == Applied(
        world(contacts={"c1": W.contacts["c1"], "c2": Contact("c2", "bob@client.example", True)}),
        (("contact.changed", {"contact": "c2", "active": True}),), properties=("p2",))


@pytest.mark.parametrize(("change", "link"), [
    (dict(email_invoice=False), PropertyContact("c1", False, True, False)),
    (dict(primary=False), PropertyContact("c1", True, False, False)),
    (dict(billing=True), PropertyContact("c1", True, True, True)),
    (dict(), PropertyContact("c1", True, True, False)),
])
def test_set_property_contact_changes_only_the_flags_given(change: dict[str, bool], link: PropertyContact) -> None:
    done = apply(W, ev.SetPropertyContact(at=DAY, property="p1", contact="c1", **change))
    assert done == Applied(
        world(properties={"p1": Property("p1", "b1", (link,)), "p2": W.properties["p2"]}),
        (("property.changed", {"property": "p1", "contact": "c1", "email_invoice": change.get("email_invoice")}),),
        properties=("p1",))


def test_set_property_contact_adds_a_link() -> None:
    done = apply(W, ev.SetPropertyContact(at=DAY, property="p1", contact="c2", billing=True))
    links = (PropertyContact("c1", True, True, False), PropertyContact("c2", False, False, True))
    assert done.world.properties["p1"] == Property("p1", "b1", links)
    assert list(done.world.properties) == ["p1", "p2"]


def test_set_invoicing_email_from_at_each_level() -> None:
    def settings(where: str, email: str | None) -> tuple[tuple[str, dict[str, Any]], ...]:
        return (("settings.changed", {"where": where, "invoicing_email_from": email}),)

    assert apply(W, ev.SetInvoicingEmailFrom(at=DAY, email="x@acme.example", branch="b1")) == Applied(
        world(branches={"b1": Branch("b1", "north", "x@acme.example"), "b2": W.branches["b2"]}),
        settings("branch:b1", "x@acme.example"), sender_changed=True)
    assert apply(W, ev.SetInvoicingEmailFrom(at=DAY, email=None, region="north")) == Applied(
        world(regions={"north": Region("north", None)}), settings("region:north", None), sender_changed=True)
    assert apply(W, ev.SetInvoicingEmailFrom(at=DAY, email="y@acme.example", configuration=True)) == Applied(
        world(organization=Organization(Configuration("y@acme.example"))), settings("configuration", "y@acme.example"),
        sender_changed=True)


def test_dns_events_and_batch_completion() -> None:
    assert apply(W, ev.DnsSet(at=DAY, name="acme.example", type="TXT", value=("v=spf1", " -all"))) == Applied(
        W, (("dns.changed", {"name": "acme.example", "type": "TXT", "value": ["v=spf1", " -all"], "op": "set"}),),
        dns=DnsChange("acme.example", "TXT", ("v=spf1", " -all")))
    assert apply(W, ev.DnsDelete(at=DAY, name="acme.example", type="MX")) == Applied(
        W, (("dns.changed", {"name": "acme.example", "type": "MX", "value": None, "op": "delete"}),),
        dns=DnsChange("acme.example", "MX", None))
    done = apply(W, ev.CompleteBatch(at=DAY, batch="B1"))
    assert done == Applied(world(batch_status={"B1": "Sent"}), completes="B1")
    assert apply(done.world, ev.CompleteBatch(at=DAY, batch="B1")) == Applied(
        done.world, (("batch.already_completed", {"batch": "B1"}),))


# -- addresses (guide Step 4): each email-validator option the product relies on ---------------------
# The validators cache by address and by domain; a fresh cache per test makes every case reach the
# validator itself (a warm cache once hid mutants of its options from mutation testing).


@pytest.fixture
def fresh_address_caches() -> None:
    contacts._checked.cache_clear()
    contacts._domain_checked.cache_clear()


@pytest.mark.usefixtures("fresh_address_caches")
@pytest.mark.parametrize(("raw", "problem"), [
    ('"jane doe"@client.example', "Quoting the part before the @-sign is not allowed here."),
    ("Jane <jane@client.example>",
     "A display name and angle brackets around the email address are not permitted here."),
    ("jane@[192.0.2.1]", "A bracketed IP address after the @-sign is not allowed here."),
    ("josé@client.example", "Internationalized characters before the @-sign are not supported: 'é'."),
    ("jane@client.example.", "An email address cannot end with a period."),
    ("", "the address is empty"),
])
def test_an_address_the_platform_cannot_send_to(raw: str, problem: str) -> None:
    assert address_problem(raw) == problem
    with pytest.raises(ValueError, match=r"^not a valid address: "):
        envelope_address(raw)


@pytest.mark.usefixtures("fresh_address_caches")
@pytest.mark.parametrize(("raw", "envelope"), [
    ("jane@client.example", "jane@client.example"),  # a reserved .example domain is fine: no DNS checks
    ("O'Neil@Client.Example", "o'neil@client.example"),  # not the plain form: the full validator
    ("Jane@Bücher.example", "jane@xn--bcher-kva.example"),  # routed by its A-label (§8)
    ("Postmaster@Client.example", "postmaster@client.example"),
    ("jane@intranet", "jane@intranet"),  # a dotless domain is syntax, not deliverability: accepted
])
def test_an_address_the_platform_sends_to(raw: str, envelope: str) -> None:
    assert address_problem(raw) is None
    assert envelope_address(raw) == envelope


def test_domain_of_takes_the_part_after_the_last_at() -> None:
    assert domain_of("Jane@Client.EXAMPLE") == "client.example"
    assert domain_of('"a@b"@c.example') == "c.example"


# -- recipients: whole plans --------------------------------------------------------------------------


def test_recipient_plans_in_full() -> None:
    cs = {"a": Contact("a", "Ann@Oak.example"), "b": Contact("b", "b@oak.example "),
          "c": Contact("c", "c@oak.example", active=False), "d": Contact("d", "d@elm.example")}
    prop = Property("p1", "b1", (PropertyContact("a", True), PropertyContact("a", True), PropertyContact("b", True),
                                 PropertyContact("c", True), PropertyContact("d", primary=True)))
    problem = address_problem("b@oak.example ")
    assert problem is not None and "SPACE" in problem
    assert plan_recipients(prop, cs, ("email_invoice", "primary")) == (
        RecipientPlan("a", "Ann@Oak.example", None, "", "ann@oak.example", "oak.example"),
        RecipientPlan("b", "b@oak.example ", "recipient-email-invalid", problem),
        RecipientPlan("c", "c@oak.example", "recipient-contact-inactive"),
        RecipientPlan("d", "d@elm.example", None, "", "d@elm.example", "elm.example"),
    )
    assert [p.contact for p in plan_recipients(prop, cs, ("primary",))] == ["d"]
    assert [p.contact for p in plan_recipients(prop, cs, ("billing",))] == []


# -- fault draws: the keyed hash itself (DESIGN §8), not only its determinism ----------------------------


def reference_draw(seed: int, index: int, message: str, rcpt: str, attempt: int, stage: str) -> float:
    h = hashlib.blake2b(f"{seed}|{index}|{message}|{rcpt}|{attempt}|{stage}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2.0**64


def test_fault_draws_are_the_keyed_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_PREFIX", {})  # a cold prefix table, then a warm one
    cases = [(7, 0, "<INV-1@mailsim.invalid>", "jane@client.example", 1, "rcpt"), (7, 1, "m", "r", 2, "data"),
             (2**64 - 1, 999, "<B-000001@mailsim.invalid>", "bob@client.example", 12, "connect")]
    for _ in range(2):
        assert [faults.draw(*c) for c in cases] == [reference_draw(*c) for c in cases]
    assert faults.draw(*cases[0]) == 0.8803430204301312
    for seed in range(5000):  # past the table's size: it is cleared, the values stay the same
        faults.draw_head(seed, 0)
    assert len(faults._PREFIX) < 5000
    assert [faults.draw(*c) for c in cases] == [reference_draw(*c) for c in cases]


# -- the sender decision (guide Steps 2-3): whole decisions, one per way it can end ----------------------

PLATFORM = Platform(("198.51.100.10", "198.51.100.11"), "out.platform.example")
PROVIDERS = {"microsoft365": Provider("microsoft365", ("203.0.113.20",), "spf.protection.outlook.com"),
             "google": Provider("google", ("203.0.113.30",), "_spf.google.com", helo="mx.google.example")}


def sender_world(cfg: str | None = "Cfg@Acme.example ", *, spf_required: bool = True, **sync: SyncState | None
                 ) -> SenderWorld:
    users = {"u1": User("u1", "cfg@acme.example"), "u2": User("u2", "north@acme.example"),
             "u3": User("u3", "b2@acme.example", active=False)}
    return SenderWorld(
        organization=Organization(Configuration(cfg)),
        branches={"b1": Branch("b1", "north"), "b2": Branch("b2", "north", "b2@acme.example"), "b3": Branch("b3")},
        regions={"north": Region("north", "north@acme.example")},
        users=users, sync={"u1": None, "u2": None, "u3": None, **sync}, token_lifetime=LIFE, platform=PLATFORM,
        providers=PROVIDERS, smtp_path_requires_spf=spf_required)


def spf_of(results: dict[str, str]) -> Callable[[str, str, str], tuple[str, str]]:
    def check(ip: str, sender: str, helo: str) -> tuple[str, str]:
        assert helo == "out.platform.example"
        return results[ip], f"{ip} for {sender}"

    return check


PASS = spf_of({"198.51.100.10": "pass", "198.51.100.11": "pass"})


def test_sender_not_configured() -> None:
    w = sender_world(None)
    assert decide_sender(w, ("b3",), 0, PASS) == SenderDecision(
        address=None, source="configuration", user=None, path="blocked", helo="out.platform.example",
        reason="sender-not-configured", evidence="no Invoicing Email From on b3, its region, or Configuration")
    assert decide_sender(w, (), 0, PASS).evidence == "no Invoicing Email From on branch, its region, or Configuration"
    assert decide_sender(w, ("b1", "b2"), 0, PASS) == SenderDecision(
        address=None, source="configuration", user=None, path="blocked", helo="out.platform.example",
        reason="sender-not-configured", notes=("multi-branch-uses-configuration",),
        evidence="the batch spans branches b1 / b2: a multi-branch batch is sent from Configuration's Invoice"
                 " Email From alone, and it is not set")
    assert decide_sender(sender_world(""), ("b3",), 0, PASS).reason == "sender-not-configured"  # empty = unset


def test_sender_not_a_user() -> None:
    assert decide_sender(sender_world(), ("b2",), 0, PASS) == SenderDecision(  # b2's user is inactive
        address="b2@acme.example", source="branch:b2", user=None, path="blocked", helo="out.platform.example",
        reason="sender-not-a-user", evidence="b2@acme.example (from branch:b2) is not the email of an active user")


def test_sender_resolution_order() -> None:
    world = sender_world()
    assert resolve_sender_address(("b2",), world.organization, world.branches, world.regions) == SenderAddress(
        "b2@acme.example", "branch:b2")
    assert resolve_sender_address(("b1",), world.organization, world.branches, world.regions) == SenderAddress(
        "north@acme.example", "region:north")
    assert resolve_sender_address(("b3",), world.organization, world.branches, world.regions) == SenderAddress(
        "Cfg@Acme.example ", "configuration")
    assert resolve_sender_address(("nope",), world.organization, world.branches, world.regions) == SenderAddress(
        "Cfg@Acme.example ", "configuration")
    assert resolve_sender_address(("b2", "b2"), world.organization, world.branches, world.regions) == SenderAddress(
        "Cfg@Acme.example ", "configuration", ("multi-branch-uses-configuration",))


def test_sender_on_the_smtp_path_with_and_without_spf() -> None:
    ok = decide_sender(sender_world(), ("b3",), 0, PASS)
    assert ok == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="smtp",
        client_ips=PLATFORM.sending_ips, helo="out.platform.example", evidence="no email sync: SMTP path",
        spf=(("198.51.100.10", "pass", "198.51.100.10 for cfg@acme.example"),
             ("198.51.100.11", "pass", "198.51.100.11 for cfg@acme.example")))
    half = spf_of({"198.51.100.10": "pass", "198.51.100.11": "softfail"})
    assert decide_sender(sender_world(), ("b3",), 0, half) == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="blocked",
        client_ips=PLATFORM.sending_ips, helo="out.platform.example", reason="sender-spf-not-authorized",
        evidence="SPF of acme.example for the platform IPs: 198.51.100.11: softfail (198.51.100.11 for"
                 " cfg@acme.example)",
        spf=(("198.51.100.10", "pass", "198.51.100.10 for cfg@acme.example"),
             ("198.51.100.11", "softfail", "198.51.100.11 for cfg@acme.example")))

    def never(ip: str, sender: str, helo: str) -> tuple[str, str]:
        raise AssertionError("SPF is not evaluated when the setting is off")

    assert decide_sender(sender_world(spf_required=False), ("b3",), 0, never) == SenderDecision(
        address="cfg@acme.example", source="configuration", user="u1", path="smtp",
        client_ips=PLATFORM.sending_ips, helo="out.platform.example", evidence="no email sync: SMTP path")


def test_sender_on_a_sync() -> None:
    ms = initial_state(Sync("microsoft365", synced=-10 * DAY))
    assert decide_sender(sender_world(u2=ms), ("b1",), 0, PASS) == SenderDecision(
        address="north@acme.example", source="region:north", user="u2", path="sync", provider="microsoft365",
        client_ips=("203.0.113.20",), helo="mail.spf.protection.outlook.com", evidence="sync valid",
        valid_until=80 * DAY)
    g = initial_state(Sync("google", synced=-10 * DAY))
    assert decide_sender(sender_world(u2=g), ("b1",), DAY, PASS) == SenderDecision(
        address="north@acme.example", source="region:north", user="u2", path="sync", provider="google",
        client_ips=("203.0.113.30",), helo="mx.google.example", evidence="sync valid", valid_until=80 * DAY)
    assert provider_helo(None, "out.platform.example") == "out.platform.example"
    assert provider_helo(Provider("x", ("192.0.2.1",)), "out.platform.example") == "out.platform.example"


def test_sender_blocked_by_its_sync_and_an_unsupported_provider() -> None:
    expired = initial_state(Sync("google", synced=-100 * DAY))
    assert decide_sender(sender_world(u2=expired), ("b1",), 0, PASS) == SenderDecision(
        address="north@acme.example", source="region:north", user="u2", path="blocked", provider="google",
        helo="out.platform.example", reason="sync-token-expired",
        evidence="token lifetime passed since the last refresh")
    changed = change_password(initial_state(Sync("google", synced=-10 * DAY)), -DAY)
    assert decide_sender(sender_world(u2=changed), ("b1",), 0, PASS).reason == "sync-password-changed"
    zoho = initial_state(Sync("zoho", synced=-10 * DAY))
    assert decide_sender(sender_world(u2=zoho), ("b1",), 0, PASS) == SenderDecision(
        address="north@acme.example", source="region:north", user="u2", path="smtp",
        client_ips=PLATFORM.sending_ips, helo="out.platform.example", notes=("sync-provider-unsupported",),
        evidence="provider 'zoho' is not Microsoft 365 or Google: SMTP path",
        spf=(("198.51.100.10", "pass", "198.51.100.10 for north@acme.example"),
             ("198.51.100.11", "pass", "198.51.100.11 for north@acme.example")))
    assert sending_path(initial_state(Sync("google", synced=0)), 0, LIFE) == SendingPath(
        "sync", None, (), "sync valid", 90 * DAY)


# -- faults: windows, targets, stages, the first that fires ------------------------------------------


def test_fault_windows_are_half_open() -> None:
    f = Fault(0, "outage", at=100, for_=50)
    assert [f.active_at(t) for t in (99, 100, 149, 150)] == [False, True, True, False]
    assert f.bounds() == (100, 150)
    assert Fault(0, "outage", at=100).bounds() == (100,) and Fault(0, "outage", at=100).active_at(10**9)
    assert Fault(0, "outage", for_=50).bounds() == (0, 50)
    assert [Fault(0, "outage", for_=50).active_at(t) for t in (0, 49, 50)] == [True, True, False]
    assert Fault(0, "outage").bounds() == () and Fault(0, "outage").active_at(0)


def test_fault_targets_a_domain_and_its_subdomains() -> None:
    f = Fault(0, "outage", target="Client.Example.")
    assert [targets_domain(f, d) for d in ("client.example", "MX.client.example", "otherclient.example",
                                           "example", None)] == [True, True, False, False, False]
    assert targets_domain(Fault(0, "outage"), None)


def test_fault_stages_and_sharing() -> None:
    assert [stage_of(Fault(0, k)) for k in ("outage", "tempfail", "permfail", "disconnect", "slow")] == [
        "connect", "rcpt", "rcpt", "data", "data"]
    assert stage_of(Fault(0, "tempfail", stage="mail")) == "mail"
    assert stage_of(Fault(0, "dns_timeout")) == "connect"
    assert shareable([Fault(0, "outage"), Fault(1, "tempfail")])
    assert not shareable([Fault(0, "outage"), Fault(1, "tempfail", probability=0.99)])
    with pytest.raises(KeyError, match=r"fault kind 'flood' has no entry in FAULT_SPECS"):
        faults.spec_of("flood")


def test_the_first_fault_that_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_PREFIX", {})
    key = dict(seed=3, stage="rcpt", message_id="<INV-1@mailsim.invalid>", rcpt="jane@client.example", attempt=1)
    p0 = reference_draw(3, 0, "<INV-1@mailsim.invalid>", "jane@client.example", 1, "rcpt")
    p1 = reference_draw(3, 1, "<INV-1@mailsim.invalid>", "jane@client.example", 1, "rcpt")
    below, above = Fault(0, "tempfail", probability=p0 + 1e-9), Fault(0, "tempfail", probability=p0)
    sure = Fault(1, "permfail")
    assert faults.first_firing([below, sure], **key) is below  # draw < probability fires
    assert faults.first_firing([above, sure], **key) is sure  # draw == probability does not
    assert faults.first_firing([above], **key) is None
    assert faults.first_firing([Fault(1, "permfail", probability=p1)], **key) is None


# -- batches, times, events ---------------------------------------------------------------------------


def test_compact_batches_number_and_assign_round_robin() -> None:
    b = Batch("B2", compact=CompactInvoices(10, ("p1", "p2", "p3")))
    assert list(b.iter_invoices()) == [(f"B2-{i:02d}", ("p1", "p2", "p3")[(i - 1) % 3]) for i in range(1, 11)]
    assert [b.invoice_id(i) for i in (0, 9)] == ["B2-01", "B2-10"]
    assert [b.count_for(p) for p in ("p1", "p2", "p3", "p4")] == [4, 3, 3, 0]
    assert [b.index_of(x) for x in ("B2-01", "B2-10", "B2-11", "B1-01", "B2-x")] == [0, 9, None, None, None]
    e = Batch("B1", invoices=(Invoice("I-1", "p1"), Invoice("I-2", "p2"), Invoice("I-3", "p1")))
    assert list(e.iter_invoices()) == [("I-1", "p1"), ("I-2", "p2"), ("I-3", "p1")]
    assert e.invoice_id(1) == "I-2" and e.count_for("p1") == 2 and e.index_of("I-3") == 2


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 60), st.lists(st.sampled_from(["p1", "p2", "p3", "p4"]), min_size=1, max_size=7),
       st.lists(st.sampled_from(["p1", "p2", "p3"]), max_size=12))
def test_a_propertys_invoices_are_the_batch_walk_filtered(count: int, props: list[str], explicit: list[str]) -> None:
    """``invoices_of`` (what a traced Draft-status change emits per batch) lists exactly, in order, what
    walking every invoice and keeping the property's would: a property twice in the round-robin too."""
    compact = Batch("B7", compact=CompactInvoices(count, tuple(props)))
    listed = Batch("B8", invoices=tuple(Invoice(f"I-{i}", p) for i, p in enumerate(explicit)))
    for b in (compact, listed):
        for p in ("p1", "p2", "p3", "p4", "p5"):
            assert list(b.invoices_of(p)) == [inv for inv, q in b.iter_invoices() if q == p]


def test_times_are_written_in_utc_with_a_z() -> None:
    start = datetime(2026, 11, 2, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(start, 0) == "2026-11-02T14:00:00Z"
    assert format_time(start, -95 * DAY + 61) == "2026-07-30T14:01:01Z"


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1004, 1, 1), max_value=datetime(9990, 1, 1),  # ± 10**8 s stays in 1000-9999
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=13,
                                                                                                   minutes=45))])),
       st.integers(-10**8, 10**8))
def test_times_are_formatted_as_strftime_formats_them(start: datetime, t: int) -> None:
    """format_time writes the fields itself (strftime per call was a small run's fixed cost): the same text."""
    want = (start + timedelta(seconds=t)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert format_time(start, t) == want


def test_a_year_before_1000_keeps_four_digits() -> None:
    """ISO 8601 writes four year digits; glibc's ``strftime("%Y")`` does not pad (``999``), so the
    property above stays within years 1000–9999 and this one pins the padding."""
    assert format_time(datetime(1000, 1, 2, tzinfo=UTC), -86_401) == "0999-12-31T23:59:59Z"


def test_make_event_builds_each_kind_with_its_arguments() -> None:
    e = ev.make_event("set_contact_email", at=60, index=3, loc="s.yaml:9:5", note="a caption",
                      contact="c1", email="j@client.example")
    assert e == ev.SetContactEmail(at=60, index=3, loc="s.yaml:9:5", note="a caption", contact="c1",
                                   email="j@client.example")
    assert ev.make_event("login", at=0, user="u1") == ev.Login(at=0, index=-1, loc="", note=None, user="u1")


def test_sync_verdicts_in_full() -> None:
    alive = initial_state(Sync("google", synced=0))
    assert verdict(alive, 90 * DAY - 1, LIFE) == SyncVerdict(True, None, 90 * DAY, "sync valid")
    assert verdict(alive, 90 * DAY, LIFE) == SyncVerdict(
        False, "sync-token-expired", 90 * DAY, "token lifetime passed since the last refresh")
    assert verdict(change_password(alive, DAY), DAY, LIFE) == SyncVerdict(
        False, "sync-password-changed", 90 * DAY, "password changed after the last sync")
    # a password change outranks an expired token (the guide's order of causes)
    assert verdict(change_password(alive, DAY), 100 * DAY, LIFE).reason == "sync-password-changed"
    assert verdict(initial_state(Sync("zoho", synced=0)), 0, LIFE) == SyncVerdict(
        False, "sync-provider-unsupported", None, "provider 'zoho' is not Microsoft 365 or Google: SMTP path")
    # §8: a password change at the very second of the initial sync came before it (the sync absorbed it)
    assert not initial_state(Sync("google", synced=0, password_changed=0)).password_pending
    assert initial_state(Sync("google", synced=0, password_changed=1)).password_pending
