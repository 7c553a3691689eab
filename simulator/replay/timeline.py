"""A run as a picture model: lanes of spans over the virtual clock, and a player (``mailsim timeline``).

Built by stepping the run once through the public
:class:`~simulator.engine.session.Session` (:func:`timeline_of`):

* one lane per invoice — a status row (Pending / N/A / In Queue, split where the
  blocking reason changes and where the email became stuck / Sent) and one row
  per recipient (in transit, deferred, inbox, junk, bounced, skipped, not sent)
  (``timeline_lanes.py``);
* one lane per sender user — sync valid / token expired / password changed /
  unsupported provider / no sync (SMTP path) / inactive, by replaying the domain's
  ``world.apply`` over the applied events (``timeline_senders.py``);
* markers for timeline events (batch completed, logins, re-syncs, DNS edits …),
  token expiries and faults (bands), and per-lane stuck-threshold ticks;
* the player's frames: the state of every moment as deltas per model step
  (``playhead.py``).

Large runs aggregate the invoice lanes (one lane per batch × status × reason
with counts over time, see :func:`aggregate`). Renderers: ``timeline_html``
(self-contained HTML with the player) and ``timeline_png`` (matplotlib). Nothing
here reads the wall clock; the same run gives the same model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from simulator.domain.events import Event
from simulator.domain.world import World
from simulator.engine.result import RunResult
from simulator.engine.session import Session
from simulator.replay.playhead import Playback, record_playback
from simulator.replay.timeline_lanes import _fault_band, _invoice_lane, _marker, primary_reason
from simulator.replay.timeline_model import (
    CUES,
    DELIVERY_KINDS,
    KINDS,
    MARKER_EVENTS,
    MAX_DETAIL_LANES,
    SENDER_EVENTS,
    SENDER_KINDS,
    STATUS_KINDS,
    Band,
    Lane,
    Mark,
    Marker,
    Record,
    Row,
    Span,
    Timeline,
    _Fmt,
    _key,
    aggregate,
    reason_title,
)
from simulator.replay.timeline_senders import sender_lanes, world_history
from simulator.scenario.model import Scenario

__all__ = [
    "CUES",
    "DELIVERY_KINDS",
    "KINDS",
    "MAX_DETAIL_LANES",
    "SENDER_KINDS",
    "STATUS_KINDS",
    "Band",
    "Lane",
    "Mark",
    "Marker",
    "Row",
    "Span",
    "Timeline",
    "activity_span",
    "aggregate",
    "build_timeline",
    "primary_reason",
    "read_trace",
    "reason_title",
    "timeline_of",
    "timeline_of_session",
]


def read_trace(path: str | Path) -> Iterator[Record]:
    """The event records of a JSONL trace (the header line is skipped)."""
    with open(path, "rb") as fh:
        for i, line in enumerate(fh):
            if i == 0 or not line.strip():
                continue
            yield orjson.loads(line)


def timeline_of(scn: Scenario, view: tuple[int, int] | None = None, *, detail_limit: int = 20_000) -> Timeline:
    """Run ``scn`` (stepped once, recording the player's frames) and build its picture model.

    ``detail_limit``: above this many invoices the lanes carry no hover texts (they will be drawn
    aggregated); give the largest ``max_lanes`` a renderer will be asked for.
    """
    sess = Session(scn)
    playback = record_playback(sess)
    return build_timeline(sess.result(), sess.records, view=view, initial=sess.initial_world,
                          applied=sess.applied_events(), playback=playback, detail_limit=detail_limit)


def timeline_of_session(session: Session, view: tuple[int, int] | None = None) -> Timeline:
    """The timeline of a :class:`~simulator.engine.session.Session` as it stands (its records so far; no player)."""
    return build_timeline(session.result(), session.records[: session.cursor], view=view,
                          initial=session.initial_world, applied=session.applied_events())


def build_timeline(result: RunResult, records: Iterable[Record], *, initial: World,
                   applied: list[tuple[Event, str | None]], view: tuple[int, int] | None = None,
                   playback: Playback | None = None, detail_limit: int = 20_000) -> Timeline:
    """The picture model of a run from its trace records (in ``seq`` order) and its applied events."""
    scn = result.spec
    settings = scn.settings
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

    # above this many invoices every renderer aggregates: the per-invoice hover texts would go unseen
    detailed = result.total_invoices <= detail_limit
    lanes = [_invoice_lane(v, by_invoice.get(v.id, ()), end, settings.stuck_after, fmt, detailed)
             for v in result.invoices()]
    senders = sender_lanes(world_history(initial, applied), by_user, senders_seen, end, fmt)
    counts: dict[str, int] = defaultdict(int)
    for ln in lanes:
        counts[str(ln.status or "?")] += 1  # a StrEnum status is a str, but JSON keys must be plain ones
    faults = [_fault_band(f, end, fmt) for f in scn.faults]
    tl = Timeline(
        scenario=scn.name, description=scn.description.strip(), start_iso=scn.iso(0),
        start_ms=int(scn.start.timestamp() * 1000), end_iso=scn.iso(end), end=end, stuck_after=settings.stuck_after,
        token_lifetime=settings.token_lifetime, invoices=lanes, senders=senders, markers=markers,
        faults=faults, counts=dict(counts), accounting=result.accounting(), view=view, playback=playback,
    )
    if tl.view is None:
        tl.view = activity_span(tl)
    return tl


def activity_span(tl: Timeline) -> tuple[int, int]:
    """The window where things happen (first to last change, with a margin), within the run.

    The default view of both outputs: a run of a day whose action is in its first two hours
    must not squeeze that action into the left tenth of the picture.
    """
    ts: list[int] = [m.t for m in tl.markers]
    for band in tl.faults:
        ts.append(band.start)
        if band.end < tl.end:
            ts.append(band.end)
    for ln in [*tl.invoices, *tl.senders]:
        for row in ln.rows:
            ts.extend(s.start for s in row.spans if s.start > 0)
            ts.extend(s.end for s in row.spans if s.end < tl.end)
            ts.extend(m.t for m in row.marks)
    if tl.playback is not None:
        ts.extend(f.t for f in tl.playback.frames if f.t > 0)
    ts = [t for t in ts if 0 <= t <= tl.end]
    if not ts:
        return (0, max(tl.end, 1))
    lo, hi = min(ts), max(ts)
    margin = max((hi - lo) * 0.15, 1800)
    a, b = max(0, int(lo - margin)), min(tl.end, int(hi + margin))
    return (a, b) if b > a else (0, max(tl.end, 1))
