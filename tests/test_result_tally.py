"""The summary and the accounting counted per distinct email state equal a count email by email.

``RunResult.summary_groups`` and ``accounting`` count each batch's emails per (status, reason,
recipient set) rather than visiting every email in Python (issue 12). The oracle here is the
per-email definition written out plainly, checked at the end of every corpus scenario and at every
step of the tour (mid-run: emails In Queue without a reason yet, half-finished sends), where a
result is not final and must not reuse an earlier count.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.engine.session import Session
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def oracle(result: RunResult) -> tuple[dict[str, int], Counter[tuple[str, str, str, str]]]:
    """Accounting and summary groups, one email at a time (the definition, not the fast path)."""
    eng = result.engine
    poll = eng.settings.queue_poll
    acc: Counter[str] = Counter()
    groups: Counter[tuple[str, str, str, str]] = Counter()
    for b in eng.scn.batches:
        es = eng.emails.get(b.id)
        if es is None:  # Draft: no emails; every invoice of a property shares its plans
            acc["draft"] += b.count
            for pid in b.property_ids():
                st, why = eng.prop_status[pid]
                outs = ",".join(sorted({"none" if p.skip_reason is None else f"skipped:{p.skip_reason}"
                                        for p in eng.prop_plans[pid]}))
                groups[(eng.batch_status[b.id], st, why or "", outs)] += b.count_for(pid)
            continue
        for e in es:
            acc["invoices"] += 1
            if e.status == "N/A":
                acc["not_emailed"] += 1
            elif e.status == "In Queue":
                acc["in_queue"] += 1
                if e.reason is None and (e.queued_at is None or result.end - e.queued_at >= poll):
                    acc["lost"] += 1
            elif e.status == "Sent":
                acc["sent"] += 1
                for r in e.recipients:
                    acc["in_flight" if r.outcome == "none" else r.outcome] += 1
            else:
                acc["lost"] += 1
            outs = ",".join(sorted({r.outcome + (f":{r.reason}" if r.reason else "") for r in e.recipients}))
            groups[(eng.batch_status[b.id], e.status, e.reason or "", outs)] += 1
    acc["invoices"] += acc["draft"]
    acc.setdefault("lost", 0)
    return dict(sorted(acc.items())), groups


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_final_counts_equal_the_per_email_count(path: Path) -> None:
    result = simulate(load_scenario(path))
    assert result.final
    acc, groups = oracle(result)
    assert result.accounting() == acc
    assert result.accounting() == acc  # the kept tallies give the same answer twice
    assert result.summary_groups() == groups
    assert sum(groups.values()) == result.total_invoices


def test_counts_at_every_step_of_the_tour_equal_the_per_email_count() -> None:
    sess = Session(load_scenario(ROOT / "scenarios" / "tour.yaml"))
    seen_waiting = False
    steps = 0
    held = sess.result()  # a mid-run view kept while the run moves on must not answer from an old count
    while sess.advance():
        steps += 1
        for result in (sess.result(), held):
            assert not result.final
            acc, groups = oracle(result)
            assert result.accounting() == acc, f"step {steps}"
            assert result.summary_groups() == groups, f"step {steps}"
        seen_waiting = seen_waiting or acc.get("in_queue", 0) > 0
    assert steps > 10 and seen_waiting


def test_an_email_waiting_past_a_poll_without_a_reason_is_lost() -> None:
    """The one accounting rule that looks at single emails: In Queue, no reason, a poll gone by."""
    result = simulate(load_scenario(ROOT / "scenarios" / "tour.yaml"))
    eng = result.engine
    batch = next(b for b in eng.scn.batches if eng.emails.get(b.id))
    victim = eng.emails[batch.id][0]
    before = result.accounting()
    fresh = RunResult(eng, result.end, final=False)
    old = (victim.status, victim.reason)
    try:
        victim.status, victim.reason = "In Queue", None
        acc, _ = oracle(fresh)
        assert fresh.accounting() == acc
        assert acc["lost"] == before["lost"] + (1 if victim.queued_at is None
                                                or result.end - victim.queued_at >= eng.settings.queue_poll else 0)
        assert acc["lost"] == 1
        # a final result keeps its first count: the same state is not walked again
        assert result.accounting() == before
    finally:
        victim.status, victim.reason = old


def test_recipient_sets_are_counted_apart_even_when_their_contents_are_equal() -> None:
    """Two emails whose sets hold equal recipients still have two states: a set is shared state, not a value.

    (A later write to one of them must not show in the other's count; list equality would merge them.)
    """
    from simulator.engine.result import tally
    from simulator.engine.state import Email, RcptSet

    a, b = RcptSet(), RcptSet()
    assert a == a and a != b and len({a, b}) == 2
    emails = Email.many(["<1@m>", "<2@m>"], None, "Sent", None, (), a)  # type: ignore[arg-type]
    emails += Email.many(["<3@m>"], None, "Sent", None, (), b)  # type: ignore[arg-type]
    got = tally(emails)
    assert [(status, reason, rs is a, n) for (status, reason, rs), n in got] == [
        ("Sent", None, True, 2), ("Sent", None, False, 1)]
