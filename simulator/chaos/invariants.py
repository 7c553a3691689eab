"""What must hold after any run, whatever faults hit it: the checks behind ``mailsim chaos``.

Each checker reads the finished run two ways — the engine's end state (through ``RunResult``)
and the JSONL trace, event by event — and reports where they disagree with each other or with
the rules, because a bug that loses an email usually shows up as the two stories parting: the
trace delivered something the mailbox never got, or the state says bounced where no DSN was
filed. Checkers return small :class:`Violation` records and never raise on a bad run.

The legal status graph (DESIGN §2, §4, §8; drawn in docs/chaos.md):

- while the invoice's batch is Draft: ``Pending`` ⇄ ``N/A`` (contact and property edits);
- at batch completion, once: ``Pending`` → ``In Queue``, ``N/A`` → ``N/A`` (frozen, final);
- after completion: ``In Queue`` → ``Sent`` only (``email.blocked``/``email.stuck`` only while In Queue);
  ``Sent`` is final.

Per recipient of a Sent email: ``none`` → ``deferred``* → one of ``inbox``/``junk``/``bounced``;
those three and ``skipped`` are final, and nothing is attempted after them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from simulator.domain.recipients import draft_status, plan_recipients
from simulator.domain.statuses import EmailStatus

if TYPE_CHECKING:
    from simulator.engine.result import RunResult
    from simulator.scenario.model import Scenario

#: every invariant name, in the order reports list them
INVARIANTS: tuple[str, ...] = ("no-crash", "accounting", "transitions", "delivered-once", "bounce-dsn",
                               "deterministic")
FINAL_OUTCOMES = frozenset({"inbox", "junk", "bounced", "skipped"})
MAX_PER_CHECK = 20  # one broken rule tends to repeat per email: keep the first few


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str
    invoice: str | None = None
    recipient: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = " ".join(x for x in (self.invoice, self.recipient) if x)
        return f"{self.invariant}: {where + ': ' if where else ''}{self.detail}"


Record = dict[str, Any]


def parse_trace(data: bytes) -> list[Record]:
    """The trace's event records (the header line dropped)."""
    lines = data.splitlines()
    return [orjson.loads(line) for line in lines[1:] if line.strip()]


class _Out:
    """Collects violations for one checker, at most ``MAX_PER_CHECK`` of them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Violation] = []

    def add(self, detail: str, invoice: str | None = None, recipient: str | None = None) -> None:
        if len(self.items) < MAX_PER_CHECK:
            self.items.append(Violation(self.name, detail, invoice, recipient))


# -- (a) accounting ------------------------------------------------------------------------------------


def check_accounting(result: RunResult, records: Sequence[Record]) -> list[Violation]:
    """Every invoice is in exactly one bucket; nothing is In Queue without a reason or adrift after sending."""
    out = _Out("accounting")
    eng = result.engine
    acc = result.accounting()
    total = sum(b.count for b in eng.scn.batches)
    if acc.get("lost", 0):
        out.add(f"accounting() reports lost={acc['lost']}")
    parts = sum(acc.get(k, 0) for k in ("draft", "not_emailed", "in_queue", "sent"))
    if acc.get("invoices", 0) != total or parts != total:
        out.add(f"{total} invoices in the scenario, accounting() has invoices={acc.get('invoices', 0)} and "
                f"draft+not_emailed+in_queue+sent={parts}")
    poll = eng.settings.queue_poll
    end_iso = eng.scn.iso(result.end)
    retry_at: dict[tuple[str, str], str] = {}
    for r in records:
        if r["event"] == "email.deferred":
            retry_at[(r["invoice"], r["recipient"].lower())] = r["retry_at"]
    for _b, _i, inv, _pid, e in eng.iter_invoices():
        if e is None:
            continue
        if e.status == EmailStatus.IN_QUEUE:
            if e.reason is None and (e.queued_at is None or result.end - e.queued_at >= poll):
                out.add(f"In Queue without a reason since {eng.scn.iso(e.queued_at or 0)}", inv)
        elif e.status == EmailStatus.SENT:
            for rc in e.recipients:
                key = (inv, rc.address.lower())
                # a retry or a slow reply still under way leaves the last outcome standing: only with
                # nothing pending in the MTA is a deferred or unattempted recipient stranded
                if rc.outcome == "deferred" and retry_at.get(key, "") <= end_iso and eng.mta.pending == 0:
                    out.add(f"deferred at the end with no retry after it (last retry_at {retry_at.get(key)}, "
                            f"end {end_iso})", inv, rc.address)
                elif rc.outcome == "none" and eng.mta.pending == 0:
                    out.add("never attempted, and nothing is pending in the MTA", inv, rc.address)
        elif e.status != EmailStatus.NA:
            out.add(f"unknown email status {e.status!r}", inv)
    return out.items


# -- (b) status transitions ------------------------------------------------------------------------------


def _initial_status(scn: Scenario) -> dict[str, str]:
    """Each property's Draft status from the scenario itself (the trace only has per-batch counts)."""
    contacts = {c.id: c for c in scn.contacts}
    roles = scn.organization.configuration.invoice_recipients
    return {p.id: str(draft_status(plan_recipients(p, contacts, roles))[0]) for p in scn.properties}


def check_transitions(result: RunResult, records: Sequence[Record]) -> list[Violation]:
    """Walk every ``invoice.status``/``email.*`` event through the legal graph; the end must match the state."""
    out = _Out("transitions")
    eng = result.engine
    scn = eng.scn
    init = _initial_status(scn)
    status: dict[str, str] = {}
    batch_of: dict[str, str] = {}
    for b in scn.batches:
        for inv_id, pid in b.iter_invoices():
            status[inv_id] = init.get(pid, "?")
            batch_of[inv_id] = b.id
    completed: set[str] = set()
    frozen: set[str] = set()  # invoices whose completion event was seen
    outcome: dict[tuple[str, str], str] = {}
    for r in records:
        ev = r["event"]
        inv = r.get("invoice")
        if ev == "batch.completed":
            if r["batch"] in completed:
                out.add(f"batch {r['batch']} completed twice (seq {r['seq']})")
            completed.add(r["batch"])
            continue
        if inv is None:
            continue
        cur = status.get(inv)
        if cur is None:
            out.add(f"{ev} for an invoice the scenario does not have (seq {r['seq']})", inv)
            continue
        if ev == "invoice.status":
            new = r["email_status"]
            if batch_of[inv] not in completed:
                if new not in (EmailStatus.PENDING, EmailStatus.NA) or new == cur:
                    out.add(f"{cur} → {new} while the batch is Draft (seq {r['seq']})", inv)
            elif inv in frozen:
                out.add(f"{cur} → {new} after completion (seq {r['seq']}); only In Queue → Sent may follow", inv)
            else:
                frozen.add(inv)
                if (cur, new) not in ((EmailStatus.PENDING, EmailStatus.IN_QUEUE), (EmailStatus.NA, EmailStatus.NA)):
                    out.add(f"{cur} → {new} at batch completion (seq {r['seq']})", inv)
            status[inv] = new
        elif ev in ("email.blocked", "email.stuck"):
            if cur != EmailStatus.IN_QUEUE:
                out.add(f"{ev} while {cur} (seq {r['seq']})", inv)
        elif ev == "email.sent":
            if cur != EmailStatus.IN_QUEUE:
                out.add(f"{cur} → Sent (seq {r['seq']}); only In Queue may be sent", inv)
            status[inv] = EmailStatus.SENT.value
        elif ev in ("smtp.reply", "email.deferred", "email.delivered", "email.bounced"):
            rcpt = str(r["recipient"]).lower()
            if cur != EmailStatus.SENT:
                out.add(f"{ev} while the email is {cur} (seq {r['seq']})", inv, rcpt)
            prev = outcome.get((inv, rcpt), "none")
            if prev in FINAL_OUTCOMES:
                out.add(f"{ev} after the final outcome {prev} (seq {r['seq']})", inv, rcpt)
            if ev == "email.deferred":
                outcome[(inv, rcpt)] = "deferred"
            elif ev == "email.delivered":
                outcome[(inv, rcpt)] = str(r["folder"])
            elif ev == "email.bounced":
                outcome[(inv, rcpt)] = "bounced"
    for v in result.invoices():
        want = status.get(v.id)
        if v.email_status != want:
            out.add(f"the state says {v.email_status}, the trace's events lead to {want}", v.id)
    for _b, _i, inv, _pid, e in eng.iter_invoices():
        if e is None:
            continue
        for rc in e.recipients:
            traced = outcome.get((inv, rc.address.lower()), "none")
            if rc.outcome == "skipped":
                if traced != "none":
                    out.add(f"skipped ({rc.reason}) yet the trace has it {traced}", inv, rc.address)
            elif rc.outcome != traced:
                out.add(f"the state says {rc.outcome}, the trace's events lead to {traced}", inv, rc.address)
    return out.items


# -- (c) nothing delivered twice -------------------------------------------------------------------------


def check_delivered_once(result: RunResult, records: Sequence[Record]) -> list[Violation]:
    """At most one delivery per (message, recipient); the mailboxes hold exactly what the trace delivered.

    "Exactly" includes where and when: a copy filed at another time than its ``email.delivered``
    means the mailbox and the sender disagree about when the transaction ended (a run stopped in
    between shows a message in the inbox that the platform has not delivered).
    """
    out = _Out("delivered-once")
    per: Counter[tuple[str, str]] = Counter()
    folders: dict[str, Counter[str]] = defaultdict(Counter)
    when: dict[tuple[str, str], tuple[str, int]] = {}  # (message id, address) -> (folder, time) per the trace
    for r in records:
        if r["event"] == "email.delivered":
            rcpt = str(r["recipient"]).lower()
            per[(r["invoice"], rcpt)] += 1
            folders[rcpt][str(r["folder"])] += 1
            when[(f"<{r['invoice']}@mailsim.invalid>", rcpt)] = (str(r["folder"]), int(r["t"]))
    for (inv, rcpt), n in sorted(per.items()):
        if n > 1:
            out.add(f"delivered {n} times", inv, rcpt)
    boxes = result.engine.store.boxes
    for addr in sorted(set(boxes) | set(folders)):
        box = boxes.get(addr)
        inbox, junk = (box.inbox, box.junk) if box is not None else (0, 0)
        want = folders.get(addr, Counter())
        if (inbox, junk) != (want["inbox"], want["junk"]):
            out.add(f"mailbox holds inbox={inbox} junk={junk}; the trace delivered inbox={want['inbox']} "
                    f"junk={want['junk']}", recipient=addr)
        if box is not None:
            ids = Counter((mid, folder) for mid, folder, _t in box.messages if folder != "bounce")
            for (mid, folder), n in sorted(ids.items()):
                if n > 1:
                    out.add(f"{mid} stored {n} times in {folder}", recipient=addr)
            for mid, folder, t in box.messages:
                traced = when.get((mid, addr))
                if folder != "bounce" and traced is not None and traced != (folder, t):
                    iso = result.engine.scn.iso
                    out.add(f"{mid} stored in {folder} at {iso(t)}, but the trace delivers it to {traced[0]} at "
                            f"{iso(traced[1])}", recipient=addr)
    return out.items


# -- (d) every bounce has its DSN ------------------------------------------------------------------------


def check_bounce_dsn(result: RunResult, records: Sequence[Record]) -> list[Violation]:
    """Each bounce names a DSN, and the sender's mailbox holds exactly those DSNs, once each.

    The MTA issues one DSN per message per attempt that bounced recipients (all of that domain's
    bounced recipients on one report), so several ``email.bounced`` events may share a DSN id.
    """
    out = _Out("bounce-dsn")
    want: dict[str, set[str]] = defaultdict(set)
    bounced_events: Counter[tuple[str, str]] = Counter()
    for r in records:
        if r["event"] != "email.bounced":
            continue
        rcpt = str(r["recipient"]).lower()
        bounced_events[(r["invoice"], rcpt)] += 1
        if not r.get("dsn") or not r.get("dsn_to"):
            out.add("bounced without a DSN id or DSN recipient in the trace", r["invoice"], rcpt)
            continue
        want[str(r["dsn_to"]).lower()].add(str(r["dsn"]))
    boxes = result.engine.store.boxes
    for addr in sorted(set(want) | {a for a, b in boxes.items() if b.bounces}):
        box = boxes.get(addr)
        held = Counter(mid for mid, folder, _t in box.messages if folder == "bounce") if box is not None else Counter()
        expected = want.get(addr, set())
        missing = sorted(expected - set(held))
        extra = sorted(set(held) - expected)
        dup = sorted(m for m, n in held.items() if n > 1)
        count = box.bounces if box is not None else 0
        if missing:
            out.add(f"{len(missing)} DSN(s) never reached the sender's mailbox, e.g. {missing[0]}", recipient=addr)
        if extra:
            out.add(f"{len(extra)} DSN(s) in the mailbox with no bounce in the trace, e.g. {extra[0]}",
                    recipient=addr)
        if dup:
            out.add(f"DSN {dup[0]} filed {held[dup[0]]} times", recipient=addr)
        if count != len(expected):
            out.add(f"bounces={count}, but the trace's bounces name {len(expected)} DSN(s)", recipient=addr)
    for _b, _i, inv, _pid, e in result.engine.iter_invoices():
        if e is None:
            continue
        for rc in e.recipients:
            n = bounced_events.get((inv, rc.address.lower()), 0)
            if (rc.outcome == "bounced") != (n == 1):
                out.add(f"outcome {rc.outcome} with {n} bounce event(s)", inv, rc.address)
    return out.items


# -- (e) determinism -------------------------------------------------------------------------------------


def check_deterministic(a: bytes, b: bytes) -> list[Violation]:
    """Two runs of one scenario must write the same trace, byte for byte (DESIGN §3)."""
    if a == b:
        return []
    la, lb = a.splitlines(), b.splitlines()
    k = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    first = la[k].decode(errors="replace")[:200] if k < len(la) else "(ended)"
    second = lb[k].decode(errors="replace")[:200] if k < len(lb) else "(ended)"
    return [Violation("deterministic", f"traces differ at line {k + 1}: {first} ≠ {second}")]


CHECKS = (check_accounting, check_transitions, check_delivered_once, check_bounce_dsn)


def check_all(result: RunResult, records: Sequence[Record]) -> list[Violation]:
    out: list[Violation] = []
    for check in CHECKS:
        out.extend(check(result, records))
    return out


def names(violations: Iterable[Violation]) -> list[str]:
    """The distinct invariants violated, in report order."""
    seen = {v.invariant for v in violations}
    return [n for n in INVARIANTS if n in seen]
