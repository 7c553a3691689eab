"""Stepping, exact rewind and what-if branches (the engine side of ``mailsim step``)."""

from __future__ import annotations

from pathlib import Path

from simulator.domain.events import Resync
from simulator.engine.session import Session
from simulator.scenario.loader import load_scenario

TOUR = Path(__file__).resolve().parents[1] / "scenarios" / "tour.yaml"


def _state(s: Session) -> tuple[object, ...]:
    views = [(v.id, v.email_status, v.reason, tuple((r.outcome, r.reason, r.at) for r in v.recipients))
             for v in s.result().invoices()]
    return (s.cursor, s.now, s.current(), views, s.result().mailboxes())


def test_back_after_n_steps_is_exactly_the_earlier_state() -> None:
    s = Session(load_scenario(TOUR))
    seen = []
    for _ in range(12):
        s.next(1)
        seen.append(_state(s))
    for k in (1, 5, 11):
        again = s.goto(k)
        assert _state(again) == seen[k - 1]
    assert _state(s.back(0)) == seen[-1]


def test_until_event_and_time() -> None:
    s = Session(load_scenario(TOUR))
    rec = s.until(lambda r: r["event"] == "email.stuck")
    assert rec is not None and rec["invoice"] == "INV-1004" and s.now == 7200
    s.until_time(3 * 3600)
    assert s.now == 3 * 3600


def test_injected_resync_drains_the_queue_and_back_undoes_it() -> None:
    s = Session(load_scenario(TOUR))
    s.until(lambda r: r["event"] == "email.stuck")
    before = _state(s)
    s.inject(Resync(at=0, user="nora"))
    s.until(lambda r: r["event"] == "email.sent" and r["invoice"] == "INV-1004")
    assert s.result().invoice("INV-1004").email_status == "Sent"  # type: ignore[union-attr]
    rewound = s.goto(before[0])  # type: ignore[arg-type]
    assert rewound.injections == [] and _state(rewound) == before
    # replaying forward keeps the injection when it lies before the target
    kept = Session(s.scn, tuple(s.injections)).goto(s.cursor)
    assert _state(kept)[3] == _state(s)[3]


def test_public_view_of_queues_captions_and_the_next_step() -> None:
    s = Session(load_scenario(TOUR))
    assert s.upcoming_kind() == "timeline"
    s.until(lambda r: r["event"] == "email.stuck")
    waiting = [(q.key, q.reason, q.waiting) for q in s.queues() if q.waiting]
    assert waiting == [("downtown", "sync-token-expired", (("INV-1004", 3600, True),))]
    assert s.upcoming_kind() == "queue poll"
    assert [c.text[:5] for c in s.captions] == ["10:00", "Downt"]
    assert s.caption_at(4) is None and s.caption_at(5) is not None
    assert s.world.sync["nora"] is not None and s.initial_world.sync["nora"] == s.world.sync["nora"]
    assert [ev.kind for ev, refused in s.applied_events()] == ["complete_batch"] * 3
