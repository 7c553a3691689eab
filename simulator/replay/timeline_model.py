"""The timeline's picture model: lanes of spans over the virtual clock, and the words and colours of each state.

Shared by both renderers (``timeline_html``, ``timeline_png``) and built by ``timeline.py``.
Every state has a colour *and* a second cue (a fill pattern and an icon) so that the three
states a class must tell apart from the back of a room — token expired, stuck, bounced — do
not rest on telling reds apart.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.domain.reasons import reason_info
from simulator.replay.playhead import Playback
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration

Record = dict[str, Any]

# -- the vocabulary shared by both renderers: span kinds, their labels, colours and second cues ------
KINDS: dict[str, tuple[str, str]] = {
    # invoice email status
    "pending": ("Pending (batch Draft)", "#c7cdd6"),
    "na": ("N/A (not emailed)", "#8d96a3"),
    "queue": ("In Queue", "#f2b84b"),
    "queue-blocked": ("In Queue, blocked", "#ee8a3c"),
    "queue-stuck": ("In Queue, stuck (past the threshold)", "#c62828"),
    "sent": ("Sent (left the platform)", "#4f8fd6"),
    # recipient delivery
    "transit": ("in transit (awaiting reply)", "#a9c8ee"),
    "deferred": ("deferred (4xx, will retry)", "#b07ad9"),
    "inbox": ("inbox", "#3aa35b"),
    "junk": ("junk folder", "#a7b83a"),
    "bounced": ("bounced (DSN to sender)", "#4a1942"),
    "skipped": ("skipped recipient", "#9aa3ad"),
    "unsent": ("not sent yet", "#e8ebef"),
    # sender users
    "sync-valid": ("sync valid", "#3aa35b"),
    "token-expired": ("token expired", "#d6338a"),
    "password-changed": ("password changed", "#e0663a"),
    "unsupported": ("unsupported provider (SMTP path)", "#8e7cc3"),
    "smtp-path": ("no sync (SMTP path)", "#6c8ebf"),
    "inactive": ("user inactive", "#555d66"),
}
#: the second cue of the states that must never be told apart by colour alone: (fill pattern, icon, PNG hatch)
CUES: dict[str, tuple[str, str, str]] = {
    "queue-stuck": ("stripes", "⚠", "////"),
    "bounced": ("cross", "✕", "xx"),
    "token-expired": ("dots", "⊘", ".."),
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
    playback: Playback | None = None  # the player's frames (None: a stepped session's picture)

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
            "kinds": {k: {"label": lab, "color": col, "pattern": CUES.get(k, ("", "", ""))[0],
                          "icon": CUES.get(k, ("", "", ""))[1]} for k, (lab, col) in KINDS.items()},
            "groups": {"status": list(STATUS_KINDS), "delivery": list(DELIVERY_KINDS), "sender": list(SENDER_KINDS)},
            "batches": sorted({ln.batch for ln in self.invoices if ln.batch}, key=_batch_order(self.invoices)),
            "statuses": [s for s in ("N/A", "Pending", "In Queue", "Sent")
                         if any(ln.status == s for ln in self.invoices)],
            "reasons": reasons,
            "reason_info": _reason_texts(reasons + [r for ln in self.senders for r in ln.reasons]),
            "lanes": [ln.to_json() for ln in lanes],
            "player": self.playback.to_json(detailed=not aggregated) if self.playback is not None else None,
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
