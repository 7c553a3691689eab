"""Compare two runs — each a scenario file or a trace — and say where and how they part.

Two answers:

* **the first divergence**: the two event streams are walked side by side with
  ``seq`` and the source location ``line`` (which names the file) ignored, and
  ``expectations_ok`` dropped from ``run.end`` (expectations belong to the file,
  not the run). At the first position where the events differ, a short
  ``difflib`` alignment of what follows tells an event only one run has (B's
  injected ``login``) from an event both have with different fields (a key-level
  diff). The divergence is dated by the earlier of the two events: that is when
  the runs parted.
* **the invoices whose outcome differs**: email status, reason and each
  recipient's outcome and reason, side by side with the time each was reached.

A scenario is run (its trace captured in a temporary file) and its final state
read from the :class:`~simulator.engine.result.RunResult`. A trace is read as is;
its final state comes from re-running its scenario when that reproduces the trace
byte for byte (``replay``), and otherwise from its own events (then invoices and
recipients that never appear in the trace are *unknown*, never counted as
different).
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.domain.statuses import BatchStatus, EmailStatus
from simulator.engine.result import RunResult
from simulator.replay.replay import KeyChange, TraceInputError, is_trace, key_diff, read_records, replay
from simulator.scenario.errors import ScenarioError
from simulator.scenario.model import Scenario

__all__ = [
    "DiffResult",
    "Divergence",
    "InvoiceDiff",
    "Outcome",
    "RecipientOutcome",
    "Run",
    "diff",
    "diff_runs",
    "first_divergence",
    "load_run",
    "outcomes_from_records",
    "outcomes_from_result",
    "run_scenario",
]

IGNORED_KEYS = frozenset({"seq", "line"})
# the keys that say *what* an event is about: two events with the same ones are "the same event"
SUBJECT_KEYS = ("event", "invoice", "recipient", "user", "batch", "contact", "property", "name", "type", "fault",
                "where")
WINDOW = 400  # events looked at past the first difference to align what follows
SHOWN = 5  # events listed per side for an insertion/replacement


# -- final outcomes ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    email: str
    outcome: str
    reason: str | None
    at: str | None  # when this outcome was reached (ISO)
    attempts: int | None = None
    address: str | None = None  # the envelope recipient, as the trace names it (an IDN's A-label form)

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "outcome": self.outcome, "reason": self.reason, "at": self.at,
                "attempts": self.attempts}


@dataclass(frozen=True, slots=True)
class Outcome:
    """An invoice's final state as far as one run tells it."""

    invoice: str
    batch: str
    batch_status: str
    email_status: str | None  # None: unknown (a Draft invoice a trace never mentions)
    reason: str | None
    since: str | None  # when the email status (or, while In Queue, the reason) was reached
    stuck_at: str | None
    recipients: tuple[RecipientOutcome, ...]

    def recipient(self, email: str) -> RecipientOutcome | None:
        key = email.strip().lower()
        for r in self.recipients:
            if key in (r.email.strip().lower(), r.address):
                return r
        return None

    def to_json(self) -> dict[str, Any]:
        return {"invoice": self.invoice, "batch": self.batch, "batch_status": self.batch_status,
                "email_status": self.email_status, "reason": self.reason, "since": self.since,
                "stuck_at": self.stuck_at, "recipients": [r.to_json() for r in self.recipients]}


def outcomes_from_result(result: RunResult) -> dict[str, Outcome]:
    """Every invoice's final state from a finished run."""
    iso = result.engine.scn.iso

    def t(x: int | None) -> str | None:
        return iso(x) if x is not None else None

    out: dict[str, Outcome] = {}
    for v in result.invoices():
        if v.email_status == EmailStatus.SENT:
            since = v.sent_at
        elif v.email_status == EmailStatus.IN_QUEUE:
            since = v.queued_at
        else:
            since = v.completed_at
        rcpts = tuple(RecipientOutcome(r.email, r.outcome, r.reason, t(r.at), r.attempts, r.address)
                      for r in v.recipients)
        out[v.id] = Outcome(v.id, v.batch, v.batch_status, v.email_status, v.reason, t(since), t(v.stuck_at), rcpts)
    return out


@dataclass
class _Acc:
    batch: str
    batch_status: str = BatchStatus.DRAFT.value
    email_status: str | None = None
    reason: str | None = None
    since: str | None = None
    stuck_at: str | None = None
    recipients: dict[str, list[Any]] = field(default_factory=dict)  # key -> [email, outcome, reason, at, attempts]

    def rcpt(self, email: str) -> list[Any]:
        key = email.strip().lower()
        r = self.recipients.get(key)
        if r is None:
            r = self.recipients[key] = [email, "none", None, None, 0]
        return r


def outcomes_from_records(records: Iterable[dict[str, Any]]) -> dict[str, Outcome]:
    """Final states as a trace's events tell them (only invoices and recipients the trace mentions)."""
    accs: dict[str, _Acc] = {}
    completed: set[str] = set()

    def acc(rec: dict[str, Any]) -> _Acc:
        inv = str(rec.get("invoice"))
        a = accs.get(inv)
        if a is None:
            a = accs[inv] = _Acc(str(rec.get("batch") or ""))
        return a

    for rec in records:
        ev = rec.get("event")
        at = rec.get("at")
        if ev == "batch.completed":
            completed.add(str(rec.get("batch")))
        elif ev == "invoice.status":
            a = acc(rec)
            a.batch = str(rec.get("batch") or a.batch)
            a.batch_status = BatchStatus.SENT.value if a.batch in completed else BatchStatus.DRAFT.value
            a.email_status, a.reason, a.since = rec.get("email_status"), rec.get("reason"), at
        elif ev == "email.blocked":
            a = acc(rec)
            if a.reason != rec.get("reason"):
                a.reason = rec.get("reason")
                a.since = at
        elif ev == "email.stuck":
            acc(rec).stuck_at = at
        elif ev == "email.sent":
            a = acc(rec)
            a.email_status, a.reason, a.since = EmailStatus.SENT.value, rec.get("reason"), at
        elif ev == "smtp.reply":
            r = acc(rec).rcpt(str(rec.get("recipient")))
            r[3] = at
            r[4] = max(int(r[4] or 0), int(rec.get("attempt") or 0))
        elif ev in ("email.deferred", "email.delivered", "email.bounced"):
            r = acc(rec).rcpt(str(rec.get("recipient")))
            outcome = ("deferred" if ev == "email.deferred" else "bounced" if ev == "email.bounced"
                       else str(rec.get("folder") or "inbox"))
            r[1], r[2], r[3] = outcome, rec.get("reason"), at
            r[4] = max(int(r[4] or 0), int(rec.get("attempt") or 0))  # a 2xx reply rides on email.delivered
    out: dict[str, Outcome] = {}
    for inv, a in accs.items():
        rcpts = tuple(RecipientOutcome(e, o, why, when, n or None) for e, o, why, when, n in a.recipients.values())
        out[inv] = Outcome(inv, a.batch, a.batch_status, a.email_status, a.reason, a.since, a.stuck_at, rcpts)
    return out


# -- a run to compare ----------------------------------------------------------------------------

@dataclass
class Run:
    """One side of a diff."""

    path: Path
    kind: str  # "scenario" | "trace"
    header: dict[str, Any]
    records: list[dict[str, Any]]
    outcomes: dict[str, Outcome]
    complete: bool  # outcomes cover every invoice and recipient (from a finished run)
    notes: list[str] = field(default_factory=list)
    result: RunResult | None = None

    @property
    def name(self) -> str:
        return str(self.header.get("scenario"))

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "scenario": self.header.get("scenario"),
                "scenario_sha256": self.header.get("scenario_sha256"), "seed": self.header.get("seed"),
                "start": self.header.get("start"), "events": len(self.records),
                "outcomes": "run" if self.complete else "trace events", "notes": list(self.notes)}


def run_scenario(scn: Scenario, path: Path | None = None) -> Run:
    """Run a scenario, capturing its trace (in a temporary file) and its final state."""
    from simulator.engine.run import simulate

    with tempfile.TemporaryDirectory(prefix="mailsim-diff-") as tmp:
        tpath = Path(tmp) / "run.jsonl"
        result = simulate(scn, trace=tpath)
        header, records = read_records(tpath)
    return Run(path or Path(scn.source), "scenario", header, records, outcomes_from_result(result), True,
               result=result)


def load_run(path: str | Path) -> Run:
    """A scenario file (run now) or a trace file. Raises :class:`TraceInputError` on bad input."""
    from simulator.scenario.loader import load_scenario

    p = Path(path)
    if not p.exists():
        raise TraceInputError(f"{p}: no such file")
    if p.is_dir():
        raise TraceInputError(f"{p}: is a directory, not a scenario or trace file")
    if not is_trace(p):
        if p.suffix in (".jsonl", ".json"):
            read_records(p)  # raises with what is wrong with it as a trace
        try:
            scn = load_scenario(p)
        except ScenarioError as exc:
            raise TraceInputError(str(exc)) from None
        return run_scenario(scn, p)
    header, records = read_records(p)
    notes: list[str] = []
    try:
        rep = replay(p)
    except TraceInputError as exc:
        notes.append(f"outcomes from the trace's events ({exc})")
        return Run(p, "trace", header, records, outcomes_from_records(records), False, notes)
    if not rep.identical or rep.result is None:
        notes.append("outcomes from the trace's events (re-running its scenario does not reproduce it)")
        return Run(p, "trace", header, records, outcomes_from_records(records), False, notes)
    notes.append(f"outcomes from re-running {rep.scenario.source} (reproduces the trace byte for byte)")
    return Run(p, "trace", header, records, outcomes_from_result(rep.result), True, notes, rep.result)


# -- the first divergence ------------------------------------------------------------------------

def normalize(rec: dict[str, Any]) -> dict[str, Any]:
    """An event as compared: no ``seq``, no ``line`` (the file's name), no ``expectations_ok``."""
    out = {k: v for k, v in rec.items() if k not in IGNORED_KEYS}
    if out.get("event") == "run.end":
        out.pop("expectations_ok", None)
    return out


def _key(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(normalize(rec), option=orjson.OPT_SORT_KEYS)


def subject(rec: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(rec.get(k) for k in SUBJECT_KEYS)


def describe(rec: dict[str, Any], *, brief: bool = False) -> str:
    """``user.login lee`` / ``invoice.status INV-1 email_status=In Queue``: an event in a few words."""
    parts = [str(rec.get("event"))]
    for k in SUBJECT_KEYS[1:]:
        if rec.get(k) is not None:
            parts.append(str(rec[k]))
    for k in () if brief else ("email_status", "reason", "folder", "code"):
        if rec.get(k) is not None and k not in SUBJECT_KEYS:
            parts.append(f"{k}={rec[k]}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Divergence:
    position: int  # 1-based index of the first differing event (seq ignored)
    kind: str  # "changed" | "only-in-a" | "only-in-b" | "different"
    t: int  # when the runs parted: the earlier of the two differing events
    at: str
    a: dict[str, Any] | None  # A's event at that position (None: A ended)
    b: dict[str, Any] | None
    only_a: tuple[dict[str, Any], ...]  # the events of A with no counterpart in B here (up to SHOWN)
    only_b: tuple[dict[str, Any], ...]
    changes: tuple[KeyChange, ...]  # when kind == "changed": A's event vs B's
    first_side: str = "A"  # "A" | "B": whose differing event came first
    first_in_other: bool = False  # the first event also occurs (later) in the other run's next events
    other_in_first: bool = False  # the other run's event at this position occurs later in the first's

    @property
    def first(self) -> dict[str, Any]:
        """The differing event that happened first."""
        ev = self.a if self.first_side == "A" else self.b
        assert ev is not None
        return ev

    @property
    def other(self) -> dict[str, Any] | None:
        return self.b if self.first_side == "A" else self.a

    def summary(self) -> str:
        side, ev, other_ev = self.first_side, self.first, self.other
        other = "B" if side == "A" else "A"
        if self.kind == "changed":
            return f"{describe(ev, brief=True)} differs in {', '.join(c.key for c in self.changes)}"
        head = f"{side} has {describe(ev)} at {ev.get('at')}"
        head += f"; {other} has it only later" if self.first_in_other else f"; {other} does not"
        if other_ev is None:
            return f"{head} ({other}'s trace has ended)"
        if self.kind in ("only-in-a", "only-in-b"):
            return head
        tail = f"{other}'s next event is {describe(other_ev)} at {other_ev.get('at')}"
        tail += f", which {side} has only later" if self.other_in_first else f", which {side} does not have"
        return f"{head}; {tail}"

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "t": self.t, "at": self.at,
                "first": self.first_side, "first_in_other": self.first_in_other, "summary": self.summary(),
                "a": self.a, "b": self.b,
                "only_a": list(self.only_a), "only_b": list(self.only_b),
                "changes": [c.to_json("a", "b") for c in self.changes]}


def first_divergence(ra: Sequence[dict[str, Any]], rb: Sequence[dict[str, Any]]) -> Divergence | None:
    """Where two event streams first differ (``None``: the same events)."""
    n = min(len(ra), len(rb))
    i = 0
    while i < n and _key(ra[i]) == _key(rb[i]):
        i += 1
    if i == len(ra) and i == len(rb):
        return None
    a = ra[i] if i < len(ra) else None
    b = rb[i] if i < len(rb) else None
    wa = [_key(r) for r in ra[i:i + WINDOW]]
    wb = [_key(r) for r in rb[i:i + WINDOW]]
    tag, i1, i2, j1, j2 = next(op for op in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes()
                               if op[0] != "equal")
    only_a = tuple(ra[i + i1:i + min(i2, i1 + SHOWN)])
    only_b = tuple(rb[i + j1:i + min(j2, j1 + SHOWN)])
    changes: tuple[KeyChange, ...] = ()
    if a is not None and b is not None and subject(a) == subject(b):
        kind = "changed"
        changes = tuple(key_diff(normalize(a), normalize(b)))
    elif tag == "insert" or a is None:
        kind = "only-in-b"
    elif tag == "delete" or b is None:
        kind = "only-in-a"
    else:
        kind = "different"
    if kind == "only-in-a" or b is None:
        side = "A"
    elif kind == "only-in-b" or a is None:
        side = "B"
    else:
        side = "B" if int(b["t"]) < int(a["t"]) else "A"
    first, other = (a, b) if side == "A" else (b, a)
    assert first is not None
    w_first, w_other = (wa, wb) if side == "A" else (wb, wa)
    first_in_other = _key(first) in w_other
    other_in_first = other is not None and _key(other) in w_first[1:]
    return Divergence(i + 1, kind, int(first["t"]), str(first.get("at")), a, b, only_a, only_b, changes, side,
                      first_in_other, other_in_first)


# -- invoices whose outcome differs ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InvoiceDiff:
    invoice: str
    batch: str
    a: Outcome | None  # None: not known to A (a trace that never mentions it)
    b: Outcome | None
    changes: tuple[tuple[str, Any, Any], ...]  # (field, A's value, B's value)

    def to_json(self) -> dict[str, Any]:
        return {"invoice": self.invoice, "batch": self.batch,
                "changes": [{"field": f, "a": x, "b": y} for f, x, y in self.changes],
                "a": self.a.to_json() if self.a else None, "b": self.b.to_json() if self.b else None}


def _compare(a: Outcome | None, b: Outcome | None, a_complete: bool, b_complete: bool) -> list[tuple[str, Any, Any]]:
    if a is None or b is None:
        known = a or b
        assert known is not None
        if (a_complete if a is None else b_complete):
            return [("exists", a is not None, b is not None)]  # a run that lists every invoice lacks this one
        if known.batch_status == BatchStatus.DRAFT:
            return []  # a trace never mentions a Draft invoice whose status never changed
        draft = BatchStatus.DRAFT.value
        return [("batch_status", a.batch_status if a else draft, b.batch_status if b else draft)]
    out: list[tuple[str, Any, Any]] = []
    for f in ("batch_status", "email_status", "reason"):
        x, y = getattr(a, f), getattr(b, f)
        if f == "email_status" and (x is None or y is None):
            continue
        if x != y:
            out.append((f, x, y))
    emails: dict[str, str] = {}
    for r in (*a.recipients, *b.recipients):
        emails.setdefault(r.email.strip().lower(), r.email)
    for email in emails.values():
        ra, rb = a.recipient(email), b.recipient(email)
        if ra is None or rb is None:
            known_r = ra or rb
            assert known_r is not None
            # missing from a run that lists every recipient: a real difference; missing from a trace: it was
            # never tried there, which differs only if the other run did try it
            if (a_complete if ra is None else b_complete) or known_r.outcome not in ("none", "skipped"):
                out.append((f"recipient {email.strip()}", _rcpt(ra), _rcpt(rb)))
            continue
        if (ra.outcome, ra.reason) != (rb.outcome, rb.reason):
            out.append((f"recipient {email.strip()}", _rcpt(ra), _rcpt(rb)))
    return out


def _rcpt(r: RecipientOutcome | None) -> dict[str, Any] | None:
    return None if r is None else {"outcome": r.outcome, "reason": r.reason, "at": r.at}


def invoice_diffs(a: Run, b: Run) -> list[InvoiceDiff]:
    out: list[InvoiceDiff] = []
    seen = list(a.outcomes) + [k for k in b.outcomes if k not in a.outcomes]
    for inv in seen:
        oa, ob = a.outcomes.get(inv), b.outcomes.get(inv)
        changes = _compare(oa, ob, a.complete, b.complete)
        if changes:
            batch = (oa or ob).batch  # type: ignore[union-attr]
            out.append(InvoiceDiff(inv, batch, oa, ob, tuple(changes)))
    return out


@dataclass
class DiffResult:
    a: Run
    b: Run
    divergence: Divergence | None
    invoices: list[InvoiceDiff]
    compared: int  # invoices compared

    @property
    def identical(self) -> bool:
        return self.divergence is None and not self.invoices

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a.to_json(), "b": self.b.to_json(), "identical": self.identical,
                "first_divergence": self.divergence.to_json() if self.divergence else None,
                "invoices_compared": self.compared, "invoices": [d.to_json() for d in self.invoices]}


def diff_runs(a: Run, b: Run) -> DiffResult:
    div = first_divergence(a.records, b.records)
    invs = invoice_diffs(a, b)
    compared = len(set(a.outcomes) | set(b.outcomes))
    return DiffResult(a, b, div, invs, compared)


def diff(a: str | Path | Scenario | Run, b: str | Path | Scenario | Run) -> DiffResult:
    """Compare two runs: each a scenario file, a trace file, a loaded ``Scenario`` or a :class:`Run`."""

    def side(x: str | Path | Scenario | Run) -> Run:
        if isinstance(x, Run):
            return x
        if isinstance(x, Scenario):
            return run_scenario(x)
        return load_run(x)

    return diff_runs(side(a), side(b))
