"""Property tests: random valid scenarios never crash, lose nothing, and replay identically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario_text

EMAILS = ["jane@client.example", "bob@client.example ", "a b@client.example", "cat@other.example",
          "dan@nowhere.example", "Eve@Client.example"]
SPF = ["v=spf1 ip4:198.51.100.10 -all", "v=spf1 include:_spf.google.com ~all", "v=spf1 ?all",
       "v=spf1 include:spf.protection.outlook.com include:_spf.google.com ip4:198.51.100.0/24 -all",
       "v=spf1 redirect=nowhere.example", "v=spf1 a mx -all"]
EVENT_KINDS = ["complete_batch", "login", "resync", "change_password", "set_contact_active", "set_contact_email",
               "set_property_contact", "set_invoicing_email_from", "set_sync", "remove_sync", "dns_set",
               "dns_delete", "deactivate_user", "activate_user"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_users = draw(st.integers(1, 3))
    users = []
    for i in range(n_users):
        u: dict[str, Any] = {"id": f"u{i}", "email": f"s{i}@acme.example"}
        prov = draw(st.sampled_from(["microsoft365", "google", "zoho", None]))
        if prov:
            u["sync"] = {"provider": prov, "synced": f"-{draw(st.integers(0, 200))}d",
                         "last_login": f"-{draw(st.integers(0, 120))}d"}
            if draw(st.booleans()):
                u["sync"]["password_changed"] = f"-{draw(st.integers(0, 30))}d"
        users.append(u)
    sender = st.one_of(st.none(), st.sampled_from([u["email"] for u in users] + ["ghost@acme.example"]))
    n_contacts = draw(st.integers(1, 4))
    emails = draw(st.lists(st.sampled_from(EMAILS), min_size=n_contacts, max_size=n_contacts,
                           unique_by=lambda e: e.strip().lower()))
    contacts = [{"id": f"c{i}", "email": e, "active": draw(st.booleans()) or i == 0} for i, e in enumerate(emails)]
    branches = [{"id": "b0", "invoicing_email_from": draw(sender)}, {"id": "b1"}]
    props = []
    for i in range(draw(st.integers(1, 3))):
        pcs = [{"contact": c["id"], "email_invoice": draw(st.booleans()), "billing": draw(st.booleans())}
               for c in contacts if draw(st.booleans())]
        props.append({"id": f"p{i}", "branch": f"b{draw(st.integers(0, 1))}", "contacts": pcs})
    pids = [p["id"] for p in props]
    batches: list[dict[str, Any]] = []
    for b in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            batches.append({"id": f"B{b}", "invoices": {"count": draw(st.integers(1, 40)), "properties": pids}})
        else:
            batches.append({"id": f"B{b}", "invoices": [{"id": f"INV-{b}-{k}", "property": draw(st.sampled_from(pids))}
                                                        for k in range(draw(st.integers(1, 4)))]})
    timeline = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(EVENT_KINDS))
        at = f"+{draw(st.integers(0, 48))}h"
        uid = draw(st.sampled_from([u["id"] for u in users]))
        cid = draw(st.sampled_from([c["id"] for c in contacts]))
        arg: Any = {
            "complete_batch": draw(st.sampled_from([b["id"] for b in batches])),
            "login": uid, "resync": uid, "change_password": uid, "remove_sync": uid, "deactivate_user": uid,
            "activate_user": uid,
            "set_sync": {"user": uid, "provider": draw(st.sampled_from(["google", "microsoft365", "zoho"]))},
            "set_contact_active": {"contact": cid, "active": draw(st.booleans())},
            "set_contact_email": {"contact": cid, "email": draw(st.sampled_from(EMAILS))},
            "set_property_contact": {"property": draw(st.sampled_from(pids)), "contact": cid,
                                     "email_invoice": draw(st.booleans())},
            "set_invoicing_email_from": {"configuration": True, "email": draw(sender)},
            "dns_set": {"name": "acme.example", "type": "TXT", "value": draw(st.sampled_from(SPF))},
            "dns_delete": {"name": "acme.example", "type": "TXT"},
        }[kind]
        timeline.append({"at": at, kind: arg})
    for b in batches:
        if draw(st.booleans()):
            timeline.append({"at": f"+{draw(st.integers(0, 30))}h", "complete_batch": b["id"]})
    faults = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["outage", "tempfail", "permfail", "disconnect", "slow", "dns_timeout",
                                     "dns_servfail"]))
        f: dict[str, Any] = {"kind": kind, "probability": draw(st.sampled_from([0.1, 0.5, 1.0]))}
        if draw(st.booleans()):
            f.update({"at": f"+{draw(st.integers(0, 24))}h", "for": f"{draw(st.integers(1, 600))}m"})
        if kind == "slow":
            f["delay"] = "30s"
        if kind.startswith("dns"):
            f["target"] = draw(st.sampled_from(["acme.example", "client.example"]))
        faults.append(f)
    mailboxes = [{"domain": "client.example", "users": draw(st.sampled_from([None, ["jane", "eve"], ["bob"]])),
                  "greylist": f"{draw(st.sampled_from([0, 5, 30]))}m", "quota": draw(st.sampled_from([0, 3])),
                  "spf_policy": {"softfail": draw(st.sampled_from(["junk", "inbox", "reject", "defer"]))}}]
    return {
        "schema": "mailsim/1", "name": "random", "start": "2026-11-02T09:00:00Z",
        "seed": draw(st.integers(0, 2**31)), "until": f"+{draw(st.integers(1, 7))}d",
        "settings": {"queue_poll": draw(st.sampled_from(["1m", "5m", "7m"])),
                     "smtp_path_requires_spf": draw(st.booleans())},
        "organization": {"configuration": {"invoice_email_from": draw(sender),
                                           "invoice_recipients": draw(st.sampled_from(
                                               [["email_invoice"], ["email_invoice", "billing"]]))},
                         "branches": branches},
        "users": users, "contacts": contacts, "properties": props, "batches": batches,
        "dns": {"records": [{"name": "acme.example", "type": "TXT", "value": draw(st.sampled_from(SPF))},
                            {"name": "client.example", "type": "MX", "value": "10 mx.client.example"},
                            {"name": "mx.client.example", "type": "A", "value": "192.0.2.25"},
                            {"name": "other.example", "type": "A", "value": "192.0.2.26"}],
                "unreachable": draw(st.sampled_from([[], ["other.example"]]))},
        "mailboxes": mailboxes, "timeline": timeline, "faults": faults,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_scenarios_account_for_every_email(data: dict[str, Any]) -> None:
    scn = load_scenario_text(json.dumps(data), path="<random>")
    r = simulate(scn)
    acc = r.accounting()
    assert acc["lost"] == 0
    total = sum(b.count for b in scn.batches)
    assert acc["invoices"] == total
    assert acc.get("draft", 0) + acc.get("not_emailed", 0) + acc.get("in_queue", 0) + acc.get("sent", 0) == total
    for v in r.invoices():
        assert v.email_status in ("N/A", "Pending", "In Queue", "Sent")
        if v.email_status == "Sent":
            assert v.completed_at is not None and v.queued_at is not None and v.sent_at is not None
            assert v.completed_at <= v.queued_at <= v.sent_at <= r.end
            for rc in v.recipients:
                assert rc.outcome in ("skipped", "deferred", "inbox", "junk", "bounced", "none")
        if v.email_status == "In Queue" and v.reason is None:  # only while waiting for the next poll
            assert v.queued_at is not None and r.end - v.queued_at < scn.settings.queue_poll
    bounced = sum(1 for v in r.invoices() for rc in v.recipients if rc.outcome == "bounced")
    assert sum(m["bounces"] for m in r.mailboxes().values()) <= bounced  # one DSN per bounced (message, domain)
    if bounced:
        assert sum(m["bounces"] for m in r.mailboxes().values()) >= 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_same_seed_same_trace(tmp_path: Path, data: dict[str, Any]) -> None:
    scn = load_scenario_text(json.dumps(data), path="<random>")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    simulate(scn, trace=a)
    simulate(scn, trace=b)
    assert a.read_bytes() == b.read_bytes()


# -- the memory transport's batched transactions vs the sink's stage-by-stage path ----------------
def _stage_by_stage(server: Any, att: Any) -> Any:
    """One transaction through the receiver's stage methods, as the sink's hooks call them."""
    from simulator.net.receiver import DROPPED, Transaction
    from simulator.transport.base import AttemptResult

    n = len(att.rcpts)
    tx = Transaction(now=att.now, client_ip=att.client_ip, domain=att.domain, message_id=att.message_id,
                     attempt=att.attempt)
    for step in (lambda: server.connect(tx), lambda: server.helo(tx, att.helo),
                 lambda: server.mail(tx, att.mail_from, None)):
        r = step()  # one stage at a time: a refused greeting never reaches HELO
        if not r.ok:
            return AttemptResult((r,) * n, None, None, delay=tx.delay)
    replies = []
    for rcpt in att.rcpts:
        r = server.rcpt(tx, rcpt)
        if r.code == 0:
            return AttemptResult((DROPPED,) * n, None, None, delay=tx.delay)
        replies.append(None if r.ok else r)
    if not tx.rcpts:
        return AttemptResult(tuple(r for r in replies if r is not None), None, None, delay=tx.delay)
    v = server.data_end(tx, None)
    if v.reply.code == 0:
        return AttemptResult((DROPPED,) * n, None, v.spf_result, v.spf_explanation, tx.delay)
    return AttemptResult(tuple(v.reply if r is None else r for r in replies), v.folder, v.spf_result,
                         v.spf_explanation, tx.delay)


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[list[Any], list[Any], list[tuple[int, list[str], tuple[str, ...]]]]:
    from simulator.domain.entities import MailboxDomain
    from simulator.domain.faults import FAULT_KINDS, SMTP_FAULT_KINDS, SMTP_STAGES, Fault

    faults = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([k for k in FAULT_KINDS if k in SMTP_FAULT_KINDS]))
        at = draw(st.one_of(st.none(), st.integers(0, 600)))
        faults.append(Fault(i, kind, at=at, for_=draw(st.one_of(st.none(), st.integers(1, 600))),
                            stage=draw(st.one_of(st.none(), st.sampled_from(SMTP_STAGES))),
                            probability=draw(st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0])),
                            target=draw(st.sampled_from([None, "a.example", "b.example"])),
                            delay=draw(st.sampled_from([0, 30]))))
    boxes = [MailboxDomain("a.example", users=("x", "y"), greylist=draw(st.sampled_from([0, 120])),
                           quota=draw(st.sampled_from([0, 2, 5]))),
             MailboxDomain("b.example", quota=draw(st.sampled_from([0, 3])))]
    sends = []
    for _ in range(draw(st.integers(1, 6))):
        now = draw(st.integers(0, 900))
        rcpts = tuple(draw(st.lists(st.sampled_from(["x@a.example", "y@a.example", "zz@a.example"]),
                                    min_size=1, max_size=3)))
        mids = [f"<m{draw(st.integers(0, 30))}@x>" for _ in range(draw(st.integers(1, 12)))]
        sends.append((now, mids, rcpts))
    return faults, boxes, sends


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts())
def test_batched_transactions_equal_one_at_a_time(case: Any) -> None:
    """run_transactions (shared plan, SPF, results; quiet messages filed in one go) changes no reply or copy."""
    from simulator.net.receiver import ReceivingServer
    from simulator.transport.base import Attempt, run_transactions

    faults, boxes, sends = case

    def spf(now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
        return ("softfail" if now % 2 else "pass"), f"at {now}"

    batched = ReceivingServer(boxes, faults, 5, spf)
    single = ReceivingServer(boxes, faults, 5, spf)
    for attempt, (now, mids, rcpts) in enumerate(sends, 1):
        att = Attempt(now=now, message_id=mids[0], attempt=attempt, client_ip="198.51.100.10", helo="h.example",
                      mail_from="s@acme.example", domain="a.example", mx_host="mx.a.example", mx_ip="192.0.2.1",
                      rcpts=rcpts, render=lambda: b"")
        got = run_transactions(batched, att, mids)
        # the distinct results the MTA reads delays and uniformity from: exactly the objects handed out
        assert sorted(map(id, got.distinct)) == sorted(set(map(id, got)))
        want = [_stage_by_stage(single, Attempt(**{**{k: getattr(att, k) for k in att.__slots__},
                                                   "message_id": m})) for m in mids]
        for g, w in zip(got, want, strict=True):
            assert (g.folder, g.spf_result, g.spf_explanation, g.delay) == (w.folder, w.spf_result,
                                                                               w.spf_explanation, w.delay)
            # a 250's text names the message (a shared result names the first one): compared without it
            assert [(r.code, r.enhanced, r.text if not r.ok else "") for r in g.replies] == \
                [(r.code, r.enhanced, r.text if not r.ok else "") for r in w.replies]
        assert {a: (b.inbox, b.junk, b.messages) for a, b in batched.store.boxes.items()} == \
            {a: (b.inbox, b.junk, b.messages) for a, b in single.store.boxes.items()}


@st.composite
def quota_envelopes(draw: st.DrawFn) -> tuple[list[Any], list[Any], list[tuple[int, list[str], tuple[str, ...]]]]:
    """One recipient, a mailbox quota and no greylisting: the envelopes ``_quota_runs`` takes."""
    from simulator.domain.entities import MailboxDomain, SpfPolicy
    from simulator.domain.faults import FAULT_KINDS, SMTP_FAULT_KINDS, SMTP_STAGES, Fault

    faults = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([k for k in FAULT_KINDS if k in SMTP_FAULT_KINDS]))
        faults.append(Fault(i, kind, at=draw(st.one_of(st.none(), st.integers(0, 600))),
                            for_=draw(st.one_of(st.none(), st.integers(1, 600))),
                            stage=draw(st.one_of(st.none(), st.sampled_from(SMTP_STAGES))),
                            probability=draw(st.sampled_from([0.0, 0.1, 0.3, 0.9])),
                            target=draw(st.sampled_from([None, "a.example"])),
                            delay=draw(st.sampled_from([0, 30]))))
    softfail = draw(st.sampled_from(["inbox", "junk", "reject", "defer"]))
    boxes = [MailboxDomain("a.example", users=("x", "y"), quota=draw(st.integers(1, 12)),
                           spf_policy=SpfPolicy(softfail=softfail))]
    sends = []
    for _ in range(draw(st.integers(1, 6))):
        rcpt = draw(st.sampled_from(["x@a.example", "y@a.example", "zz@a.example"]))
        mids = [f"<m{draw(st.integers(0, 60))}@x>" for _ in range(draw(st.integers(1, 30)))]
        sends.append((draw(st.integers(0, 900)), mids, (rcpt,)))
    return faults, boxes, sends


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quota_envelopes())
def test_quota_envelopes_equal_one_at_a_time(case: Any) -> None:
    """The quota shortcut (quiet runs answered from the mailbox's room) changes no reply or copy."""
    test_batched_transactions_equal_one_at_a_time.hypothesis.inner_test(case)  # type: ignore[attr-defined]


