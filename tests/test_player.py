"""The timeline player's state of the moment (``#playhead-state``) agrees with ``explain --at``.

The page only looks frames up; :func:`state_at` is the same lookup in Python, so holding it to
``explain_scenario(scn, until=t)`` on every scenario at several moments holds the page's data to
it (the browser tests then check that the page shows what the data says).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from simulator.domain.sync import verdict
from simulator.engine.run import simulate
from simulator.engine.session import Session
from simulator.explain.explain import explain_scenario
from simulator.replay.playhead import Playback, record_playback, state_at
from simulator.scenario.loader import load_scenario
from simulator.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "scenarios" / "tour.yaml"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@cache
def playback(path: Path) -> tuple[Scenario, Playback, int]:
    scn = load_scenario(path)
    sess = Session(scn)
    pb = record_playback(sess)
    return scn, pb, sess.now


def moments(pb: Playback, end: int) -> list[int]:
    """Up to six moments: the start, the first change, between two frames, the last frame, the end."""
    times = sorted({f.t for f in pb.frames})
    picked = {0, times[min(1, len(times) - 1)], times[len(times) // 2], times[-1], end}
    if len(times) > 2:
        picked.add((times[1] + times[2]) // 2)  # between two frames: the earlier one's state
    return sorted(t for t in picked if 0 <= t <= end)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_state_of_the_moment_agrees_with_explain_at(path: Path) -> None:
    scn, pb, end = playback(path)
    for t in moments(pb, end):
        st = state_at(pb, t)
        exps = explain_scenario(scn, until=t)
        # explain groups large runs (one explanation per kind, with its count): compare counts then
        said: Counter[tuple[str, str]] = Counter()
        for x in exps:
            said[(x.status, x.reason or "")] += x.count
        shown: Counter[tuple[str, str]] = Counter()
        for key, n in st.counts.items():
            shown[(key[1], key[2])] += n
        assert said == shown, (path.stem, t)
        if len(exps) == len(st.invoices):  # one by one: each invoice agrees
            assert {x.invoice: (x.status, x.reason or "") for x in exps} == {
                inv: (key[1], key[2]) for inv, key in st.invoices.items()}, (path.stem, t)
        in_queue = [x for x in exps if x.status == "In Queue"]
        assert st.queue == sum(x.count for x in in_queue), (path.stem, t)
        assert st.stuck == sum(x.count for x in in_queue if any("stuck since" in c for c in x.chain)), (path.stem, t)
        # each sender's sync state is the engine's verdict at that moment
        world = simulate(replace(scn, until=t, expect=())).engine.world
        for uid, (kind, days) in st.senders.items():
            sync = world.sync.get(uid)
            if sync is None or not sync.supported or not world.users[uid].active:
                continue
            v = verdict(sync, t, world.token_lifetime)
            want = {None: "sync-valid", "sync-token-expired": "token-expired",
                    "sync-password-changed": "password-changed"}[v.reason]
            assert kind == want, (path.stem, t, uid)
            assert v.expires_at is not None and days == round((v.expires_at - t) / 86400, 1)


def test_tour_frames_step_through_the_morning() -> None:
    _scn, pb, end = playback(TOUR)
    assert [(f.t, f.notable) for f in pb.frames] == [
        (0, ""),
        (3600, "NOV-LAKE, NOV-DOWN, NOV-HILL completed"),
        (3600, "4 sent · 1 bounced · 1 to junk"),
        (7200, "1 stuck"),
    ]
    assert end == 86400
    at_start = state_at(pb, 0)
    assert at_start.invoices["INV-1004"] == ("Draft", "Pending", "batch-draft", False, "")
    assert at_start.senders["nora"] == ("token-expired", -5.0)
    assert at_start.queue == 0 and at_start.oldest_age is None and at_start.replies == []
    later = state_at(pb, 9000)  # 11:30: between the last frame and the end
    assert later.frame == 3 and later.queue == 1 and later.stuck == 1 and later.oldest_age == 5400
    assert later.invoices["INV-1004"] == ("Sent", "In Queue", "sync-token-expired", True, "")
    assert [r[1] for r in later.replies] == [250, 550, 250]


def test_captions_of_faults_and_events_stay_until_the_next_one() -> None:
    from simulator.scenario.loader import load_scenario_text

    text = (TOUR.read_text(encoding="utf-8")
            + "faults:\n"
            + "  - {kind: tempfail, stage: rcpt, probability: 0.0, target: oak.example, note: \"always on\"}\n"
            + "  - {at: +1h30m, for: 10m, kind: outage, target: maple.example, note: \"maple.example is down\"}\n")
    scn = load_scenario_text(text, "tour-faults.yaml")
    pb = record_playback(Session(scn))
    assert state_at(pb, 0).caption == "always on"  # a fault on all the run: from the start
    assert state_at(pb, 3600).caption.startswith("10:00 — the November batches")  # type: ignore[union-attr]
    assert state_at(pb, 5399).caption.startswith("10:00 — the November batches")  # type: ignore[union-attr]
    assert state_at(pb, 5400).caption == "maple.example is down"
    assert state_at(pb, 80000).caption == "maple.example is down"
