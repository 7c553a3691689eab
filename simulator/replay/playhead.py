"""The state of every moment of a run, as deltas per model step: what the timeline player looks up.

The page's playhead shows, for any moment, what ``mailsim explain --at`` reports then: each
invoice's batch status, email status and reason (or counts per group for large runs), the
queue, each sender's sync state, the latest SMTP replies and the trainer's latest caption.
Recomputing that in the browser from the start at every move would stall on a large run, and
re-deriving it from the trace would copy the engine's rules; instead the run is stepped once
through the public :class:`~simulator.engine.session.Session` and, after each model step that
produced trace events, the invoices those events name are read back through the run's views.
What changed is kept as one :class:`Frame` (a delta), so the page moves the playhead by applying
or undoing deltas. :func:`state_at` is the same lookup in Python (tests hold it to ``explain --at``).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.domain.entities import DAY
from simulator.domain.sync import expires_at
from simulator.domain.world import World
from simulator.engine.result import InvoiceStatus
from simulator.engine.session import Record, Session

#: (batch status, email status, reason, stuck, recipients' outcomes) — what a person reads per invoice
StateKey = tuple[str, str, str, bool, str]
REPLIES_KEPT = 5  # the latest SMTP replies shown (per frame at most this many are kept)

#: events that make a step "notable" (Shift+←/→ jump between them), with a short word for each
NOTABLE = {
    "batch.completed": "batch completed", "sync.expired": "token expired", "email.stuck": "stuck",
    "email.deferred": "deferred", "email.bounced": "bounced", "fault.started": "fault starts",
    "fault.ended": "fault ends", "user.login": "login", "sync.resynced": "re-sync", "sync.set": "sync set",
    "sync.removed": "sync removed", "user.password_changed": "password changed", "user.deactivated": "user off",
    "user.activated": "user on", "contact.changed": "contact edit", "contact.refused": "edit refused",
    "property.changed": "property edit", "settings.changed": "sender setting", "dns.changed": "DNS edit",
    "event.refused": "refused", "settings.token_lifetime": "token lifetime",
}


def invoice_state(v: InvoiceStatus) -> StateKey:
    """What the player shows for one invoice: its statuses and reason, stuck, and the outcomes once Sent."""
    outcomes = ""
    if v.email_status == "Sent":
        outcomes = ", ".join(sorted({("in flight" if outcome == "none" else outcome) + (f" {reason}" if reason else "")
                                     for outcome, reason in v.outcomes}))
    return (v.batch_status, v.email_status, v.reason or "", v.stuck, outcomes)


def sender_state(world: World, uid: str) -> tuple[str, int | None]:
    """A sender's sync state as the page draws it, and when its token dies (None: no token).

    ``sync-valid`` turns into ``token-expired`` once the clock reaches the expiry (the page
    compares with the playhead's time); the order of the other states is ``sync.verdict``'s.
    """
    user = world.users[uid]
    st = world.sync.get(uid)
    exp = expires_at(st, world.token_lifetime) if st is not None and st.supported else None
    if not user.active:
        return "inactive", exp
    if st is None:
        return "smtp-path", None
    if not st.supported:
        return "unsupported", None
    if st.password_pending:
        return "password-changed", exp
    return "sync-valid", exp


@dataclass(slots=True)
class Frame:
    """What one model step changed (the first frame: the state at the start, from nothing)."""

    t: int
    first_seq: int  # the step's trace events: seq first_seq … last_seq (0, 0: none)
    last_seq: int
    label: str
    notable: str  # "" when nothing notable happened
    invoices: list[tuple[int, int, int]] = field(default_factory=list)  # (invoice, old state, new state)
    counts: list[tuple[int, int]] = field(default_factory=list)  # (state, +/- invoices)
    oldest_queued: int | None = None  # when the oldest email still In Queue was queued
    senders: list[tuple[int, str, int | None]] = field(default_factory=list)  # (sender, state, expiry)
    replies: list[list[Any]] = field(default_factory=list)  # the step's latest SMTP replies
    caption: str | None = None

    def to_json(self, detailed: bool) -> list[Any]:
        return [self.t, self.first_seq, self.last_seq, self.label, self.notable,
                [list(x) for x in self.invoices] if detailed else [], [list(x) for x in self.counts],
                self.oldest_queued, [list(x) for x in self.senders], self.replies, self.caption]


@dataclass(slots=True)
class Playback:
    """Every frame of a run plus the tables the frames index into."""

    invoices: list[str]
    states: list[StateKey]
    senders: list[tuple[str, str]]  # (user id, address)
    frames: list[Frame]
    stuck_after: int

    def to_json(self, detailed: bool) -> dict[str, Any]:
        return {"invoices": self.invoices if detailed else [], "states": [list(s) for s in self.states],
                "senders": [list(s) for s in self.senders], "stuck_after": self.stuck_after,
                "frames": [f.to_json(detailed) for f in self.frames]}


class _Recorder:
    """Steps a session to its end and turns each step into a frame."""

    def __init__(self, sess: Session) -> None:
        self.sess = sess
        self.state_ids: dict[StateKey, int] = {}
        self.states: list[StateKey] = []
        self.inv_ids: dict[str, int] = {}
        self.current: list[int] = []
        self.queued: dict[int, int] = {}  # invoice -> queued_at, while In Queue
        self.heap: list[tuple[int, int]] = []
        users = sess.scn.users
        self.senders = [(u.id, u.email) for u in users]
        self.sender_now: list[tuple[str, int | None]] = []

    def state_id(self, key: StateKey) -> int:
        i = self.state_ids.get(key)
        if i is None:
            i = self.state_ids[key] = len(self.states)
            self.states.append(key)
        return i

    def note(self, frame: Frame, v: InvoiceStatus) -> None:
        """Record ``v``'s state in ``frame`` if it changed."""
        idx = self.inv_ids.get(v.id)
        new = self.state_id(invoice_state(v))
        if idx is None:
            idx = self.inv_ids[v.id] = len(self.current)
            self.current.append(-1)
        old = self.current[idx]
        if old != new:
            self.current[idx] = new
            frame.invoices.append((idx, old, new))
        if v.email_status == "In Queue" and v.queued_at is not None:
            if idx not in self.queued:
                self.queued[idx] = v.queued_at
                heapq.heappush(self.heap, (v.queued_at, idx))
        else:
            self.queued.pop(idx, None)

    def close(self, frame: Frame, records: list[Record], captions: list[str]) -> None:
        delta: Counter[int] = Counter()
        for _idx, old, new in frame.invoices:
            if old >= 0:
                delta[old] -= 1
            delta[new] += 1
        frame.counts = [(s, n) for s, n in sorted(delta.items()) if n]
        while self.heap and self.queued.get(self.heap[0][1]) != self.heap[0][0]:
            heapq.heappop(self.heap)
        frame.oldest_queued = self.heap[0][0] if self.heap else None
        world = self.sess.world
        for i, (uid, _email) in enumerate(self.senders):
            st = sender_state(world, uid)
            if i >= len(self.sender_now):
                self.sender_now.append(st)
                frame.senders.append((i, *st))
            elif self.sender_now[i] != st:
                self.sender_now[i] = st
                frame.senders.append((i, *st))
        replies = [r for r in records if r["event"] == "smtp.reply"
                   or (r["event"] == "email.delivered" and r.get("code"))]
        frame.replies = [[int(r["t"]), r.get("code"), r.get("enhanced") or "", r.get("recipient") or "",
                          r.get("invoice") or "",
                          (f"→ {r['folder']}" if r["event"] == "email.delivered" else r.get("text") or ""),
                          r.get("spf") or ""] for r in replies[-REPLIES_KEPT:]]
        frame.caption = "\n".join(captions) if captions else None  # notes of one step: all of them
        frame.label, frame.notable = describe(records)

    def run(self) -> Playback:
        sess = self.sess
        start = Frame(0, 0, 0, "", "")
        for v in sess.result().invoice_statuses():
            self.note(start, v)
        pos = len(sess.records)
        sess.cursor = pos
        self.close(start, sess.records[:pos], [c.text for c in sess.captions if c.position < pos])
        start.first_seq, start.last_seq = (1, pos) if pos else (0, 0)
        start.label = "start"
        frames = [start]
        while sess.advance():
            new = sess.records[pos:]
            if not new:
                continue
            frame = Frame(sess.now, int(new[0]["seq"]), int(new[-1]["seq"]), "", "")
            result = sess.result()
            for inv in dict.fromkeys(r["invoice"] for r in new if r.get("invoice")):
                seen = result.invoice_status(inv)
                if seen is not None:
                    self.note(frame, seen)
            self.close(frame, new, [c.text for c in sess.captions_between(pos, len(sess.records))])
            pos = len(sess.records)
            frames.append(frame)
        end = sess.end_time()
        if end > sess.now:
            sess.until_time(end)
        return Playback(list(self.inv_ids), self.states, self.senders, frames, sess.scn.settings.stuck_after)


def record_playback(sess: Session) -> Playback:
    """Step ``sess`` (a fresh session) to the end of its run, keeping a frame per step."""
    return _Recorder(sess).run()


def describe(records: list[Record]) -> tuple[str, str]:
    """A short line for a step's events ("NOV-LAKE completed · 3 sent"), and its notable part."""
    names = Counter(str(r["event"]) for r in records)
    parts: list[str] = []
    notable: list[str] = []
    batches = [str(r["batch"]) for r in records if r["event"] == "batch.completed"]
    if batches:
        parts.append(", ".join(batches) + " completed")
        notable.append(parts[-1])
    for r in records:
        ev = str(r["event"])
        if ev in NOTABLE and ev not in ("batch.completed", "email.stuck", "email.deferred", "email.bounced"):
            who = r.get("user") or r.get("contact") or r.get("property") or r.get("where") or r.get("name") \
                or r.get("kind") or ""
            text = f"{who} {NOTABLE[ev]}".strip()
            if text not in parts:
                parts.append(text)
                notable.append(text)
    for ev, word in (("email.blocked", "blocked"), ("email.sent", "sent"), ("email.stuck", "stuck"),
                     ("smtp.reply", "SMTP replies"), ("email.deferred", "deferred"), ("email.bounced", "bounced")):
        if names[ev]:
            parts.append(f"{names[ev]:,} {word}")
            if ev in NOTABLE or ev == "email.sent":  # a send is the email's first attempt
                notable.append(parts[-1])
    delivered = Counter(str(r.get("folder")) for r in records if r["event"] == "email.delivered")
    for folder in ("inbox", "junk"):
        if delivered[folder]:
            parts.append(f"{delivered[folder]:,} to {folder}")
            if folder == "junk":
                notable.append(parts[-1])
    if not parts and names:
        parts.append(", ".join(f"{n} {ev}" for ev, n in names.items()))
    return " · ".join(parts), " · ".join(dict.fromkeys(notable))


# -- the lookup the page does, in Python ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MomentState:
    """The state at one moment, as ``#playhead-state`` lists it."""

    t: int
    frame: int
    invoices: dict[str, StateKey]
    counts: dict[StateKey, int]
    queue: int
    oldest_age: int | None
    stuck: int
    senders: dict[str, tuple[str, float | None]]  # user -> (state, days left; negative: expired ago)
    replies: list[list[Any]]
    caption: str | None


def frame_at(pb: Playback, t: int) -> int:
    """The last frame at or before ``t`` (what ``explain --at t`` reports: everything scheduled at t)."""
    lo, hi = 0, len(pb.frames) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pb.frames[mid].t <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def state_at(pb: Playback, t: int) -> MomentState:
    """The state at ``t`` from the frames alone (the page's own lookup, written again for tests)."""
    k = frame_at(pb, t)
    cur = [-1] * len(pb.invoices)
    counts: Counter[int] = Counter()
    senders: dict[int, tuple[str, int | None]] = {}
    replies: list[list[Any]] = []
    caption: str | None = None
    for f in pb.frames[: k + 1]:
        for idx, _old, new in f.invoices:
            cur[idx] = new
        for s, n in f.counts:
            counts[s] += n
        for i, kind, exp in f.senders:
            senders[i] = (kind, exp)
        replies = (replies + f.replies)[-REPLIES_KEPT:]
        caption = f.caption if f.caption is not None else caption
    oldest = pb.frames[k].oldest_queued
    shown: dict[str, tuple[str, float | None]] = {}
    for i, (kind, exp) in senders.items():
        if kind == "sync-valid" and exp is not None and t >= exp:
            kind = "token-expired"
        shown[pb.senders[i][0]] = (kind, None if exp is None else round((exp - t) / DAY, 1))
    by_state = {pb.states[s]: n for s, n in counts.items() if n}
    return MomentState(
        t, k, {pb.invoices[i]: pb.states[s] for i, s in enumerate(cur) if s >= 0}, by_state,
        sum(n for s, n in by_state.items() if s[1] == "In Queue"), None if oldest is None else t - oldest,
        sum(n for s, n in by_state.items() if s[1] == "In Queue" and s[3]), shown, replies, caption)
