"""A run as a picture model: lanes of spans over the virtual clock (``mailsim timeline``).

Built from a traced run (the JSONL trace or a Session's records) plus the final
:class:`RunResult`:

* one lane per invoice — a status row (Pending / N/A / In Queue, split where the
  blocking reason changes and where the email became stuck / Sent) and one row
  per recipient (in transit, deferred, inbox, junk, bounced, skipped, not sent);
* one lane per sender user — sync valid / token expired / password changed /
  unsupported provider / no sync (SMTP path) / inactive;
* markers for timeline events (batch completed, logins, re-syncs, DNS edits …),
  token expiries and faults (bands), and per-lane stuck-threshold ticks.

Large runs aggregate the invoice lanes (one lane per batch × status × reason
with counts over time, see :func:`aggregate`). Renderers: ``timeline_html``
(self-contained HTML) and ``timeline_png`` (matplotlib). Nothing here reads the
wall clock; the same run gives the same model.
"""

from __future__ import annotations

import functools
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.domain.reasons import reason_info
from simulator.domain.sync import SyncState, change_password, expires_at, initial_state, login, resync, verdict
from simulator.engine.result import InvoiceView, RecipientView, RunResult
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration

Record = dict[str, Any]

# -- the vocabulary shared by both renderers: span kinds, their labels and colours -----------------
KINDS: dict[str, tuple[str, str]] = {
    # invoice email status
    "pending": ("Pending (batch Draft)", "#c7cdd6"),
    "na": ("N/A (not emailed)", "#8d96a3"),
    "queue": ("In Queue", "#f2b84b"),
    "queue-blocked": ("In Queue, blocked", "#ee8a3c"),
    "queue-stuck": ("In Queue, stuck (past the threshold)", "#d9472b"),
    "sent": ("Sent (left the platform)", "#4f8fd6"),
    # recipient delivery
    "transit": ("in transit (awaiting reply)", "#a9c8ee"),
    "deferred": ("deferred (4xx, will retry)", "#b07ad9"),
    "inbox": ("inbox", "#3aa35b"),
    "junk": ("junk folder", "#a7b83a"),
    "bounced": ("bounced (DSN to sender)", "#c0392b"),
    "skipped": ("skipped recipient", "#9aa3ad"),
    "unsent": ("not sent yet", "#e8ebef"),
    # sender users
    "sync-valid": ("sync valid", "#3aa35b"),
    "token-expired": ("token expired", "#d9472b"),
    "password-changed": ("password changed", "#e0663a"),
    "unsupported": ("unsupported provider (SMTP path)", "#8e7cc3"),
    "smtp-path": ("no sync (SMTP path)", "#6c8ebf"),
    "inactive": ("user inactive", "#555d66"),
}
STATUS_KINDS = ("pending", "na", "queue", "queue-blocked", "queue-stuck", "sent")
DELIVERY_KINDS = ("transit", "deferred", "inbox", "junk", "bounced", "skipped", "unsent")
SENDER_KINDS = ("sync-valid", "token-expired", "password-changed", "unsupported", "smtp-path", "inactive")

#: above this many invoices the HTML shows aggregate lanes (one per batch × status × reason)
MAX_DETAIL_LANES = 300

MARKER_EVENTS = {
    "batch.completed": "batch", "batch.already_completed": "batch",
    "user.login": "user", "sync.resynced": "user", "sync.set": "user", "sync.removed": "user",
    "user.password_changed": "user", "user.deactivated": "user", "user.activated": "user",
    "sync.expired": "expiry",
    "contact.changed": "contact", "contact.refused": "refused", "property.changed": "contact",
    "settings.changed": "settings", "dns.changed": "dns",
}
SENDER_EVENTS = {"user.login", "sync.resynced", "sync.set", "sync.removed", "user.password_changed",
                 "user.deactivated", "user.activated", "sync.expired"}


@dataclass(slots=True)
class Span:
    start: int
    end: int
    kind: str
    label: str
    reason: str | None = None
    detail: str = ""

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.kind, self.label, self.reason, self.detail]


@dataclass(slots=True)
class Mark:
    t: int
    kind: str  # "stuck" (threshold), "attempt", "login", "resync", "password", "expiry", "state"
    label: str
    detail: str = ""

    def to_json(self) -> list[Any]:
        return [self.t, self.kind, self.label, self.detail]


@dataclass(slots=True)
class Row:
    label: str
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    # aggregate rows: a step function of counts per kind, [(t, {kind: n}), ...] and the row total
    steps: list[tuple[int, dict[str, int]]] | None = None
    total: int = 0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label, "spans": [s.to_json() for s in self.spans],
                             "marks": [m.to_json() for m in self.marks]}
        if self.steps is not None:
            d["steps"] = [[t, c] for t, c in self.steps]
            d["total"] = self.total
        return d


@dataclass(slots=True)
class Lane:
    id: str
    kind: str  # "invoice" | "group" | "sender"
    label: str
    batch: str | None = None
    status: str | None = None  # final email status (sender lanes: final sync state label)
    reason: str | None = None  # the reason that explains the final state
    reasons: tuple[str, ...] = ()  # every reason the lane went through (filters)
    count: int = 1
    detail: str = ""
    rows: list[Row] = field(default_factory=list)
    members: tuple[str, ...] = ()  # group lanes: a sample of invoice ids

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "batch": self.batch, "status": self.status,
                "reason": self.reason, "reasons": list(self.reasons), "count": self.count, "detail": self.detail,
                "rows": [r.to_json() for r in self.rows], "members": list(self.members)}


@dataclass(slots=True)
class Marker:
    t: int
    kind: str  # batch | user | expiry | contact | refused | settings | dns
    label: str
    detail: str = ""

    def to_json(self) -> list[Any]:
        return [self.t, self.kind, self.label, self.detail]


@dataclass(slots=True)
class Band:
    start: int
    end: int
    kind: str
    label: str
    detail: str = ""

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.kind, self.label, self.detail]


@dataclass(slots=True)
class Timeline:
    scenario: str
    description: str
    start_iso: str
    start_ms: int  # the scenario's start as Unix milliseconds (the HTML axis shows dates)
    end_iso: str
    end: int
    stuck_after: int
    token_lifetime: int
    invoices: list[Lane]  # one per invoice, always detailed
    senders: list[Lane]
    markers: list[Marker]
    faults: list[Band]
    counts: dict[str, int]
    accounting: dict[str, int]
    view: tuple[int, int] | None = None  # initial zoom window

    @property
    def n_invoices(self) -> int:
        return len(self.invoices)

    def display_lanes(self, max_lanes: int = MAX_DETAIL_LANES) -> tuple[list[Lane], bool]:
        """The invoice lanes to draw: detailed, or aggregated when there are more than ``max_lanes``."""
        if len(self.invoices) <= max_lanes:
            return self.invoices, False
        return aggregate(self.invoices, self.end), True

    def to_json(self, max_lanes: int = MAX_DETAIL_LANES) -> dict[str, Any]:
        lanes, aggregated = self.display_lanes(max_lanes)
        reasons = sorted({r for ln in self.invoices for r in ln.reasons})
        return {
            "schema": "mailsim-timeline/1",
            "scenario": self.scenario, "description": self.description,
            "start": self.start_iso, "start_ms": self.start_ms, "end": self.end,
            "stuck_after": self.stuck_after, "stuck_after_text": format_duration(self.stuck_after),
            "token_lifetime": self.token_lifetime,
            "aggregated": aggregated, "n_invoices": self.n_invoices,
            "counts": self.counts, "accounting": self.accounting,
            "view": list(self.view) if self.view else None,
            "kinds": {k: {"label": lab, "color": col} for k, (lab, col) in KINDS.items()},
            "groups": {"status": list(STATUS_KINDS), "delivery": list(DELIVERY_KINDS), "sender": list(SENDER_KINDS)},
            "batches": sorted({ln.batch for ln in self.invoices if ln.batch}, key=_batch_order(self.invoices)),
            "statuses": [s for s in ("N/A", "Pending", "In Queue", "Sent")
                         if any(ln.status == s for ln in self.invoices)],
            "reasons": reasons,
            "reason_info": _reason_texts(reasons + [r for ln in self.senders for r in ln.reasons]),
            "lanes": [ln.to_json() for ln in lanes],
            "senders": [ln.to_json() for ln in self.senders],
            "markers": [m.to_json() for m in self.markers],
            "faults": [b.to_json() for b in self.faults],
        }


def _batch_order(lanes: list[Lane]) -> Any:
    order: dict[str, int] = {}
    for ln in lanes:
        if ln.batch is not None and ln.batch not in order:
            order[ln.batch] = len(order)
    return lambda b: order.get(b, len(order))


def _reason_texts(codes: Iterable[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for code in sorted(set(codes)):
        info = reason_info(code) or (reason_info("spf-softfail-junk") if code.endswith("-junk") else None)
        if info is None:
            continue
        title = info.title
        if code != info.code:  # spf-<result>-junk shares one entry
            title = f"SPF {code.split('-')[1]}: filed in junk by the recipient's server"
        steps = ", ".join("after sending" if s == 0 else f"Step {s}" for s in info.steps)
        out[code] = {"title": title, "steps": steps, "fix": info.fix}
    return out


@functools.lru_cache(maxsize=256)
def reason_title(code: str | None) -> str:
    if code is None:
        return ""
    info = _reason_texts([code]).get(code)
    return f"{code}: {info['title']}" if info else code


# -- collecting a run ----------------------------------------------------------------------------
def traced_run(scn: Scenario) -> tuple[RunResult, list[Record]]:
    """Run ``scn`` with a trace (in a temporary file) and return the result and the trace records."""
    from simulator.engine.run import simulate

    with tempfile.TemporaryDirectory(prefix="mailsim-timeline-") as d:
        path = Path(d) / "trace.jsonl"
        result = simulate(scn, trace=path)
        records = list(read_trace(path))
    return result, records


def read_trace(path: str | Path) -> Iterator[Record]:
    """The event records of a JSONL trace (the header line is skipped)."""
    with open(path, "rb") as fh:
        for i, line in enumerate(fh):
            if i == 0 or not line.strip():
                continue
            yield orjson.loads(line)


def timeline_of(scn: Scenario, view: tuple[int, int] | None = None) -> Timeline:
    result, records = traced_run(scn)
    return build_timeline(result, records, view=view)


def timeline_of_session(session: Any, view: tuple[int, int] | None = None) -> Timeline:
    """The timeline of a :class:`~simulator.engine.session.Session` as it stands (its records so far)."""
    return build_timeline(session.result(), session.records[: session.cursor], view=view)


def _key(address: str) -> str:
    return address.strip().lower()


class _Fmt:
    def __init__(self, scn: Scenario) -> None:
        self.scn = scn

        self._cache: dict[int, str] = {}

    def at(self, t: int | None) -> str:
        if t is None:
            return "never"
        s = self._cache.get(t)
        if s is None:
            s = self._cache[t] = self.scn.iso(t).replace("T", " ").replace(":00Z", "Z")
        return s

    def span(self, a: int, b: int) -> str:
        return f"{self.at(a)} → {self.at(b)} ({format_duration(max(0, b - a))})"


def build_timeline(result: RunResult, records: Iterable[Record], *, view: tuple[int, int] | None = None) -> Timeline:
    """The picture model of a finished run from its trace records (in ``seq`` order)."""
    eng = result.engine
    scn = eng.scn
    end = result.end
    fmt = _Fmt(scn)
    by_invoice: dict[str, list[Record]] = defaultdict(list)
    by_user: dict[str, list[Record]] = defaultdict(list)
    senders_seen: dict[str, None] = {}
    markers: list[Marker] = []
    for rec in records:
        ev = rec.get("event", "")
        inv = rec.get("invoice")
        if inv is not None:
            by_invoice[inv].append(rec)
            snd = rec.get("sender")
            if snd and ev in ("email.sent", "email.blocked"):
                senders_seen.setdefault(_key(snd), None)
        if ev in SENDER_EVENTS and rec.get("user") is not None:
            by_user[rec["user"]].append(rec)
        if ev in MARKER_EVENTS:
            markers.append(_marker(rec, fmt))

    lanes = [_invoice_lane(v, by_invoice.get(v.id, ()), end, eng.settings.stuck_after, fmt)
             for v in result.invoices()]
    senders = _sender_lanes(scn, by_user, senders_seen, end, fmt)
    counts: dict[str, int] = defaultdict(int)
    for ln in lanes:
        counts[ln.status or "?"] += 1
    faults = [_fault_band(f, end, fmt) for f in scn.faults]
    return Timeline(
        scenario=scn.name, description=scn.description.strip(), start_iso=scn.iso(0),
        start_ms=int(scn.start.timestamp() * 1000), end_iso=scn.iso(end), end=end, stuck_after=eng.settings.stuck_after,
        token_lifetime=eng.settings.token_lifetime, invoices=lanes, senders=senders, markers=markers,
        faults=faults, counts=dict(counts), accounting=result.accounting(), view=view,
    )


def _marker(rec: Record, fmt: _Fmt) -> Marker:
    ev = rec["event"]
    kind = MARKER_EVENTS[ev]
    t = rec["t"]
    user = rec.get("user")
    if ev == "batch.completed":
        label = f"{rec['batch']} completed"
        n = rec.get("invoices", 0)
        detail = (f"batch {rec['batch']} completed ({n} invoice{'s' if n != 1 else ''}, "
                  f"branch{'es' if len(rec.get('branches', [])) != 1 else ''} {', '.join(rec.get('branches', []))})")
    elif ev == "batch.already_completed":
        label, detail = f"{rec['batch']} again", f"batch {rec['batch']} was already completed"
    elif ev == "user.login":
        if rec.get("refreshed") is None:
            label, detail = f"{user} login", f"{user} logged in (no mailbox sync)"
        elif rec["refreshed"]:
            label = f"{user} login"
            detail = f"{user} logged in while the token was alive: refreshed, expires {rec.get('expires')}"
        else:
            label = f"{user} login (too late)"
            detail = f"{user} logged in after the token expired: a login does not revive it, only a re-sync does"
    elif ev in ("sync.resynced", "sync.set"):
        label = f"{user} re-sync" if ev == "sync.resynced" else f"{user} sync set"
        detail = f"{user} (re)synced the mailbox ({rec.get('provider')}): a fresh token"
    elif ev == "sync.removed":
        label, detail = f"{user} sync removed", f"{user}'s mailbox sync removed: SMTP path"
    elif ev == "user.password_changed":
        label, detail = f"{user} password", f"{user} changed the password: the sync is invalid until a re-sync"
    elif ev in ("user.deactivated", "user.activated"):
        label, detail = f"{user} {ev.split('.')[1]}", f"user {user} {ev.split('.')[1]}"
    elif ev == "sync.expired":
        label = f"{user} token expired"
        detail = f"{user}'s sync token expired (last refreshed {rec.get('refreshed')} by {rec.get('refreshed_by')})"
    elif ev == "contact.refused":
        label = f"{rec.get('contact')} edit refused"
        detail = (f"set {rec.get('contact')} email to {rec.get('email')!r} refused: {rec.get('reason')} "
                  f"(already used by contact {rec.get('existing_contact')})")
    elif ev == "contact.changed":
        what = f"email {rec['email']!r}" if "email" in rec else f"active={rec.get('active')}"
        label, detail = f"{rec.get('contact')} changed", f"contact {rec.get('contact')}: {what}"
    elif ev == "property.changed":
        label = f"{rec.get('property')} contacts"
        detail = (f"property {rec.get('property')}: contact {rec.get('contact')} "
                  f"email_invoice={rec.get('email_invoice')}")
    elif ev == "settings.changed":
        label = f"{rec.get('where')} sender"
        detail = f"{rec.get('where')} invoicing email from = {rec.get('invoicing_email_from')}"
    else:  # dns.changed
        val = rec.get("value")
        label = f"DNS {rec.get('name')} {rec.get('type')}"
        detail = f"DNS {rec.get('op')} {rec.get('name')} {rec.get('type')}" + (f" = {val}" if val else "")
    return Marker(t, kind, label, f"{fmt.at(t)} — {detail}")


def _fault_band(f: Any, end: int, fmt: _Fmt) -> Band:
    start = max(0, f.at or 0)
    stop = min(end, start + f.for_) if f.for_ is not None else end
    what = f.kind + (f" at {f.stage}" if f.stage else "") + (f" on {f.target}" if f.target else " (everything)")
    if f.probability < 1:
        what += f", probability {f.probability:g}"
    if f.kind == "slow" and f.delay:
        what += f", +{format_duration(f.delay)}"
    return Band(start, stop, f.kind, f"fault: {f.kind}" + (f" {f.target}" if f.target else ""),
                f"fault #{f.index + 1}: {what}; {fmt.span(start, stop)}")


# -- invoice lanes -------------------------------------------------------------------------------
_RCPT_RANK = {"bounced": 0, "deferred": 1, "junk": 2, "skipped": 3, "none": 4, "inbox": 5}


def primary_reason(v: InvoiceView) -> str | None:
    """The code that best explains where the invoice stands: its own, else its worst recipient's."""
    if v.reason is not None and v.reason != "no-deliverable-recipient":
        return v.reason
    worst: RecipientView | None = None
    for r in v.recipients:
        if r.reason is not None and (worst is None or _RCPT_RANK.get(r.outcome, 9) < _RCPT_RANK.get(worst.outcome, 9)):
            worst = r
    if v.reason is not None and (worst is None or worst.outcome == "skipped"):
        return v.reason
    return worst.reason if worst is not None else None


def _invoice_lane(v: InvoiceView, recs: Iterable[Record], end: int, stuck_after: int, fmt: _Fmt) -> Lane:
    recs = list(recs)
    reasons: dict[str, None] = {}
    status = Row("email status")
    rid = v.id

    def add(row: Row, a: int, b: int, kind: str, label: str, reason: str | None, detail: str) -> None:
        b = min(b, end)
        if b < a or (b == a and b < end):
            return
        if reason:
            reasons.setdefault(reason, None)
        why = f"\n{reason_title(reason)}" if reason else ""
        last = row.spans[-1] if row.spans else None
        if last is not None and last.kind == kind and last.reason == reason and last.end == a:
            # one state across a boundary (N/A before and after completion): one span, both details
            first, _, rest = last.detail.partition("\n")
            _, _, rest = rest.partition("\n")
            last.end = b
            last.detail = f"{first}\n{fmt.span(last.start, b)}\n{rest}" + (f"; {detail}" if detail else "")
            return
        row.spans.append(Span(a, b, kind, label, reason, f"{rid} · {label}\n{fmt.span(a, b)}{why}"
                                                            + (f"\n{detail}" if detail else "")))

    # Draft: Pending / N/A as the property's contacts made it (status history while Draft)
    draft_until = v.completed_at if v.completed_at is not None else end
    hist = [(t, st) for t, st in _prop_history(recs, v) if t < draft_until or (t == 0 and draft_until == 0)]
    for i, (t, st) in enumerate(hist):
        nxt = hist[i + 1][0] if i + 1 < len(hist) else draft_until
        if st == "N/A":
            add(status, t, nxt, "na", "N/A", "no-invoice-email-contact", "no active contact with Email Invoice")
        else:
            add(status, t, nxt, "pending", "Pending", "batch-draft", f"batch {v.batch} is Draft: no email yet")
    if v.completed_at is not None and v.email_status == "N/A":
        add(status, v.completed_at, end, "na", "N/A", v.reason,
            f"batch completed {fmt.at(v.completed_at)}; never emailed")
    if v.queued_at is not None:
        q_end = v.sent_at if v.sent_at is not None else end
        blocks = [(r["t"], r.get("reason"), r.get("evidence") or "", r.get("sender")) for r in recs
                  if r["event"] == "email.blocked"]
        cuts = sorted({v.queued_at, *(t for t, *_ in blocks if v.queued_at <= t < q_end),
                       *([v.stuck_at] if v.stuck_at is not None and v.stuck_at < q_end else [])})
        for i, a in enumerate(cuts):
            b = cuts[i + 1] if i + 1 < len(cuts) else q_end
            cur = [x for x in blocks if x[0] <= a]
            reason, evidence, sender = (cur[-1][1], cur[-1][2], cur[-1][3]) if cur else (None, "", None)
            stuck = v.stuck_at is not None and a >= v.stuck_at
            kind = "queue-stuck" if stuck else "queue-blocked" if reason else "queue"
            label = "In Queue, stuck" if stuck else "In Queue"
            detail = f"queued {fmt.at(v.queued_at)}" + (f"; sender {sender}" if sender else "")
            detail += f"; {evidence}" if evidence else ("" if reason else "; waiting for the next queue poll")
            if stuck:
                detail += f"; stuck since {fmt.at(v.stuck_at)} (more than {format_duration(stuck_after)} in queue)"
            add(status, a, b, kind, label, reason, detail)
        threshold = v.queued_at + stuck_after
        if threshold <= end and (v.sent_at is None or threshold <= v.sent_at):
            status.marks.append(Mark(threshold, "stuck", "stuck threshold",
                                     f"{rid}: stuck threshold {fmt.at(threshold)} — {format_duration(stuck_after)} "
                                     "in queue (the guide's 'more than an hour')"))
    sent_rec: Record | None = None
    if v.sent_at is not None:
        sent_rec = next((r for r in recs if r["event"] == "email.sent"), None)
        how = ""
        if sent_rec is not None:
            how = f"sender {sent_rec.get('sender')} via the {sent_rec.get('path')} path"
            if sent_rec.get("provider"):
                how += f" ({sent_rec['provider']})"
            how += f", client IP {sent_rec.get('client_ip')}"
        add(status, v.sent_at, end, "sent", "Sent", v.reason, how)
    lane = Lane(rid, "invoice", rid, batch=v.batch, status=v.email_status, reason=primary_reason(v))
    lane.rows.append(status)

    # recipients: their delivery after the email left the platform
    per_rcpt: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        if r.get("recipient") is not None:
            per_rcpt[_key(r["recipient"])].append(r)
    for rv in v.recipients:
        row = Row(rv.email.strip() or repr(rv.email))
        _recipient_row(row, rv, v, per_rcpt.get(_key(rv.email), []), end, fmt, add)
        lane.rows.append(row)
    for rv in v.recipients:
        if rv.reason:
            reasons.setdefault(rv.reason, None)
    if lane.reason:
        reasons.setdefault(lane.reason, None)
    if v.email_status != "Pending":  # every emailed invoice was a Draft once: not worth a filter hit
        reasons.pop("batch-draft", None)
    lane.reasons = tuple(reasons)
    rc = ", ".join(f"{r.email.strip()} → {r.outcome}" + (f" ({r.reason})" if r.reason else "") for r in v.recipients)
    lane.detail = (f"{rid} (batch {v.batch}, {v.batch_status}) — email status {v.email_status}"
                   + (f", {reason_title(v.reason)}" if v.reason else "")
                   + (f"\nsender {v.sender}" if v.sender else "")
                   + (f"\nrecipients: {rc}" if rc else "\nno email-invoice contact")
                   + (f"\nnotes: {', '.join(v.notes)}" if v.notes else ""))
    return lane


def _prop_history(recs: list[Record], v: InvoiceView) -> list[tuple[int, str]]:
    """Email status while Draft: the status at t=0 then every change (``invoice.status`` while Draft)."""
    changes = [(r["t"], r["email_status"]) for r in recs
               if r["event"] == "invoice.status" and (v.completed_at is None or r["t"] < v.completed_at)]
    # the status at the start: the one before the first change, else the one the invoice held at completion
    if changes:
        first = "N/A" if changes[0][1] == "Pending" else "Pending"
    elif v.completed_at is None:
        first = v.email_status
    else:
        first = "N/A" if v.email_status == "N/A" else "Pending"
    out = [(0, first)]
    for t, st in changes:
        if t == out[-1][0]:
            out[-1] = (t, st)
        elif st != out[-1][1]:
            out.append((t, st))
    return out


def _recipient_row(row: Row, rv: RecipientView, v: InvoiceView, recs: list[Record], end: int, fmt: _Fmt,
                   add: Any) -> None:
    who = f"recipient {rv.email.strip()}"
    if rv.outcome == "skipped":
        if v.completed_at is not None:
            add(row, v.completed_at, end, "skipped", "skipped", rv.reason, f"{who}: {rv.evidence or 'not sent to'}")
        return
    # the email exists from completion (DESIGN §2): before that a recipient row is empty
    if v.sent_at is None:
        if v.queued_at is not None:
            add(row, v.queued_at, end, "unsent", "not sent yet", None, f"{who}: the email is still In Queue")
        return
    if v.queued_at is not None and v.queued_at < v.sent_at:
        add(row, v.queued_at, v.sent_at, "unsent", "not sent yet", None, f"{who}: the email waited In Queue")
    cur_t, cur_kind, cur_label, cur_reason = v.sent_at, "transit", "in transit", None
    cur_detail = f"{who}: handed to the MTA"
    attempts: set[tuple[Any, int]] = set()
    for r in recs:
        ev = r["event"]
        t = r["t"]
        if ev not in ("smtp.reply", "email.deferred", "email.delivered", "email.bounced"):
            continue
        # one tick per SMTP attempt (a cohort's delivery may carry its attempt without a separate reply)
        att = (r.get("attempt"), t)
        if r.get("attempt") is not None and att not in attempts and (ev == "smtp.reply" or r.get("code")):
            attempts.add(att)
            row.marks.append(Mark(t, "attempt", f"attempt {r.get('attempt')}: {r.get('code')}",
                                  f"{v.id} → {rv.email.strip()} attempt {r.get('attempt')} at {fmt.at(t)}: "
                                  f"{r.get('code')} {r.get('enhanced') or ''} {r.get('text') or ''}".rstrip()
                                  + (f" (SPF {r['spf']})" if r.get("spf") else "")))
        if ev == "smtp.reply":
            continue
        add(row, cur_t, t, cur_kind, cur_label, cur_reason, cur_detail)
        cur_t = t
        cur_reason = r.get("reason")
        if ev == "email.deferred":
            cur_kind, cur_label = "deferred", "deferred"
            cur_detail = f"{who}: attempt {r.get('attempt')} deferred; next try {r.get('retry_at')}"
        elif ev == "email.delivered":
            folder = r.get("folder") or "inbox"
            cur_kind, cur_label = ("junk" if folder == "junk" else "inbox"), folder
            cur_detail = f"{who}: delivered to {folder} (SPF {r.get('spf')})"
        else:
            cur_kind, cur_label = "bounced", "bounced"
            cur_detail = f"{who}: {r.get('code')} {r.get('enhanced')}; bounce-back {r.get('dsn')} to {r.get('dsn_to')}"
    add(row, cur_t, end, cur_kind, cur_label, cur_reason, cur_detail)


# -- sender lanes --------------------------------------------------------------------------------
def _sender_lanes(scn: Scenario, by_user: dict[str, list[Record]], senders_seen: dict[str, None], end: int,
                  fmt: _Fmt) -> list[Lane]:
    lifetime = scn.settings.token_lifetime
    lanes: list[Lane] = []
    for u in scn.users:
        recs = by_user.get(u.id, [])
        has_sync = u.sync is not None or any(r["event"] == "sync.set" for r in recs)
        if not has_sync and _key(u.email) not in senders_seen:
            continue
        state: SyncState | None = initial_state(u.sync) if u.sync else None
        active = u.active
        changes: list[tuple[int, Record]] = [(r["t"], r) for r in recs if r["event"] != "sync.expired"]
        row = Row("mailbox sync")
        segs: list[list[Any]] = []  # [start, end, kind, detail], adjacent equal ones merged
        t0 = 0
        idx = 0
        while idx < len(changes) and changes[idx][0] <= 0:  # changes at the start apply first
            state, active = _apply_user(state, active, changes[idx][1], lifetime)
            idx += 1
        for b in [t for t, _ in changes[idx:]] + [end]:
            b = min(b, end)
            for a2, b2, kind, detail in _sync_segments(state, active, t0, b, lifetime, fmt):
                if segs and segs[-1][2] == kind and segs[-1][1] == a2 and segs[-1][3] == detail:
                    segs[-1][1] = b2
                else:
                    segs.append([a2, b2, kind, detail])
            while idx < len(changes) and changes[idx][0] <= b:
                state, active = _apply_user(state, active, changes[idx][1], lifetime)
                idx += 1
            t0 = max(t0, b)
        spans = [Span(a, b, kind, KINDS[kind][0], _sync_reason(kind),
                      f"{u.id} <{u.email}> · {KINDS[kind][0]}\n{fmt.span(a, b)}\n{detail}")
                 for a, b, kind, detail in segs]
        kinds_seen = dict.fromkeys(s.kind for s in spans)
        row.spans = spans
        for r in recs:
            kind = {"user.login": "login", "sync.resynced": "resync", "sync.set": "resync",
                    "user.password_changed": "password", "sync.expired": "expiry"}.get(r["event"], "state")
            mk = _marker(r, fmt)
            row.marks.append(Mark(r["t"], kind, mk.label, mk.detail))
        final = spans[-1] if spans else None
        label = f"{u.id} <{u.email}>"
        lane = Lane(f"user:{u.id}", "sender", label, status=final.label if final else None,
                    reason=final.reason if final else None,
                    reasons=tuple(dict.fromkeys(c for k in kinds_seen if (c := _sync_reason(k)))),
                    rows=[row])
        lane.detail = f"sender user {u.id} <{u.email}>" + (
            f", sync {u.sync.provider}" if u.sync else ", no mailbox sync") + ": " + " → ".join(
            KINDS[k][0] for k in kinds_seen)
        lanes.append(lane)
    return lanes


def _sync_reason(kind: str) -> str | None:
    return {"token-expired": "sync-token-expired", "password-changed": "sync-password-changed",
            "unsupported": "sync-provider-unsupported"}.get(kind)


def _apply_user(state: SyncState | None, active: bool, rec: Record, lifetime: int) -> tuple[SyncState | None, bool]:
    ev = rec["event"]
    t = rec["t"]
    if ev == "user.login" and state is not None:
        state, _ = login(state, t, lifetime)
    elif ev in ("sync.resynced", "sync.set"):
        state = resync(state, rec.get("provider"), t)
    elif ev == "user.password_changed" and state is not None:
        state = change_password(state, t)
    elif ev == "sync.removed":
        state = None
    elif ev == "user.deactivated":
        active = False
    elif ev == "user.activated":
        active = True
    return state, active


def _sync_segments(state: SyncState | None, active: bool, a: int, b: int, lifetime: int,
                   fmt: _Fmt) -> list[tuple[int, int, str, str]]:
    """The sender's state over [a, b): one or two segments (a token may expire inside)."""
    if b < a or (b == a and a != 0):
        return []
    if not active:
        return [(a, b, "inactive", "the user is inactive: cannot send")]
    if state is None:
        return [(a, b, "smtp-path", "no mailbox sync: the platform sends over SMTP (SPF of the sender's domain "
                                    "must pass for the platform IPs)")]
    desc = (f"{state.provider}; last (re)sync {fmt.at(state.synced)}; token refreshed {fmt.at(state.refreshed)} "
            f"by {state.refreshed_by}")
    verd = verdict(state, a, lifetime)
    exp = expires_at(state, lifetime)
    if verd.reason == "sync-provider-unsupported":
        return [(a, b, "unsupported", f"{desc}; {verd.evidence}")]
    if verd.reason == "sync-password-changed":
        return [(a, b, "password-changed", f"{desc}; password changed {fmt.at(state.password_changed)} "
                                           "after the last sync: re-sync needed")]
    expired = (f"{desc}; lifetime {format_duration(lifetime)}; expired {fmt.at(exp)} "
               "(a login after expiry does not revive it: re-sync)")
    if verd.reason == "sync-token-expired":
        return [(a, b, "token-expired", expired)]
    valid = f"{desc}; token valid until {fmt.at(exp)}"
    if exp < b:
        return [(a, exp, "sync-valid", valid), (exp, b, "token-expired", expired)]
    return [(a, b, "sync-valid", valid)]


# -- aggregation ---------------------------------------------------------------------------------
MAX_STEPS = 1500


def aggregate(lanes: list[Lane], end: int, max_groups: int = 400) -> list[Lane]:
    """One lane per batch × final status × reason, each with counts over time per kind.

    When that still gives more than ``max_groups`` lanes the batch is dropped
    from the key (status × reason across all batches).
    """
    def key_of(ln: Lane, with_batch: bool) -> tuple[str, str, str]:
        return (ln.batch or "" if with_batch else "*", ln.status or "", ln.reason or "")

    groups: dict[tuple[str, str, str], list[Lane]] = {}
    for ln in lanes:
        groups.setdefault(key_of(ln, True), []).append(ln)
    if len(groups) > max_groups:
        groups = {}
        for ln in lanes:
            groups.setdefault(key_of(ln, False), []).append(ln)
    out: list[Lane] = []
    for (batch, status, reason), members in groups.items():
        n = len(members)
        status_row = _count_row("email status", [m.rows[0] for m in members], n, end)
        rcpt_rows = [r for m in members for r in m.rows[1:]]
        rows = [status_row]
        if rcpt_rows:
            rows.append(_count_row("recipients", rcpt_rows, len(rcpt_rows), end))
        # the stuck threshold of the group's first queued invoice
        firsts = sorted(mk.t for m in members for mk in m.rows[0].marks if mk.kind == "stuck")
        if firsts:
            status_row.marks.append(Mark(firsts[0], "stuck", "stuck threshold",
                                         f"stuck threshold for the first queued invoice of this group "
                                         f"({len(firsts)} of {n} reached it in queue)"))
        reasons: dict[str, None] = {}
        for m in members:
            for r in m.reasons:
                reasons.setdefault(r, None)
        bname = batch if batch != "*" else "all batches"
        label = f"{bname} · {status} · {reason or 'no reason'} ({n:,})"
        sample = tuple(m.id for m in members[:20])
        detail = (f"{n:,} invoices of {bname} now {status}" + (f", {reason_title(reason)}" if reason else "")
                  + f"\ne.g. {', '.join(sample[:8])}" + (f" … and {n - 8:,} more" if n > 8 else ""))
        out.append(Lane(f"group:{batch}|{status}|{reason}", "group", label, batch=batch if batch != "*" else None,
                        status=status, reason=reason or None, reasons=tuple(reasons), count=n, detail=detail,
                        rows=rows, members=sample))
    return out


def _count_row(label: str, rows: list[Row], total: int, end: int) -> Row:
    """A step function: at each change, how many of ``rows`` are in each kind."""
    deltas: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        for s in r.spans:
            deltas[s.start][s.kind] += 1
            if s.end < end:
                deltas[s.end][s.kind] -= 1
    cur: dict[str, int] = defaultdict(int)
    steps: list[tuple[int, dict[str, int]]] = []
    for t in sorted(deltas):
        for k, d in deltas[t].items():
            cur[k] += d
        snap = {k: c for k, c in sorted(cur.items()) if c > 0}
        if steps and steps[-1][1] == snap:
            continue
        if steps and steps[-1][0] == t:
            steps[-1] = (t, snap)
        else:
            steps.append((t, snap))
    if len(steps) > MAX_STEPS:  # keep every change's effect visible but bound the size: sample evenly
        stride = len(steps) / MAX_STEPS
        steps = [steps[int(i * stride)] for i in range(MAX_STEPS)] + [steps[-1]]
    return Row(label, steps=steps, total=total)
