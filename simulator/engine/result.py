"""What a run produced: per-invoice outcomes, mailboxes, expectations, accounting.

Views are computed from the engine's state on demand (a million invoices are
never copied into a second structure unless the caller iterates them), and the
same view functions serve the checkpoints that evaluate ``expect`` mid-run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.domain.display import visible
from simulator.domain.entities import Batch, Settings
from simulator.domain.events import CompleteBatch
from simulator.domain.recipients import RecipientPlan, billing_contact_warnings
from simulator.domain.statuses import BatchStatus, EmailStatus, Outcome
from simulator.domain.world import World
from simulator.domain.world import apply as apply_event
from simulator.engine.records import AppliedEvent as AppliedEvent
from simulator.engine.records import BlockRecord as BlockRecord
from simulator.engine.records import LoginRecord as LoginRecord
from simulator.engine.records import QueueView as QueueView
from simulator.engine.records import SenderView as SenderView
from simulator.engine.records import SendRecord as SendRecord
from simulator.engine.records import SyncRecord as SyncRecord
from simulator.engine.records import queue_view
from simulator.engine.state import state_key
from simulator.engine.status_view import InvoiceStatus, status_of
from simulator.scenario.model import Expectation, Scenario

if TYPE_CHECKING:
    from simulator.engine.sim import Engine
    from simulator.engine.state import Email, RcptSet


# plain strings for the per-email loops (an enum member is a slow attribute lookup there)
_NA, _IN_QUEUE, _SENT = EmailStatus.NA.value, EmailStatus.IN_QUEUE.value, EmailStatus.SENT.value
_INBOX = Outcome.INBOX.value

@dataclass(frozen=True, slots=True)
class RecipientView:
    """One recipient of an invoice email as the report shows it: outcome, reason, SMTP codes, folder, when."""

    email: str
    outcome: str
    reason: str | None
    smtp_code: int | None
    enhanced_code: str | None
    folder: str | None
    at: int | None
    attempts: int
    contact: str
    evidence: str | None
    address: str | None = None  # the envelope recipient SMTP used (A-label domain), None when skipped

    def named(self, key: str) -> bool:
        """Is this the recipient ``key`` (trimmed, lower case) names, by its address as typed or as sent?"""
        return key in (self.email.strip().lower(), self.address)


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """One invoice as the Invoicing module shows it, with its email's timeline and recipients."""

    id: str
    batch: str
    property: str
    batch_status: str
    email_status: str
    reason: str | None
    notes: tuple[str, ...]
    completed_at: int | None
    queued_at: int | None
    sent_at: int | None
    stuck_at: int | None
    sender: str | None
    sender_path: str | None
    client_ip: str | None
    recipients: tuple[RecipientView, ...]


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """One ``expect:`` entry checked: whether it held, and what was seen instead."""

    ok: bool
    text: str
    detail: str
    loc: str = ""


def _plan_view(p: RecipientPlan) -> RecipientView:
    if p.skip_reason is None:
        return RecipientView(p.email, "none", None, None, None, None, None, 0, p.contact, None)
    return RecipientView(p.email, "skipped", p.skip_reason, None, None, None, None, 0, p.contact, p.detail or None)


def _draft_notes(eng: Engine, pid: str) -> tuple[str, ...]:
    """A Draft invoice's warnings: the ones its email would carry if the batch completed now (§8: in every status)."""
    roles = eng.org.configuration.invoice_recipients
    return ("billing-contact-not-emailed",) if billing_contact_warnings(eng.properties[pid], roles) else ()


def invoice_view(eng: Engine, b: Batch, inv: str, pid: str, e: Email | None) -> InvoiceView:
    if e is None:
        status, reason = eng.prop_status[pid]
        plans = eng.prop_plans[pid]
        return InvoiceView(inv, b.id, pid, eng.batch_status[b.id], str(status), reason, _draft_notes(eng, pid), None,
                           None, None, None, None, None, None, tuple(_plan_view(p) for p in plans))
    rcpts = tuple(
        RecipientView(r.plan.email, r.outcome, r.reason, r.code, r.enhanced, r.folder, r.at, r.attempts,
                      r.plan.contact, r.evidence or (r.plan.detail or None), r.plan.address or None)
        for r in e.recipients
    )
    return InvoiceView(inv, b.id, pid, eng.batch_status[b.id], e.status, e.reason, e.notes, e.completed_at,
                       e.queued_at, e.sent_at, e.stuck_at, e.sender, e.sender_path, e.client_ip, rcpts)


def _located(eng: Engine, invoice: str) -> tuple[Batch, str, Email | None] | None:
    """``invoice``'s batch, property and email (None before its batch completes); None: no such invoice."""
    loc = eng.locate(invoice)
    if loc is None:
        return None
    b, i = loc
    es = eng.emails.get(b.id)
    return b, b.property_of(i), es[i] if es is not None else None


def view_of(eng: Engine, invoice: str) -> InvoiceView | None:
    found = _located(eng, invoice)
    return invoice_view(eng, found[0], invoice, found[1], found[2]) if found is not None else None


def record_watched(eng: Engine) -> None:
    """Record the current state of each watched invoice (for ``never … until`` expectations)."""
    for (inv, rcpt), seen in eng.watch.items():
        v = view_of(eng, inv)
        if v is None:
            continue
        seen.add(f"email_status={v.email_status}")
        seen.add(f"batch_status={v.batch_status}")
        if v.reason:
            seen.add(f"reason={v.reason}")
        key = rcpt.strip().lower() if rcpt else None
        for r in v.recipients:
            if key is not None and not r.named(key):
                continue
            seen.add(f"outcome={r.outcome}")
            if r.reason:
                seen.add(f"reason={r.reason}")


def _find_rcpt(v: InvoiceView, address: str) -> RecipientView | None:
    key = address.strip().lower()
    for r in v.recipients:
        if r.named(key):
            return r
    return None


def evaluate(eng: Engine, x: Expectation, now: int) -> ExpectationResult:
    def res(ok: bool, detail: str) -> ExpectationResult:
        return ExpectationResult(ok, x.text, detail, x.loc)

    at = eng.scn.iso(now)
    if x.mailbox is not None:
        box = eng.store.box(x.mailbox)
        fails = []
        for key, want in (("bounces", x.bounces), ("inbox", x.inbox), ("junk", x.junk)):
            if want is not None and getattr(box, key) != want:
                fails.append(f"{key}={getattr(box, key)} (expected {want})")
        actual = f"inbox={box.inbox} junk={box.junk} bounces={box.bounces}"
        return res(not fails, f"at {at}: {x.mailbox} has {actual}" + (f"; {'; '.join(fails)}" if fails else ""))
    if x.count is not None:
        n = _count(eng, x.count)
        want = x.equals if x.equals is not None else 0
        crit = ", ".join(f"{k}={v}" for k, v in x.count)
        return res(n == want, f"at {at}: {n} with {crit} (expected {want})")
    if x.invoice is None:
        return res(False, "expectation names no invoice, mailbox or count")
    v = view_of(eng, x.invoice)
    if v is None:
        return res(False, f"no invoice {x.invoice}")
    if x.never is not None:
        # every state the invoice passed through, recorded after each model step (Engine.observe)
        seen = eng.watch.get((x.invoice, x.recipient), set())
        bad = [f"{k}={val}" for k, val in x.never if f"{k}={val}" in seen]
        shown = sorted(s for s in seen if not s.startswith("batch_status"))
        return res(not bad, f"until {at}: seen {shown}" + (f"; violated {bad}" if bad else ""))
    if x.recipient is not None:
        r = _find_rcpt(v, x.recipient)
        if r is None:
            listed = ", ".join(visible(o.email) for o in v.recipients) or "none"
            return res(False, f"{visible(x.recipient)} is not a recipient of {x.invoice} (its recipients: {listed})")
        ok = (x.outcome is None or r.outcome == x.outcome) and (x.reason is None or r.reason == x.reason)
        state = "not sent yet" if r.outcome == "none" else f"since {eng.scn.iso(r.at)}" if r.at is not None else ""
        detail = f"at {at}: {visible(r.email)} outcome={r.outcome}" + (f" ({state})" if state else "")
        return res(ok, detail + (f", reason={r.reason}" if r.reason else ", no reason code"))
    ok = True
    if x.email_status is not None and v.email_status != x.email_status:
        ok = False
    if x.batch_status is not None and v.batch_status != x.batch_status:
        ok = False
    if x.reason is not None and v.reason != x.reason:
        ok = False
    if x.outcome is not None:
        ok = ok and any(r.outcome == x.outcome for r in v.recipients)
    clean = " (sent cleanly)" if v.email_status == EmailStatus.SENT else ""
    why = f"reason={v.reason}" if v.reason else f"no reason code{clean}"
    return res(ok, f"at {at}: {v.id} batch={v.batch_status} email_status={v.email_status}, {why}")


def _count(eng: Engine, crit: tuple[tuple[str, str], ...]) -> int:
    """How many invoices (or, with ``outcome``, recipients) match, read straight off the engine state."""
    want = dict(crit)
    status, batch_status, reason, outcome = (want.get("email_status"), want.get("batch_status"),
                                             want.get("reason"), want.get("outcome"))
    n = 0
    # on statuses alone, the completed batches' emails are counted by the engine as they change status:
    # no pass over a million emails (which at that size costs more per email than building them did)
    by_status = reason is None and outcome is None
    if by_status and batch_status in (None, BatchStatus.SENT):
        counts: dict[str, int] = {EmailStatus.IN_QUEUE: eng.queued, EmailStatus.SENT: eng.sent_count,
                                  EmailStatus.NA: eng.na_count}
        n += sum(counts.values()) if status is None else counts.get(status, 0)
    for b in eng.scn.batches:
        if batch_status is not None and eng.batch_status[b.id] != batch_status:
            continue
        es = eng.emails.get(b.id)
        if es is None:  # Draft: every invoice of a property shares its status and recipients
            for pid in b.property_ids():
                st, why = eng.prop_status[pid]
                if status is not None and st != status:
                    continue
                plans = eng.prop_plans[pid]
                if reason is not None and why != reason and not any(p.skip_reason == reason for p in plans):
                    continue
                per = 1
                if outcome is not None:  # a Draft invoice's recipients are "none" or "skipped" (as in its view)
                    per = sum(1 for p in plans if (p.skip_reason is None) == (outcome == "none")
                              and outcome in ("none", "skipped"))
                n += per * b.count_for(pid)
            continue
        if by_status:
            continue
        for e in es:
            if status is not None and e.status != status:
                continue
            if reason is not None and e.reason != reason and not any(r.reason == reason for r in e.recipients):
                continue
            if outcome is not None:
                n += sum(1 for r in e.recipients if r.outcome == outcome)
            else:
                n += 1
    return n


@dataclass
class RunStatistics:
    """What an analyst sweeps over, tallied in one pass without building a view per invoice.

    ``status`` counts invoices by email status, ``outcome`` recipients by outcome,
    ``in_queue_reasons`` the blocking reasons of emails still In Queue (``waiting-for-poll``
    when none was decided yet), ``stuck`` the emails that passed ``stuck_after``, and
    ``inbox_latencies`` the seconds from batch completion to each inbox delivery, sorted.
    """

    status: Counter[str] = field(default_factory=Counter)
    outcome: Counter[str] = field(default_factory=Counter)
    in_queue_reasons: Counter[str] = field(default_factory=Counter)
    stuck: int = 0
    inbox_latencies: list[int] = field(default_factory=list)


def run_statistics(eng: Engine) -> RunStatistics:
    out = RunStatistics()
    status, outcome, reasons, latency = out.status, out.outcome, out.in_queue_reasons, out.inbox_latencies
    for b in eng.scn.batches:
        es = eng.emails.get(b.id)
        if es is None:  # Draft: every invoice of a property shares its status and recipients
            for pid in b.property_ids():
                n = b.count_for(pid)
                status[str(eng.prop_status[pid][0])] += n
                for p in eng.prop_plans[pid]:
                    outcome["none" if p.skip_reason is None else "skipped"] += n
            continue
        for e in es:
            status[e.status] += 1
            if e.stuck_at is not None:
                out.stuck += 1
            if e.status == _IN_QUEUE:
                reasons[e.reason or "waiting-for-poll"] += 1
            done = e.completed_at
            for r in e.recipients:
                outcome[r.outcome] += 1
                if r.outcome == _INBOX and r.at is not None and done is not None:
                    latency.append(r.at - done)
    latency.sort()
    return out


@dataclass
class RunResult:
    """A finished run, read-only: the public view every layer above the engine reads a run through.

    ``invoices()``/``invoice()`` give each invoice as the Invoicing module shows it,
    ``statistics()`` the counts an analyst sweeps, ``mailboxes()``/``accounting()`` where
    every email ended up, ``to_json()`` the contract JSON (DESIGN §5), ``world`` the
    domain's World at the end (users, syncs, contacts, settings as they stood).
    """

    engine: Engine
    end: int
    expectations: list[ExpectationResult] = field(default_factory=list)
    _worlds: list[World] = field(default_factory=list, repr=False, compare=False)  # see world_after
    # True when the engine will not move again (simulate's result): per-batch tallies are then kept
    final: bool = field(default=False, repr=False, compare=False)
    _tallied: dict[str, list[Tally]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def scenario(self) -> str:
        return self.engine.scn.name

    # -- the documented read-only view (explain reads a run only through these) ----------------
    @property
    def spec(self) -> Scenario:
        """The scenario the run was made from (with any ``--seed``/``--at`` override applied)."""
        return self.engine.scn

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def total_invoices(self) -> int:
        return self.engine.total_invoices

    @property
    def events(self) -> tuple[AppliedEvent, ...]:
        """Every timeline event the run applied (injected ones included), in the order applied."""
        return tuple(AppliedEvent(ev, refused) for ev, refused in self.engine.events_applied)

    def world_after(self, n: int) -> World:
        """The world after the first ``n`` applied events: the domain's ``apply`` replayed from the start.

        The same function the engine applied, so the world it gives for ``n = len(events)`` is the
        run's own; the worlds are kept, so asking for many moments replays each event once.
        """
        worlds = self._worlds
        if not worlds:
            worlds.append(self.engine.initial_world)
        applied = self.engine.events_applied
        n = max(0, min(n, len(applied)))
        while len(worlds) <= n:
            worlds.append(apply_event(worlds[-1], applied[len(worlds) - 1][0]).world)
        return worlds[n]

    def world_at(self, t: int) -> World:
        """The world as it stood at ``t``: after every event applied at or before ``t`` (they precede a poll at t)."""
        applied = self.engine.events_applied
        n = 0
        while n < len(applied) and applied[n][0].at <= t:
            n += 1
        return self.world_after(n)

    def completion_index(self, batch: str) -> int | None:
        """How many events had been applied once ``batch`` completed (None: still Draft)."""
        for i, (ev, refused) in enumerate(self.engine.events_applied):
            if isinstance(ev, CompleteBatch) and ev.batch == batch and refused is None:
                return i + 1
        return None

    def logins(self, user: str) -> tuple[LoginRecord, ...]:
        return tuple(LoginRecord(t, refreshed) for t, refreshed in self.engine.login_log.get(user, ()))

    def syncs(self, user: str) -> tuple[SyncRecord, ...]:
        return tuple(SyncRecord(t, kind) for t, kind in self.engine.sync_log.get(user, ()))

    def send_record(self, invoice: str) -> SendRecord | None:
        """How ``invoice``'s email was sent (None: not sent, or no such invoice)."""
        e = self.engine.email_of(invoice)
        send = e.send if e is not None else None
        if send is None:
            return None
        return SendRecord(send.at, send.sender, send.path, send.provider, send.client_ip, send.helo)

    def queue_of(self, invoice: str) -> QueueView | None:
        """The queue ``invoice``'s email waited in (None: never queued — Draft or N/A)."""
        e = self.engine.email_of(invoice)
        group = e.group if e is not None else None
        return queue_view(group) if group is not None else None

    @property
    def ok(self) -> bool:
        return all(x.ok for x in self.expectations)

    def invoices(self) -> Iterator[InvoiceView]:
        eng = self.engine
        for b, _i, inv, pid, e in eng.iter_invoices():
            yield invoice_view(eng, b, inv, pid, e)

    def invoice(self, invoice: str) -> InvoiceView | None:
        return view_of(self.engine, invoice)

    def invoice_status(self, invoice: str) -> InvoiceStatus | None:
        """Where ``invoice`` stands, without the full view (the timeline player reads it after every step)."""
        found = _located(self.engine, invoice)
        return status_of(self.engine, found[0], invoice, found[1], found[2]) if found is not None else None

    def invoice_statuses(self) -> Iterator[InvoiceStatus]:
        """Every invoice's :class:`InvoiceStatus`, in the order of :meth:`invoices`."""
        eng = self.engine
        for b, _i, inv, pid, e in eng.iter_invoices():
            yield status_of(eng, b, inv, pid, e)

    @property
    def world(self) -> World:
        return self.engine.world

    def iso(self, t: int) -> str:
        """The instant ``t`` seconds after the scenario's start, as every output writes it."""
        return self.engine.scn.iso(t)

    def statistics(self) -> RunStatistics:
        return run_statistics(self.engine)

    def summary_groups(self) -> Counter[tuple[str, str, str, str]]:
        """Invoices per (batch status, email status, reason, recipient outcomes), straight off the state.

        What the CLI shows for large runs: counted per distinct (status, reason, recipient set) of a
        batch (:func:`_tally`), so a shared recipient set is summarised once, not once per email.
        """
        eng = self.engine
        out: Counter[tuple[str, str, str, str]] = Counter()

        def outcomes(items: Iterator[tuple[str, str | None]]) -> str:
            return ",".join(sorted({o + (f":{r}" if r else "") for o, r in items}))

        for b in eng.scn.batches:
            bs = eng.batch_status[b.id]
            es = eng.emails.get(b.id)
            if es is None:
                for pid in b.property_ids():
                    st, why = eng.prop_status[pid]
                    outs = outcomes(("none", None) if p.skip_reason is None else ("skipped", p.skip_reason)
                                    for p in eng.prop_plans[pid])
                    out[(bs, st, why or "", outs)] += b.count_for(pid)
                continue
            seen: dict[int, str] = {}
            for (status, reason, rs), n in self._tally(b.id, es):
                cached = seen.get(id(rs))
                if cached is None:
                    cached = seen[id(rs)] = outcomes((r.outcome, r.reason) for r in rs)
                out[(bs, status, reason or "", cached)] += n
        return out

    def mailboxes(self) -> dict[str, dict[str, int]]:
        return {addr: {"inbox": b.inbox, "junk": b.junk, "bounces": b.bounces}
                for addr, b in sorted(self.engine.store.boxes.items())}

    def stored(self) -> Iterator[tuple[str, str, str, int]]:
        """Every copy the run stored, mailbox by mailbox (sorted): (address, folder, message id, time).

        ``folder`` is ``inbox``, ``junk`` or ``bounce`` (a DSN in the sender's own mailbox); the
        copies ``mailsim run --maildir`` writes, one file each (a DSN for an empty sender has no file).
        """
        for addr, box in sorted(self.engine.store.boxes.items()):
            for message_id, folder, at in box.messages:
                yield addr, folder, message_id, at

    def _tally(self, batch: str, emails: list[Email]) -> list[Tally]:
        """:func:`tally` of one batch's emails; kept for a final result (the summary reads it twice)."""
        if not self.final:
            return tally(emails)
        got = self._tallied.get(batch)
        if got is None:
            got = self._tallied[batch] = tally(emails)
        return got

    def accounting(self) -> dict[str, int]:
        """Where every invoice email ended up; ``lost`` must be 0 (nothing is lost)."""
        c: Counter[str] = Counter()
        poll = self.engine.settings.queue_poll
        for b in self.engine.scn.batches:
            es = self.engine.emails.get(b.id)
            if es is None:
                c["draft"] += b.count
                continue
            for (status, reason, rs), n in self._tally(b.id, es):
                c["invoices"] += n
                if status == _NA:
                    c["not_emailed"] += n
                elif status == _IN_QUEUE:
                    c["in_queue"] += n
                    if reason is None:
                        # without a blocking reason an email may only be waiting for the next poll
                        c["lost"] += sum(1 for e in es if e.status == _IN_QUEUE and e.reason is None
                                         and e.recipients is rs
                                         and (e.queued_at is None or self.end - e.queued_at >= poll))
                elif status == _SENT:
                    c["sent"] += n
                    for r in rs:
                        if r.outcome == "none":
                            c["in_flight"] += n
                        else:
                            c[r.outcome] += n
                else:
                    c["lost"] += n
        c["invoices"] += c["draft"]
        c.setdefault("lost", 0)
        return dict(sorted(c.items()))

    def to_json(self) -> dict[str, Any]:
        scn = self.engine.scn
        iso = scn.iso

        def t(x: int | None) -> str | None:
            return iso(x) if x is not None else None

        return {
            "scenario": scn.name,
            "seed": scn.seed,
            "end": iso(self.end),
            "invoices": [
                {
                    "id": v.id, "batch": v.batch, "batch_status": v.batch_status, "email_status": v.email_status,
                    "reason": v.reason, "notes": list(v.notes), "completed_at": t(v.completed_at),
                    "queued_at": t(v.queued_at), "sent_at": t(v.sent_at), "stuck": v.stuck_at is not None,
                    "sender": v.sender,
                    "recipients": [
                        {"email": r.email, "outcome": r.outcome, "reason": r.reason, "smtp_code": r.smtp_code,
                         "enhanced_code": r.enhanced_code, "folder": r.folder, "at": t(r.at),
                         "attempts": r.attempts}
                        for r in v.recipients
                    ],
                }
                for v in self.invoices()
            ],
            "mailboxes": self.mailboxes(),
            "expectations": [{"ok": x.ok, "text": x.text, "detail": x.detail} for x in self.expectations],
            "accounting": self.accounting(),
        }


Tally = tuple[tuple[str, str | None, "RcptSet"], int]  # ((email status, reason, recipients), emails)


def tally(emails: list[Email]) -> list[Tally]:
    """The emails of one batch counted per distinct (status, reason, recipient set), in first-seen order.

    The outputs of a million-email run depend on the emails only through these three, and the emails
    of a batch share a handful of each: counting them with C-level iteration (no Python code per
    email: one map of state_key and one Counter pass) is what keeps the printed summary and the accounting
    O(distinct states), ≈0.2 s at 1M. A recipient set keys by identity (``RcptSet`` is state, not a value).
    """
    return list(Counter(map(state_key, emails)).items())
