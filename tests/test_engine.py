"""Engine behaviour on the virtual clock: ordering, queue, sync, MTA, retries, bounces."""

from __future__ import annotations

import email
import json
from pathlib import Path

from helpers import run, scenario

from simulator.domain.entities import DAY
from simulator.engine.run import simulate
from simulator.engine.sim import Engine

H = 3600
M = 60


def test_event_at_t_applies_before_the_poll_at_t() -> None:
    r = run()
    v = r.invoice("INV-1")
    assert v is not None
    assert (v.completed_at, v.queued_at, v.sent_at) == (H, H, H)
    assert v.recipients[0].outcome == "inbox" and v.recipients[0].at == H
    assert v.sender_path == "sync" and v.client_ip == "203.0.113.20"


def test_off_grid_completion_waits_for_the_next_poll() -> None:
    r = run(timeline="  - {at: +30s, complete_batch: B1}")
    v = r.invoice("INV-1")
    assert v is not None and v.sent_at == M


def test_expired_token_blocks_and_fires_stuck_once_then_resync_drains(tmp_path: object) -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -200d, last_login: -95d}}"
    scn = scenario(users=users, timeline="  - {at: +1h, complete_batch: B1}\n  - {at: +5h, login: u1}\n"
                                         "  - {at: +6h30s, resync: u1}")
    path = f"{tmp_path}/t.jsonl"
    r = simulate(scn, trace=path)
    v = r.invoice("INV-1")
    assert v is not None
    assert v.email_status == "Sent" and v.sent_at == 6 * H + M  # first poll after the resync
    lines = Path(path).read_text().splitlines()
    stuck = [ln for ln in lines if '"email.stuck"' in ln]
    assert len(stuck) == 1 and '"t":7200' in stuck[0]
    login = next(ln for ln in lines if '"user.login"' in ln)
    assert '"refreshed":false' in login


def test_login_before_expiry_saves_the_token() -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -89d}}"
    saved = run(users=users, timeline="  - {at: +12h, login: u1}\n  - {at: +2d, complete_batch: B1}")
    lost = run(users=users, timeline="  - {at: +2d, complete_batch: B1}")
    assert saved.invoice("INV-1").email_status == "Sent"  # type: ignore[union-attr]
    v = lost.invoice("INV-1")
    assert v is not None and (v.email_status, v.reason) == ("In Queue", "sync-token-expired")


def test_token_expiring_while_queued_blocks_later_batches() -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -89d}}"
    batches = "  - {id: B1, invoices: [{id: INV-1, property: p1}]}\n  - {id: B2, invoices: [{id: INV-2, property: p1}]}"
    r = run(users=users, batches=batches, timeline="  - {at: +1h, complete_batch: B1}\n"
                                                   "  - {at: +2d, complete_batch: B2}\n  - {at: +3d, resync: u1}")
    assert r.invoice("INV-1").sent_at == H  # type: ignore[union-attr]
    assert r.invoice("INV-2").sent_at == 3 * DAY  # type: ignore[union-attr]


def test_password_change_breaks_sync() -> None:
    r = run(timeline="  - {at: +10m, change_password: u1}\n  - {at: +1h, complete_batch: B1}",
            extra="until: +1d")
    v = r.invoice("INV-1")
    assert v is not None and v.reason == "sync-password-changed" and v.stuck_at == 2 * H


def test_multi_branch_batch_uses_configuration() -> None:
    r = run(batches="  - {id: B1, invoices: [{id: INV-1, property: p1}, {id: INV-2, property: p2}]}",
            extra="")
    for inv in ("INV-1", "INV-2"):
        v = r.invoice(inv)
        assert v is not None and v.sender == "ar@acme.example"
        assert "multi-branch-uses-configuration" in v.notes


def test_sender_not_configured_then_fixed_by_settings() -> None:
    scn = scenario(timeline="  - {at: +0s, set_invoicing_email_from: {configuration: true, email: null}}\n"
                            "  - {at: +1h, complete_batch: B1}\n"
                            "  - {at: +3h, set_invoicing_email_from: {branch: b1, email: ar@acme.example}}",
                   extra="until: +4h")
    eng = Engine(scn)
    eng.setup()
    eng.run(until=2 * H)
    e = eng.email_of("INV-1")
    assert e is not None and (e.status, e.reason) == ("In Queue", "sender-not-configured")
    eng.run()
    assert e.status == "Sent" and e.sent_at == 3 * H


def test_deactivated_user_is_not_a_sender() -> None:
    r = run(timeline="  - {at: +10m, deactivate_user: u1}\n  - {at: +1h, complete_batch: B1}", extra="until: +2h")
    assert r.invoice("INV-1").reason == "sender-not-a-user"  # type: ignore[union-attr]


def test_smtp_path_spf_gate_and_dns_fix() -> None:
    users = "  - {id: u1, email: ar@acme.example}"
    r = run(users=users, spf="v=spf1 include:spf.protection.outlook.com -all",
            timeline="  - {at: +1h, complete_batch: B1}\n"
                     "  - {at: +2h, dns_set: {name: acme.example, type: TXT, value: 'v=spf1 ip4:198.51.100.10 -all'}}")
    v = r.invoice("INV-1")
    assert v is not None and v.sent_at == 2 * H and v.sender_path == "smtp" and v.client_ip == "198.51.100.10"
    assert v.recipients[0].outcome == "inbox"


def test_retry_schedule_intervals_after_an_outage() -> None:
    r = run(extra="faults:\n  - {at: +0s, for: 30m, kind: outage, target: client.example}",
            timeline="  - {at: +0s, complete_batch: B1}")
    rc = r.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    # attempts at 0, 5m, 15m (still down), 35m (up): intervals 5m, 10m, 20m
    assert (rc.outcome, rc.attempts, rc.at) == ("inbox", 4, 35 * M)


def test_retries_exhausted_bounce_at_queue_lifetime_with_dsn() -> None:
    r = run(extra="faults:\n  - {kind: outage, target: client.example}", timeline="  - {at: +0s, complete_batch: B1}")
    rc = r.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    assert rc.outcome == "bounced" and rc.reason == "retries-exhausted" and rc.at == 5 * DAY
    assert r.mailboxes()["ar@acme.example"]["bounces"] == 1
    dsn = r.engine.transport.dsns[0]  # type: ignore[attr-defined]
    msg = email.message_from_bytes(dsn.render())
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in msg.walk()]
    assert "message/delivery-status" in parts and "text/rfc822-headers" in parts
    assert b"Final-Recipient: rfc822; jane@client.example" in dsn.render()


def test_unknown_user_bounces_immediately() -> None:
    r = run(mailboxes="  - {domain: client.example, users: [someone]}")
    rc = r.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    assert (rc.outcome, rc.reason, rc.smtp_code, rc.enhanced_code) == ("bounced", "unknown-recipient", 550, "5.1.1")
    assert r.mailboxes()["ar@acme.example"]["bounces"] == 1
    assert "jane@client.example" not in r.mailboxes()


def test_greylisting_lets_the_retry_through_after_the_delay() -> None:
    r = run(mailboxes="  - {domain: client.example, greylist: 10m}", timeline="  - {at: +0s, complete_batch: B1}")
    rc = r.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    assert (rc.outcome, rc.attempts, rc.at) == ("inbox", 3, 15 * M)


def test_spf_policy_junk_and_reject() -> None:
    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -1d}}"
    junk = run(users=users, spf="v=spf1 ip4:198.51.100.10 ~all")
    rc = junk.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    assert (rc.outcome, rc.folder, rc.reason) == ("junk", "junk", "spf-softfail-junk")
    rej = run(users=users, spf="v=spf1 ip4:198.51.100.10 -all")
    rc = rej.invoice("INV-1").recipients[0]  # type: ignore[union-attr]
    assert (rc.outcome, rc.reason, rc.enhanced_code) == ("bounced", "spf-fail-rejected", "5.7.23")


def test_quota_defers_when_the_mailbox_is_full() -> None:
    batches = "  - {id: B1, invoices: {count: 3, properties: [p1]}}"
    r = run(batches=batches, mailboxes="  - {domain: client.example, quota: 2}", extra="until: +3h")
    outs = [v.recipients[0].outcome for v in r.invoices()]
    reasons = [v.recipients[0].reason for v in r.invoices()]
    assert outs == ["inbox", "inbox", "deferred"] and reasons[2] == "mailbox-full"


def test_contact_edits_after_completion_do_not_change_the_email() -> None:
    r = run(timeline="  - {at: +1h, complete_batch: B1}\n"
                     "  - {at: +2h, set_contact_email: {contact: c1, email: jane2@client.example}}")
    assert r.invoice("INV-1").recipients[0].email == "jane@client.example"  # type: ignore[union-attr]


def test_duplicate_email_edit_refused_against_inactive_contact() -> None:
    r = run(timeline="  - {at: +0s, set_contact_active: {contact: c2, active: false}}\n"
                     "  - {at: +10m, set_contact_email: {contact: c1, email: BOB@client.example}}\n"
                     "  - {at: +1h, complete_batch: B1}")
    assert r.invoice("INV-1").recipients[0].email == "jane@client.example"  # type: ignore[union-attr]
    refused = [(ev.kind, why) for ev, why in r.engine.events_applied if why]
    assert refused == [("set_contact_email", "duplicate-email-rejected")]


def test_no_process_per_email() -> None:
    scn = scenario(batches="  - {id: B1, invoices: {count: 20000, properties: [p1, p2]}}", extra="until: +2h")
    eng = Engine(scn)
    eng.setup()
    eng.run(until=H)
    assert len(eng.env._queue) < 20  # a handful of scheduled events, not one per email
    eng.run()
    assert eng.queued == 0


def test_same_seed_same_trace_bytes(tmp_path: object) -> None:
    extra = "faults:\n  - {kind: tempfail, stage: rcpt, probability: 0.5}\n  - {kind: disconnect, probability: 0.2}"
    scn = scenario(batches="  - {id: B1, invoices: {count: 50, properties: [p1, p2]}}", extra=extra)
    a, b = f"{tmp_path}/a.jsonl", f"{tmp_path}/b.jsonl"
    ra = simulate(scn, trace=a)
    simulate(scn, trace=b)
    assert Path(a).read_bytes() == Path(b).read_bytes()
    outcomes = {v.recipients[0].attempts for v in ra.invoices()}
    assert len(outcomes) > 1  # the faults really did hit some attempts and not others
    assert ra.accounting()["lost"] == 0


def test_never_checks_outcomes_and_reasons_over_the_whole_window() -> None:
    scn = scenario(
        timeline="  - {at: +30m, deactivate_user: u1}\n  - {at: +1h, complete_batch: B1}\n"
                 "  - {at: +2h, activate_user: u1}",
        extra="""expect:
  - {invoice: INV-1, recipient: jane@client.example, never: {outcome: inbox}, until: +3h}
  - {invoice: INV-1, recipient: jane@client.example, never: {outcome: inbox}, until: +30m}
  - {invoice: INV-1, never: {reason: sender-not-a-user}, until: +3h}
  - {invoice: INV-1, never: {reason: sender-not-a-user}, until: +59m}
  - {invoice: INV-1, never: {email_status: Sent}, until: +1h59m}""")
    r = simulate(scn)
    assert [x.ok for x in r.expectations] == [False, True, False, True, True]


def test_dns_fault_window_ends_and_the_spf_gate_reopens() -> None:
    users = "  - {id: u1, email: ar@acme.example}"
    r = run(users=users, spf="v=spf1 ip4:198.51.100.10 -all",
            extra="faults:\n  - {at: +30m, for: 2h30m, kind: dns_timeout, target: acme.example}",
            timeline="  - {at: +1h, complete_batch: B1}")
    v = r.invoice("INV-1")
    assert v is not None and v.sent_at == 3 * H and v.recipients[0].outcome == "inbox"


def test_summary_groups_and_counts_agree_with_the_invoice_views() -> None:
    from collections import Counter

    from simulator.engine.result import _count

    users = "  - {id: u1, email: ar@acme.example, sync: {provider: google, synced: -89d}}"
    batches = ("  - {id: B1, invoices: {count: 40, properties: [p1, p2]}}\n"
               "  - {id: B2, invoices: {count: 10, properties: [p1]}}\n"
               "  - {id: B3, invoices: [{id: INV-9, property: p2}]}")
    r = run(users=users, batches=batches, mailboxes="  - {domain: client.example, users: [jane], quota: 15}",
            timeline="  - {at: +1h, complete_batch: B1}\n  - {at: +2d, complete_batch: B2}",
            extra="until: +3d")
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for v in r.invoices():
        outs = ",".join(sorted({r_.outcome + (f":{r_.reason}" if r_.reason else "") for r_ in v.recipients}))
        expected[(v.batch_status, v.email_status, v.reason or "", outs)] += 1
    assert r.summary_groups() == expected
    assert len(expected) >= 4  # inbox, bounced, deferred (quota), blocked and draft all appear
    for crit in ((("email_status", "In Queue"),), (("outcome", "inbox"),), (("reason", "mailbox-full"),),
                 (("email_status", "Pending"),), (("batch_status", "Draft"),)):
        want = dict(crit)
        n = 0
        for v in r.invoices():
            if "email_status" in want and v.email_status != want["email_status"]:
                continue
            if "batch_status" in want and v.batch_status != want["batch_status"]:
                continue
            if "reason" in want and v.reason != want["reason"] and all(x.reason != want["reason"]
                                                                       for x in v.recipients):
                continue
            n += sum(1 for x in v.recipients if x.outcome == want["outcome"]) if "outcome" in want else 1
        assert _count(r.engine, crit) == n, crit


# -- slow replies: the mailbox stores the message when the 250 is applied ----------------------------------

SLOW_10M = """
faults:
  - {kind: slow, stage: mail, delay: 10m, target: client.example}
"""


def _delivered(path: Path) -> dict[str, int]:
    recs = [json.loads(ln) for ln in Path(path).read_text().splitlines()[1:]]
    return {r["invoice"]: r["t"] for r in recs if r["event"] == "email.delivered"}


def test_a_slow_reply_is_stored_when_its_250_is_applied(tmp_path: Path) -> None:
    """With a 10m slow fault the copy's stored time is the ``email.delivered`` time (start + delay),
    for a single message and for a cohort sharing one transaction."""
    for batches in ("  - {id: B1, invoices: [{id: INV-1, property: p1}]}",
                    "  - {id: B1, invoices: {count: 3, properties: [p1]}}"):
        path = tmp_path / "t.jsonl"
        r = simulate(scenario(batches=batches, extra="until: +1d\n" + SLOW_10M), trace=path)
        delivered = _delivered(path)
        assert delivered and set(delivered.values()) == {H + 10 * M}
        box = r.engine.store.box("jane@client.example")
        assert box.inbox == len(delivered)
        assert sorted((mid, t) for mid, _f, t in box.messages) == sorted(
            (f"<{inv}@mailsim.invalid>", t) for inv, t in delivered.items())
        assert all(v.recipients[0].at == H + 10 * M for v in r.invoices())


def test_a_run_ending_inside_the_delay_stores_nothing() -> None:
    r = run(extra="until: +1h5m\n" + SLOW_10M)
    v = r.invoice("INV-1")
    assert v is not None and v.email_status == "Sent" and v.recipients[0].outcome == "none"
    box = r.engine.store.box("jane@client.example")
    assert (box.inbox, box.junk, box.messages) == (0, 0, [])
    assert r.to_json()["mailboxes"].get("jane@client.example", {"inbox": 0})["inbox"] == 0
    # one second after the delay it is there
    later = run(extra="until: +1h10m\n" + SLOW_10M)
    assert later.invoice("INV-1").recipients[0].outcome == "inbox"  # type: ignore[union-attr]
    assert later.engine.store.box("jane@client.example").messages == [("<INV-1@mailsim.invalid>", "inbox", H + 10 * M)]


SLOW_QUOTA = """
until: +1d
faults:
  - {at: +1h, for: 1m, kind: slow, stage: rcpt, delay: 10m, target: client.example}
"""


def test_a_slow_message_counts_against_the_quota_once_stored() -> None:
    """quota 1: INV-1 (slow, stored at 1h10m) does not fill the mailbox for INV-2 at 1h05m; INV-3 at
    1h15m finds it full."""
    batches = ("  - {id: B1, invoices: [{id: INV-1, property: p1}]}\n"
               "  - {id: B2, invoices: [{id: INV-2, property: p1}]}\n"
               "  - {id: B3, invoices: [{id: INV-3, property: p1}]}")
    timeline = ("  - {at: +1h, complete_batch: B1}\n  - {at: +1h5m, complete_batch: B2}\n"
                "  - {at: +1h15m, complete_batch: B3}")
    r = run(batches=batches, timeline=timeline, mailboxes="  - {domain: client.example, quota: 1}", extra=SLOW_QUOTA)
    got = {v.id: (v.recipients[0].outcome, v.recipients[0].reason, v.recipients[0].at) for v in r.invoices()}
    assert got["INV-1"] == ("inbox", None, H + 10 * M)
    assert got["INV-2"] == ("inbox", None, H + 5 * M)
    assert got["INV-3"][:2] == ("deferred", "mailbox-full")
    box = r.engine.store.box("jane@client.example")
    assert box.messages == [("<INV-2@mailsim.invalid>", "inbox", H + 5 * M),
                            ("<INV-1@mailsim.invalid>", "inbox", H + 10 * M)]
