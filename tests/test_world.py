"""The domain's one apply(world, event): each event kind's rule, refusals, and the boundaries DESIGN §8 fixes."""

from __future__ import annotations

import json
import typing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulator.domain import events as ev
from simulator.domain.entities import DAY, Contact, Organization, Property, PropertyContact, Sync, User
from simulator.domain.sync import SyncState, expires_at, initial_state, verdict
from simulator.domain.world import World, apply
from simulator.engine.run import simulate
from tests.helpers import block, scenario

LIFE = 90 * DAY
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def world(sync: dict[str, SyncState | None] | None = None, lifetime: int = LIFE) -> World:
    users = {"u1": User("u1", "ar@acme.example"), "u2": User("u2", "smtp@acme.example")}
    return World(
        start=START,
        token_lifetime=lifetime,
        organization=Organization(),
        branches={},
        regions={},
        users=users,
        sync=sync if sync is not None else {"u1": initial_state(Sync("microsoft365", -10 * DAY)), "u2": None},
        contacts={"c1": Contact("c1", "jane@client.example"), "c2": Contact("c2", "bob@client.example")},
        properties={"p1": Property("p1", "b1", (PropertyContact("c1", True),))},
        batch_status={"B1": "Draft"},
    )


def test_every_event_type_of_the_union_has_a_rule() -> None:
    members = set(typing.get_args(ev.Event))
    assert members == set(ev.EVENT_TYPES.values())
    w = world()
    samples: dict[type, ev.TimelineEvent] = {
        ev.CompleteBatch: ev.CompleteBatch(at=0, batch="B1"),
        ev.SetSync: ev.SetSync(at=0, user="u2", provider="google"),
        ev.SetContactEmail: ev.SetContactEmail(at=0, contact="c1", email="j@client.example"),
        ev.SetContactActive: ev.SetContactActive(at=0, contact="c1", active=False),
        ev.SetPropertyContact: ev.SetPropertyContact(at=0, property="p1", contact="c2", email_invoice=True),
        ev.SetInvoicingEmailFrom: ev.SetInvoicingEmailFrom(at=0, email="x@acme.example", configuration=True),
        ev.DnsSet: ev.DnsSet(at=0, name="acme.example", type="TXT", value="v=spf1 -all"),
        ev.DnsDelete: ev.DnsDelete(at=0, name="acme.example", type="TXT"),
        ev.SetTokenLifetime: ev.SetTokenLifetime(at=0, lifetime=30 * DAY),
    }
    for t in members:
        sample = samples.get(t) or t(at=0, user="u1")  # type: ignore[call-arg]
        done = apply(w, sample)  # type: ignore[arg-type]
        # every rule either traces what it did or hands the engine its work (a completion generates emails)
        assert done.records or done.completes, f"{t.__name__} neither traces nor completes anything"
        assert w == world(), "apply must not mutate the world it was given"


def test_resync_without_a_sync_is_refused_and_set_sync_creates_one() -> None:
    w = world()
    done = apply(w, ev.Resync(at=100, user="u2", loc="f.yaml:9:5"))
    assert done.refused == "no-sync-to-resync"
    assert done.world is w and not done.sender_changed and not done.expiry_users
    assert done.records == (("event.refused", {"kind": "resync", "user": "u2", "reason": "no-sync-to-resync",
                                               "line": "f.yaml:9:5"}),)
    removed = apply(w, ev.RemoveSync(at=100, user="u1")).world
    assert apply(removed, ev.Resync(at=200, user="u1")).refused == "no-sync-to-resync"
    created = apply(w, ev.SetSync(at=100, user="u2", provider="google"))
    st = created.world.sync["u2"]
    assert st is not None and (st.provider, st.synced, st.refreshed) == ("google", 100, 100)
    again = apply(created.world, ev.Resync(at=500, user="u2"))
    assert again.refused is None and again.world.sync["u2"].provider == "google"  # type: ignore[union-attr]


@pytest.mark.parametrize(("order", "valid"), [
    (("change_password", "resync"), True),   # re-sync after the change: valid (file order, §8)
    (("resync", "change_password"), False),  # the change came after the re-sync
])
def test_password_change_and_resync_at_the_same_second_follow_file_order(order: tuple[str, str], valid: bool) -> None:
    w = world()
    for kind in order:
        w = apply(w, ev.make_event(kind, at=3600, user="u1")).world
    st = w.sync["u1"]
    assert st is not None
    assert verdict(st, 3600, LIFE).ok is valid
    assert verdict(st, 3600, LIFE).reason == (None if valid else "sync-password-changed")


@pytest.mark.parametrize(("changed", "reason"), [
    (-10 * DAY - 1, None),  # a second before the sync
    (-10 * DAY, None),  # §8: equal to synced means the re-sync came after the change
    (-10 * DAY + 1, "sync-password-changed"),  # a second after
])
def test_initial_password_change_against_the_sync_instant(changed: int, reason: str | None) -> None:
    st = initial_state(Sync("google", -10 * DAY, None, changed))
    assert verdict(st, 0, LIFE).reason == reason


@pytest.mark.parametrize(("offset", "refreshed"), [(-1, True), (0, False), (1, False)])
def test_login_at_the_expiry_instant_is_too_late(offset: int, refreshed: bool) -> None:
    w = world()
    exp = w.expiry_of("u1")
    assert exp == -10 * DAY + LIFE
    done = apply(w, ev.Login(at=exp + offset, user="u1"))
    assert done.refreshed is refreshed
    st = done.world.sync["u1"]
    assert st is not None
    assert expires_at(st, LIFE) == (exp - 1 + LIFE if refreshed else exp)


def test_token_lifetime_change_moves_every_expiry_from_the_last_refresh() -> None:
    w = world()
    done = apply(w, ev.SetTokenLifetime(at=DAY, lifetime=5 * DAY))
    assert done.world.token_lifetime == 5 * DAY
    assert done.world.expiry_of("u1") == -10 * DAY + 5 * DAY
    assert done.expiry_users == ("u1",) and done.sender_changed
    assert done.records == (("settings.token_lifetime", {"lifetime": 5 * DAY, "previous": LIFE}),)


def test_duplicate_contact_email_is_refused_and_the_contact_keeps_its_address() -> None:
    w = world()
    done = apply(w, ev.SetContactEmail(at=0, contact="c2", email=" JANE@client.example "))
    assert done.refused == "duplicate-email-rejected" and done.world is w
    ok = apply(w, ev.SetContactEmail(at=0, contact="c1", email="Jane@client.example"))  # itself: not a duplicate
    assert ok.refused is None and ok.world.contacts["c1"].email == "Jane@client.example"
    assert ok.properties == ("p1",)


def test_completing_a_batch_twice_is_traced_not_repeated() -> None:
    first = apply(world(), ev.CompleteBatch(at=0, batch="B1"))
    assert first.completes == "B1" and first.world.batch_status["B1"] == "Sent"
    second = apply(first.world, ev.CompleteBatch(at=5, batch="B1"))
    assert second.completes is None and second.records == (("batch.already_completed", {"batch": "B1"}),)


def _trace(tmp_path: Path, **kw: str) -> list[dict[str, object]]:
    out = tmp_path / "t.jsonl"
    simulate(scenario(**kw), trace=out)
    return [json.loads(line) for line in out.read_text().splitlines()[1:]]


def test_a_login_at_the_expiry_instant_traces_the_expiry_once(tmp_path: Path) -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -89d}}"
    recs = _trace(tmp_path, users=users, timeline=block("""
        - {at: +1d, login: u1}
        - {at: +1d1h, complete_batch: B1}
    """), extra="until: +2d")
    expired = [r for r in recs if r["event"] == "sync.expired"]
    assert [(r["t"], r["user"]) for r in expired] == [(DAY, "u1")]
    login = next(r for r in recs if r["event"] == "user.login")
    assert login["refreshed"] is False


def test_a_shorter_lifetime_expires_tokens_at_once_and_later_ones_on_time(tmp_path: Path) -> None:
    users = block("""
        - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -40d}}
        - {id: u9, email: other@acme.example, sync: {provider: google, synced: -10d}}
    """)
    recs = _trace(tmp_path, users=users, timeline=block("""
        - {at: +1h, set_token_lifetime: {lifetime: 30d}}
        - {at: +2h, complete_batch: B1}
    """), extra="until: +21d")
    expired = [(r["t"], r["user"]) for r in recs if r["event"] == "sync.expired"]
    assert expired == [(3600, "u1"), (20 * DAY, "u9")]
    blocked = [r for r in recs if r["event"] == "email.blocked"]
    assert blocked and blocked[0]["reason"] == "sync-token-expired"


def test_sender_address_is_used_trimmed_and_lower_case() -> None:
    scn = scenario(users="  - {id: u1, email: ar@acme.example}")
    org = replace(scn.organization, configuration=replace(scn.organization.configuration,
                                                          invoice_email_from=" Ar@Acme.example "))
    view = next(simulate(replace(scn, organization=org)).invoices())
    assert (view.email_status, view.sender) == ("Sent", "ar@acme.example")


def test_initial_password_change_after_the_sync_breaks_it_even_with_a_later_login() -> None:
    """The pending change survives the login-refreshed branch of the initial state (a mutation survivor)."""
    st = initial_state(Sync("google", -10 * DAY, -5 * DAY, -3 * DAY))
    assert (st.refreshed, st.refreshed_by, st.password_pending) == (-5 * DAY, "login", True)
    assert verdict(st, 0, LIFE).reason == "sync-password-changed"


def test_an_initial_login_at_the_sync_instant_counts_as_the_sync() -> None:
    st = initial_state(Sync("google", -10 * DAY, -10 * DAY))
    assert (st.refreshed, st.refreshed_by) == (-10 * DAY, "sync")
    later = initial_state(Sync("google", -10 * DAY, -10 * DAY + 1))
    assert (later.refreshed, later.refreshed_by) == (-10 * DAY + 1, "login")
