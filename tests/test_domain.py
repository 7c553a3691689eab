"""Unit tests of the pure domain rules (guide Steps 2-5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulator.domain.contacts import address_problem, find_duplicate, normalize_email
from simulator.domain.entities import (
    DAY,
    Branch,
    Configuration,
    Contact,
    Organization,
    Property,
    PropertyContact,
    Region,
    Sync,
    User,
)
from simulator.domain.faults import Fault, draw, smtp_fault_at
from simulator.domain.recipients import billing_contact_warnings, draft_status, plan_recipients
from simulator.domain.sender import find_sender_user, resolve_sender_address, sending_path, spf_gate_reason
from simulator.domain.statuses import EmailStatus
from simulator.domain.sync import change_password, expires_at, initial_state, login, resync, verdict

LIFE = 90 * DAY


# -- contacts ---------------------------------------------------------------------------------
def test_trailing_space_and_bad_characters_are_invalid() -> None:
    assert address_problem("jane@client.example") is None
    assert "SPACE" in (address_problem("bob@client.example ") or "")
    assert address_problem("a b@client.example") is not None
    assert address_problem("jo@@client.example") is not None
    assert address_problem("José@client.example") is not None  # unsupported characters
    assert address_problem("") == "the address is empty"


def test_duplicates_are_case_insensitive_trimmed_and_include_inactive() -> None:
    contacts = [Contact("c1", "Bob@Client.example", active=False), Contact("c2", "jane@client.example")]
    dup = find_duplicate(contacts, "  bob@client.EXAMPLE ")
    assert dup is not None and dup.id == "c1"
    assert find_duplicate(contacts, "bob@client.example", ignore_id="c1") is None  # editing itself
    assert find_duplicate(contacts, "new@client.example") is None


@given(st.emails(), st.sampled_from([str.upper, str.lower, str.title]), st.text(" ", max_size=3))
def test_duplicate_detection_ignores_case_and_padding(addr: str, case: object, pad: str) -> None:
    variant = pad + case(addr) + pad  # type: ignore[operator]
    assert find_duplicate([Contact("c1", addr)], variant) is not None
    assert normalize_email(variant) == normalize_email(addr)


# -- recipients and draft status ----------------------------------------------------------------
def _prop(*pcs: PropertyContact) -> Property:
    return Property("p1", "b1", tuple(pcs))


def test_recipients_keep_skipped_contacts_with_reasons() -> None:
    contacts = {"a": Contact("a", "a@x.example"), "b": Contact("b", "b@x.example ", True),
                "c": Contact("c", "c@x.example", active=False), "d": Contact("d", "d@x.example")}
    prop = _prop(PropertyContact("a", email_invoice=True), PropertyContact("b", email_invoice=True),
                 PropertyContact("c", email_invoice=True), PropertyContact("d", billing=True))
    plans = plan_recipients(prop, contacts)
    assert [(p.contact, p.skip_reason) for p in plans] == [
        ("a", None), ("b", "recipient-email-invalid"), ("c", "recipient-contact-inactive")]
    assert draft_status(plans) == (EmailStatus.PENDING, "batch-draft")
    with_billing = plan_recipients(prop, contacts, ("email_invoice", "billing"))
    assert [p.contact for p in with_billing] == ["a", "b", "c", "d"]
    assert billing_contact_warnings(prop, ("email_invoice",)) == ("d",)
    assert billing_contact_warnings(prop, ("email_invoice", "billing")) == ()


def test_na_when_no_active_email_invoice_contact() -> None:
    contacts = {"c": Contact("c", "c@x.example", active=False), "d": Contact("d", "d@x.example")}
    assert draft_status(plan_recipients(_prop(PropertyContact("d", primary=True)), contacts)) == (
        EmailStatus.NA, "no-invoice-email-contact")
    only_inactive = plan_recipients(_prop(PropertyContact("c", email_invoice=True)), contacts)
    assert draft_status(only_inactive)[0] == EmailStatus.NA


# -- sync ----------------------------------------------------------------------------------------
def test_token_counts_from_later_of_sync_and_login() -> None:
    st0 = initial_state(Sync("microsoft365", synced=-200 * DAY, last_login=-95 * DAY))
    assert expires_at(st0, LIFE) == -5 * DAY
    assert verdict(st0, 0, LIFE).reason == "sync-token-expired"
    fresh = initial_state(Sync("google", synced=-10 * DAY))
    assert verdict(fresh, 0, LIFE).ok and verdict(fresh, 80 * DAY - 1, LIFE).ok
    assert verdict(fresh, 80 * DAY, LIFE).reason == "sync-token-expired"  # expiry instant is expired


def test_login_refreshes_only_while_alive_and_resync_revives() -> None:
    s = initial_state(Sync("google", synced=0))
    s2, ok = login(s, 85 * DAY, LIFE)
    assert ok and expires_at(s2, LIFE) == 175 * DAY
    s3, ok = login(s, 91 * DAY, LIFE)
    assert not ok and expires_at(s3, LIFE) == 90 * DAY and s3.last_login == 91 * DAY
    s4 = resync(s3, None, 100 * DAY)
    assert verdict(s4, 100 * DAY, LIFE).ok and s4.provider == "google"


def test_password_change_breaks_until_resync() -> None:
    s = change_password(initial_state(Sync("microsoft365", synced=0)), 5 * DAY)
    assert verdict(s, 6 * DAY, LIFE).reason == "sync-password-changed"
    assert verdict(resync(s, None, 7 * DAY), 7 * DAY, LIFE).ok


def test_unsupported_provider_goes_smtp_with_a_warning() -> None:
    s = initial_state(Sync("zoho", synced=0))
    path = sending_path(s, 0, LIFE)
    assert path.kind == "smtp" and path.notes == ("sync-provider-unsupported",)
    assert sending_path(None, 0, LIFE).kind == "smtp"
    assert sending_path(initial_state(Sync("google", synced=-100 * DAY)), 0, LIFE).reason == "sync-token-expired"


@given(
    synced=st.integers(-400, 0),
    first_login=st.one_of(st.none(), st.integers(-400, 0)),
    logins=st.lists(st.integers(0, 400), max_size=8),
    probe=st.integers(0, 600),
)
def test_token_validity_matches_a_reference_model(synced: int, first_login: int | None, logins: list[int],
                                                   probe: int) -> None:
    life = 90
    state = initial_state(Sync("google", synced=synced, last_login=first_login))
    refreshed = max(synced, first_login) if first_login is not None else synced
    for t in sorted(logins):
        if t > probe:
            break
        state, _ = login(state, t, life)
        if t < refreshed + life:
            refreshed = max(refreshed, t)
    assert verdict(state, probe, life).ok == (probe < refreshed + life)


# -- sender ---------------------------------------------------------------------------------------
def _org(cfg: str | None = "cfg@acme.example") -> tuple[Organization, dict[str, Branch], dict[str, Region]]:
    regions = {"north": Region("north", "north@acme.example"), "south": Region("south")}
    branches = {"b1": Branch("b1", "north"), "b2": Branch("b2", "north", "b2@acme.example"),
                "b3": Branch("b3", "south"), "b4": Branch("b4")}
    org = Organization(Configuration(cfg), tuple(regions.values()), tuple(branches.values()))
    return org, branches, regions


def test_sender_resolution_branch_region_configuration() -> None:
    org, b, r = _org()
    assert resolve_sender_address(("b2",), org, b, r).address == "b2@acme.example"
    assert resolve_sender_address(("b1",), org, b, r).source == "region:north"
    assert resolve_sender_address(("b3",), org, b, r).address == "cfg@acme.example"
    assert resolve_sender_address(("b4",), org, b, r).source == "configuration"
    multi = resolve_sender_address(("b1", "b2"), org, b, r)
    assert multi.address == "cfg@acme.example" and multi.notes == ("multi-branch-uses-configuration",)
    org2, b2, r2 = _org(None)
    assert resolve_sender_address(("b3",), org2, b2, r2).address is None


def test_sender_user_is_case_insensitive_and_active_only() -> None:
    users = {"u1": User("u1", "AR@acme.example"), "u2": User("u2", "gone@acme.example", active=False)}
    found = find_sender_user("ar@ACME.example", users)
    assert found is not None and found.id == "u1"
    assert find_sender_user("gone@acme.example", users) is None


def test_spf_gate_needs_pass_for_every_ip() -> None:
    assert spf_gate_reason({"198.51.100.10": "pass"}) is None
    assert spf_gate_reason({"a": "pass", "b": "softfail"}) == "sender-spf-not-authorized"


# -- faults ---------------------------------------------------------------------------------------
def test_fault_draws_are_keyed_not_sequential() -> None:
    a = draw(7, 0, "<m1>", "r@x", 1, "rcpt")
    assert a == draw(7, 0, "<m1>", "r@x", 1, "rcpt")
    assert 0.0 <= a < 1.0
    assert a != draw(8, 0, "<m1>", "r@x", 1, "rcpt")
    assert a != draw(7, 0, "<m1>", "r@x", 2, "rcpt")


def test_fault_windows_targets_and_stages() -> None:
    faults = (Fault(0, "outage", at=100, for_=50, target="client.example"),
              Fault(1, "tempfail", stage="rcpt", probability=0.0))
    kw = dict(seed=1, message_id="<m>", rcpt="", attempt=1)
    assert smtp_fault_at(faults, now=120, stage="connect", domain="mx.client.example", **kw) is faults[0]  # type: ignore[arg-type]
    assert smtp_fault_at(faults, now=150, stage="connect", domain="client.example", **kw) is None  # type: ignore[arg-type]
    assert smtp_fault_at(faults, now=120, stage="connect", domain="other.example", **kw) is None  # type: ignore[arg-type]
    assert smtp_fault_at(faults, now=0, stage="rcpt", domain="x", **kw) is None  # type: ignore[arg-type]
