"""The engine's retry, expiry and stuck rules as whole invoice views, and the MTA's reply-to-reason table.

For mutation testing of engine/sim.py and engine/mta.py (docs/testing.md): each run is a
one-invoice scenario whose whole ``InvoiceView`` is compared, so a retry one interval off,
a lifetime counted from the wrong attempt or a stuck mark one poll late all fail here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import run, scenario

import simulator
from simulator.engine.mta import reason_for
from simulator.engine.result import InvoiceView, RecipientView
from simulator.engine.run import simulate
from simulator.net.receiver import (
    DROPPED,
    GREYLISTED,
    OUTAGE,
    PERMFAIL,
    QUOTA,
    RATE_LIMITED,
    SPF_DEFER,
    SPF_REJECT,
    TEMPFAIL,
    TOO_BIG,
    UNKNOWN_USER,
    Reply,
)

M = 60
OUTAGE_EVIDENCE = "last reply: 421 4.3.2 Service not available, closing transmission channel (remote-outage)"


def sent(recipient: RecipientView, *, completed: int = 0) -> InvoiceView:
    return InvoiceView("INV-1", "B1", "p1", "Sent", "Sent", None, (), completed, completed, completed, None,
                       "ar@acme.example", "sync", "203.0.113.20", (recipient,))


def jane(outcome: str, reason: str | None, code: int, enhanced: str, folder: str | None, at: int, attempts: int,
         evidence: str | None = None) -> RecipientView:
    return RecipientView("jane@client.example", outcome, reason, code, enhanced, folder, at, attempts, "c1", evidence,
                         "jane@client.example")


@pytest.mark.parametrize(("completed", "bounced_at"), [(0, 60 * M), (10 * M, 70 * M)])
def test_the_queue_lifetime_ends_with_an_attempt_at_its_very_instant(completed: int, bounced_at: int) -> None:
    """Retries at +5m, +15m, +35m; the next (+75m) is pulled in to the lifetime's end, where it bounces."""
    r = run(extra="settings: {max_queue_lifetime: 1h}\nfaults:\n  - {kind: outage, target: client.example}",
            timeline=f"  - {{at: +{completed}s, complete_batch: B1}}")
    assert r.invoice("INV-1") == sent(
        jane("bounced", "retries-exhausted", 421, "4.3.2", None, bounced_at, 5, OUTAGE_EVIDENCE), completed=completed)


def test_the_last_retry_interval_repeats() -> None:
    r = run(extra="settings: {retry_schedule: [5m, 10m]}\n"
                  "faults:\n  - {at: +0s, for: 40m, kind: outage, target: client.example}",
            timeline="  - {at: +0s, complete_batch: B1}")
    # attempts at 0, 5m, 15m, 25m, 35m (the outage ends at 40m), 45m
    assert r.invoice("INV-1") == sent(jane("inbox", None, 250, "2.0.0", "inbox", 45 * M, 6))


def test_an_email_is_stuck_exactly_stuck_after_it_was_queued() -> None:
    r = run(extra="settings: {stuck_after: 30m}\nuntil: +2h", users="  - {id: u1, email: other@acme.example}")
    assert r.invoice("INV-1") == InvoiceView(
        "INV-1", "B1", "p1", "Sent", "In Queue", "sender-not-a-user", (), 60 * M, 60 * M, None, 90 * M, None, None,
        None, (RecipientView("jane@client.example", "none", None, None, None, None, None, 0, "c1", None,
                             "jane@client.example"),))


def traced(tmp_path: Path, **kw: str) -> list[dict[str, object]]:
    out = tmp_path / "t.jsonl"
    simulate(scenario(**kw), trace=out)
    return [json.loads(line) for line in out.read_text().splitlines()[1:]]


def test_an_email_queued_at_the_start_is_stuck_on_time(tmp_path: Path) -> None:
    recs = traced(tmp_path, extra="settings: {stuck_after: 30m}\nuntil: +1h",
                  users="  - {id: u1, email: other@acme.example}", timeline="  - {at: +0s, complete_batch: B1}")
    assert [r for r in recs if r["event"] == "email.stuck"] == [
        {"seq": 5, "t": 1800, "at": "2026-11-02T09:30:00Z", "event": "email.stuck", "invoice": "INV-1",
         "reason": "sender-not-a-user", "queued_at": "2026-11-02T09:00:00Z"}]


SYNCED_89D = "  - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -89d}}"


def test_a_token_expiring_at_the_end_of_the_run_is_traced(tmp_path: Path) -> None:
    recs = traced(tmp_path, users=SYNCED_89D, extra="until: +1d", timeline="  - {at: +0s, complete_batch: B1}")
    assert [(r["t"], r["event"], r.get("user")) for r in recs[-2:]] == [(86400, "sync.expired", "u1"),
                                                                       (86400, "run.end", None)]


def test_a_lifetime_cut_to_the_very_instant_expires_the_token_then(tmp_path: Path) -> None:
    recs = traced(tmp_path, users=SYNCED_89D, extra="until: +2d",
                  timeline="  - {at: +10h, set_token_lifetime: {lifetime: 89d10h}}\n  - {at: +11h, complete_batch: B1}")
    assert [(r["t"], r["event"]) for r in recs if r["event"] in ("sync.expired", "settings.token_lifetime")] == [
        (36000, "settings.token_lifetime"), (36000, "sync.expired")]


@pytest.mark.parametrize(("reply", "spf", "reason"), [
    (DROPPED, None, "remote-disconnect"),
    (UNKNOWN_USER, None, "unknown-recipient"),
    (QUOTA, None, "mailbox-full"),
    (GREYLISTED, None, "greylisted"),
    (RATE_LIMITED, None, "rate-limited"),
    (OUTAGE, None, "remote-outage"),
    (Reply(421, "4.4.2", "bye"), None, "remote-outage"),  # any 421 is the server going away
    (Reply(451, "4.3.2", "going down"), None, "remote-outage"),  # and so is 4.3.2 with any code
    (SPF_REJECT, "fail", "spf-fail-rejected"),
    (SPF_REJECT, None, "spf-fail-rejected"),
    (SPF_REJECT, "softfail", "spf-softfail-rejected"),
    (SPF_DEFER, "temperror", "spf-temperror-deferred"),
    (SPF_DEFER, None, "spf-temperror-deferred"),
    (SPF_DEFER, "permerror", "spf-permerror-deferred"),
    (TOO_BIG, None, "message-too-big"),
    (Reply(451, "4.4.3", "no MX"), None, "mx-lookup-failed"),
    (Reply(550, "5.1.2", "no such domain"), None, "mx-lookup-failed"),
    (Reply(554, "5.4.4", "unroutable"), None, "mx-lookup-failed"),
    (TEMPFAIL, None, "remote-tempfail"),
    (Reply(499, "4.0.0", "x"), None, "remote-tempfail"),
    (Reply(500, "5.0.0", "x"), None, "remote-permfail"),
    (PERMFAIL, None, "remote-permfail"),
])
def test_each_reply_maps_to_its_reason(reply: Reply, spf: str | None, reason: str) -> None:
    assert reason_for(reply, spf) == reason


# -- the corpus as a mutation oracle: each file's trace, --json result and mailboxes, byte for byte ---------
# tests/test_golden.py checks the same digests (and the explanations) in one test over all 51 files; here
# each file is its own test without the explanation layer, so a mutant of the engine runs the few files
# that reach it and stops at the first that differs (the whole corpus takes ~1.5 s).

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("golden", ROOT / "tools" / "golden.py")
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)
GOLDEN = json.loads(golden.GOLDEN.read_text())
CORPUS = sorted(str(p.relative_to(ROOT)) for p in golden.corpus(ROOT))


def test_the_corpus_is_the_golden_one() -> None:
    assert sorted(GOLDEN) == CORPUS


@pytest.mark.parametrize("rel", CORPUS)
def test_corpus_outputs_are_the_recorded_ones(rel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # loaded by the relative path, as tools/golden.py does
    _result, got = golden.run_digests(simulator, rel, tmp_path / "trace.jsonl")
    assert got == {k: GOLDEN[rel][k] for k in ("trace", "json", "mailboxes")}


DSN_2 = """\
From: Mail Delivery System <MAILER-DAEMON@out.platform.example>
To: ar@acme.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-2-INV-2@out.platform.example>
Date: Mon, 02 Nov 2026 10:00:00 +0000
Auto-Submitted: auto-replied
Content-Type: multipart/report; report-type="delivery-status";
 boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit
MIME-Version: 1.0

This is the mail system at host out.platform.example.

Your message could not be delivered to one or more recipients.

<jane@client.example>: 550 5.1.1 Recipient address rejected: user unknown

--BOUNDARY
MIME-Version: 1.0
Content-Type: message/delivery-status

Reporting-MTA: dns; out.platform.example
Original-Envelope-Id: INV-2@mailsim.invalid
Arrival-Date: Mon, 02 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; jane@client.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 Recipient address rejected: user unknown

--BOUNDARY
MIME-Version: 1.0
Content-Type: text/rfc822-headers

Message-ID: <INV-2@mailsim.invalid>
Subject: Invoice INV-2

--BOUNDARY--
"""


def test_each_bounce_gets_its_own_whole_dsn() -> None:
    r = run(mailboxes="  - {domain: client.example, users: [someone]}",
            batches="  - {id: B1, invoices: [{id: INV-1, property: p1}, {id: INV-2, property: p1}]}")
    dsns = r.engine.transport.dsns  # type: ignore[attr-defined]
    row = ("jane@client.example", "failed", "5.1.1", "550 5.1.1 Recipient address rejected: user unknown")
    assert [(d.message_id, d.original_id, d.to, d.subject, d.recipients, d.now) for d in dsns] == [
        (f"<dsn-{i}-INV-{i}@out.platform.example>", f"<INV-{i}@mailsim.invalid>", "ar@acme.example",
         "Undelivered Mail Returned to Sender", (row,), 3600) for i in (1, 2)]
    raw = dsns[1].render().decode()
    boundary = raw.split('boundary="', 1)[1].split('"', 1)[0]
    assert raw.replace(boundary, "BOUNDARY") == DSN_2
