"""Sender lanes: each user's sync state over the run, by replaying the domain's one rule.

The engine changes a user only through ``simulator.domain.world.apply``; so does this module.
Starting from the session's initial world it applies the run's timeline events, in the order
the run applied them (what-if injections included), and reads each user's state between two
events; a token that dies between them (``domain.sync.verdict``) splits the span there. An
expiry before the scenario starts (which emits no ``sync.expired``) is drawn all the same.
"""

from __future__ import annotations

from typing import Any

from simulator.domain.events import Event
from simulator.domain.sync import SyncState, expires_at, verdict
from simulator.domain.world import World, apply
from simulator.replay.timeline_lanes import _marker
from simulator.replay.timeline_model import KINDS, Lane, Mark, Record, Row, Span, _Fmt, _key
from simulator.scenario.times import format_duration

_MARK_KINDS = {"user.login": "login", "sync.resynced": "resync", "sync.set": "resync",
               "user.password_changed": "password", "sync.expired": "expiry"}


def world_history(initial: World, applied: list[tuple[Event, str | None]]) -> list[tuple[int, World]]:
    """The world from the start and after each applied event: ``[(0, initial), (t1, w1), …]``."""
    out = [(0, initial)]
    world = initial
    for ev, _refused in applied:
        world = apply(world, ev).world
        t = max(0, ev.at)
        if out[-1][0] == t:
            out[-1] = (t, world)  # several events at one instant: the state after the last one
        else:
            out.append((t, world))
    return out


def sender_lanes(history: list[tuple[int, World]], by_user: dict[str, list[Record]],
                 senders_seen: dict[str, None], end: int, fmt: _Fmt) -> list[Lane]:
    """One lane per user who has (or gets) a mailbox sync or who sent or was blocked as a sender."""
    initial = history[0][1]
    lanes: list[Lane] = []
    for uid, user in initial.users.items():
        recs = by_user.get(uid, [])
        has_sync = any(w.sync.get(uid) is not None for _t, w in history)
        if not has_sync and _key(user.email) not in senders_seen:
            continue
        segs: list[list[Any]] = []  # [start, end, kind, detail], adjacent equal ones merged
        for i, (a, world) in enumerate(history):
            b = min(history[i + 1][0], end) if i + 1 < len(history) else end
            u = world.users[uid]
            for a2, b2, kind, detail in _sync_segments(world.sync.get(uid), u.active, a, b,
                                                       world.token_lifetime, fmt):
                if segs and segs[-1][2] == kind and segs[-1][1] == a2 and segs[-1][3] == detail:
                    segs[-1][1] = b2
                else:
                    segs.append([a2, b2, kind, detail])
        spans = [Span(a, b, kind, KINDS[kind][0], _sync_reason(kind),
                      f"{uid} <{user.email}> · {KINDS[kind][0]}\n{fmt.span(a, b)}\n{detail}")
                 for a, b, kind, detail in segs]
        row = Row("mailbox sync", spans=spans)
        for r in recs:
            mk = _marker(r, fmt)
            row.marks.append(Mark(r["t"], _MARK_KINDS.get(r["event"], "state"), mk.label, mk.detail))
        kinds_seen = dict.fromkeys(s.kind for s in spans)
        final = spans[-1] if spans else None
        lane = Lane(f"user:{uid}", "sender", f"{uid} <{user.email}>", status=final.label if final else None,
                    reason=final.reason if final else None,
                    reasons=tuple(dict.fromkeys(c for k in kinds_seen if (c := _sync_reason(k)))), rows=[row])
        first = initial.sync.get(uid)
        lane.detail = (f"sender user {uid} <{user.email}>"
                       + (f", sync {first.provider}" if first else ", no mailbox sync") + ": "
                       + " → ".join(KINDS[k][0] for k in kinds_seen))
        lanes.append(lane)
    return lanes


def _sync_reason(kind: str) -> str | None:
    return {"token-expired": "sync-token-expired", "password-changed": "sync-password-changed",
            "unsupported": "sync-provider-unsupported"}.get(kind)


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
