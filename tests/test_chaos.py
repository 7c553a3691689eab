"""mailsim chaos: generation, invariants (each shown able to fail), ddmin, planted bugs found and shrunk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.chaos.generate import CHAOS_KINDS, Targets, build, edit_for, generate, horizon
from simulator.chaos.invariants import (
    check_accounting,
    check_bounce_dsn,
    check_delivered_once,
    check_deterministic,
    check_transitions,
    parse_trace,
)
from simulator.chaos.report import Report, run_chaos, shrink_failures
from simulator.chaos.runner import ChaosConfig, check_scenario
from simulator.chaos.shrink import ddmin
from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.scenario.edit import apply_edit
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.transport.memory import MemoryTransport

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "scenarios" / "tour.yaml"
TEMPFAIL = ROOT / "scenarios" / "after-sending-seeded-tempfail.yaml"
LOGIN = ROOT / "scenarios" / "step3-login-at-day-85-saves-token.yaml"


def _stable(rep: Report) -> dict[str, Any]:
    j = rep.to_json()
    for k in ("seconds", "runs_per_second"):
        j.pop(k)
    return j


# -- generation ----------------------------------------------------------------------------------------


def test_generation_is_a_pure_function_of_seed_run_and_scenario() -> None:
    scn = load_scenario(TOUR)
    a = [generate(scn, 5, k) for k in range(40)]
    b = [generate(load_scenario(TOUR), 5, k) for k in range(40)]
    assert a == b
    assert len({p.seed for p in a}) == 40  # each run has its own scenario seed
    assert a != [generate(scn, 6, k) for k in range(40)]
    h = horizon(scn)
    for p in a:
        assert 1 <= len(p.items) <= 4
        for it in p.items:
            assert [it.fault, it.event, it.remove].count(None) == 2
            if it.fault is not None:
                assert 0 <= (it.fault.at or 0) <= h
            if it.event is not None:
                assert 0 <= it.event.at <= h


def test_kinds_and_intensity_are_respected() -> None:
    scn = load_scenario(LOGIN)
    t = Targets.of(scn)
    assert t.logins and t.synced_users and "_spf.google.com" in t.dns_names
    plans = [generate(scn, 1, k, max_faults=2, kinds=("skip_login", "outage")) for k in range(30)]
    kinds = {it.kind for p in plans for it in p.items}
    assert kinds == {"skip_login", "outage"}
    assert all(1 <= len(p.items) <= 2 for p in plans)
    # a kind the scenario cannot take (no login in the tour) is never drawn
    assert not any(it.kind == "skip_login" for k in range(30) for it in generate(load_scenario(TOUR), 1, k).items)


@pytest.mark.parametrize("path", [TOUR, TEMPFAIL, LOGIN], ids=lambda p: p.stem)
def test_built_run_equals_the_written_file(path: Path) -> None:
    """What chaos runs in memory is what the reproduction file says (locations aside)."""
    scn = load_scenario(path)
    text = path.read_text()

    def strip(s: Any) -> Any:
        return (s.seed, tuple(replace(e, loc="") for e in s.timeline), tuple(replace(f, loc="") for f in s.faults))

    for k in range(12):
        p = generate(scn, 9, k, max_faults=6)
        written = load_scenario_text(apply_edit(text, edit_for(p.seed, p.items), str(path)), str(path))
        assert strip(build(scn, p.seed, p.items)) == strip(written)


# -- real runs: every invariant holds, whatever the executor ---------------------------------------------


FINDINGS = sorted((ROOT / "tests" / "data" / "chaos").glob("*.yaml"))


def test_chaos_runs_hold_every_invariant_and_do_not_depend_on_the_executor() -> None:
    for path, runs in ((TOUR, 24), (TEMPFAIL, 12), (LOGIN, 12)):
        text = path.read_text()
        cfg = ChaosConfig(runs=runs, chaos_seed=11, workers=1, recheck_every=4)
        one = run_chaos(path, text, cfg)
        two = run_chaos(path, text, replace(cfg, workers=2))
        assert one.ok, one.to_json()["violations"]
        assert _stable(one) == _stable(two)
        j = one.to_json()
        assert j["runs"] == runs and j["rechecked"] == runs // 4
        assert j["emails_checked"] == runs * sum(b.count for b in load_scenario(path).batches)
        assert sum(j["injected"].values()) >= runs


def test_slow_faults_hold_every_invariant() -> None:
    """Slow faults alone (and with the faults that make a slow transaction retry): a slow
    transaction's copy is stored when its 250 is applied, never before (tests/data/chaos/)."""
    for path, runs in ((TOUR, 24), (LOGIN, 12)):
        cfg = ChaosConfig(runs=runs, chaos_seed=5, workers=1, recheck_every=4,
                          kinds=("slow", "outage", "tempfail", "disconnect"))
        rep = run_chaos(path, path.read_text(), cfg)
        assert rep.ok, rep.to_json()["violations"]
        assert rep.to_json()["injected"].get("slow", 0) > 0


@pytest.mark.parametrize("path", FINDINGS, ids=lambda p: p.stem)
def test_engine_findings_are_fixed(path: Path) -> None:
    """Regression: each file the engine's slow-reply bug was found with now passes ``--check``."""
    assert check_scenario(load_scenario(path), recheck=True).violations == ()


# -- each checker can fail ---------------------------------------------------------------------------------


@pytest.fixture()
def tour_run(tmp_path: Path) -> tuple[RunResult, list[dict[str, Any]]]:
    trace = tmp_path / "t.jsonl"
    res = simulate(load_scenario(TOUR), trace=trace)
    recs = parse_trace(trace.read_bytes())
    for check in (check_accounting, check_transitions, check_delivered_once, check_bounce_dsn):
        assert check(res, recs) == []
    return res, recs


def _first(recs: list[dict[str, Any]], event: str, **match: Any) -> dict[str, Any]:
    return next(r for r in recs if r["event"] == event and all(r.get(k) == v for k, v in match.items()))


def _emails(res: RunResult) -> Iterator[Any]:
    for *_x, e in res.engine.iter_invoices():
        if e is not None:
            yield e


def test_accounting_fails_on_a_reasonless_queued_email_and_a_stranded_deferral(
        tour_run: tuple[RunResult, list[dict[str, Any]]]) -> None:
    res, recs = tour_run
    queued = next(e for e in _emails(res) if e.status == "In Queue")
    queued.reason = None
    got = check_accounting(res, recs)
    assert {v.invariant for v in got} == {"accounting"}
    assert any(v.invoice == queued.invoice and "without a reason" in v.detail for v in got)
    sent = next(e for e in _emails(res) if e.invoice == "INV-1001")
    sent.own_recipients()[0].outcome = "deferred"  # no email.deferred in the trace: no retry scheduled
    assert any("no retry" in v.detail for v in check_accounting(res, recs))


def test_transitions_fail_on_illegal_moves(tour_run: tuple[RunResult, list[dict[str, Any]]]) -> None:
    res, recs = tour_run
    sent = _first(recs, "email.sent", invoice="INV-1001")
    # sent twice
    got = check_transitions(res, [*recs, {**sent, "seq": 999}])
    assert any("Sent → Sent" in v.detail for v in got)
    # an N/A invoice (frozen at completion) sent
    got = check_transitions(res, [*recs, {**sent, "seq": 999, "invoice": "INV-1005"}])
    assert any(v.invoice == "INV-1005" and "N/A → Sent" in v.detail for v in got)
    # a status event after completion, and a Draft invoice jumping to In Queue
    st = _first(recs, "invoice.status", invoice="INV-1001")
    got = check_transitions(res, [*recs, {**st, "seq": 999, "email_status": "Pending"},
                                  {**st, "seq": 1000, "invoice": "INV-1006", "email_status": "In Queue"}])
    assert any(v.invoice == "INV-1001" and "after completion" in v.detail for v in got)
    assert any(v.invoice == "INV-1006" and "while the batch is Draft" in v.detail for v in got)
    # a delivery attempt after the final outcome (the recipient bounced)
    bounce = _first(recs, "email.bounced", invoice="INV-1003")
    got = check_transitions(res, [*recs, {**bounce, "seq": 999, "event": "email.deferred"}])
    assert any("after the final outcome bounced" in v.detail for v in got)
    assert all(v.invariant == "transitions" for v in got)


def test_delivered_once_fails_on_a_double_delivery(tour_run: tuple[RunResult, list[dict[str, Any]]]) -> None:
    res, recs = tour_run
    d = _first(recs, "email.delivered", invoice="INV-1001")
    got = check_delivered_once(res, [*recs, {**d, "seq": 999}])
    assert any("delivered 2 times" in v.detail for v in got)
    assert any("mailbox holds inbox=1 junk=0; the trace delivered inbox=2" in v.detail for v in got)
    res.engine.store.file("ann@maple.example", "inbox", "<INV-1001@mailsim.invalid>", 4000)  # stored twice
    got = check_delivered_once(res, recs)
    assert any("stored 2 times in inbox" in v.detail for v in got)
    assert {v.invariant for v in got} == {"delivered-once"}


def test_bounce_dsn_fails_on_a_missing_or_extra_dsn(tour_run: tuple[RunResult, list[dict[str, Any]]]) -> None:
    res, recs = tour_run
    box = res.engine.store.boxes["lakeside@greenacre.example"]
    kept = list(box.messages)
    box.messages.clear()
    box.bounces = 0
    got = check_bounce_dsn(res, recs)
    assert any("never reached the sender's mailbox" in v.detail for v in got)
    box.messages.extend(kept)
    box.bounces = 1
    res.engine.store.file("lakeside@greenacre.example", "bounce", "<dsn-x>", 5000)
    got = check_bounce_dsn(res, recs)
    assert any("no bounce in the trace" in v.detail for v in got) and any("bounces=2" in v.detail for v in got)
    # a bounced recipient without its bounce event
    got = check_bounce_dsn(res, [r for r in recs if r["event"] != "email.bounced"])
    assert any(v.invoice == "INV-1003" and "0 bounce event" in v.detail for v in got)
    assert {v.invariant for v in got} == {"bounce-dsn"}


def test_determinism_check_names_the_first_differing_line() -> None:
    assert check_deterministic(b"h\na\nb\n", b"h\na\nb\n") == []
    (v,) = check_deterministic(b"h\na\nb\n", b"h\na\nc\n")
    assert v.invariant == "deterministic" and "line 3" in v.detail
    (v,) = check_deterministic(b"h\na\n", b"h\na\nc\n")
    assert "(ended)" in v.detail


# -- ddmin -------------------------------------------------------------------------------------------------


def test_ddmin_finds_a_one_minimal_subset() -> None:
    items = list(range(16))
    r = ddmin(items, lambda s: {3, 11} <= set(s))
    assert r.items == [3, 11] and r.minimal
    r = ddmin(items, lambda s: 7 in s)
    assert r.items == [7] and r.minimal
    r = ddmin(items, lambda s: True)
    assert r.items == [] and r.tests == 1
    # "at least 3 even numbers": any 3 evens is 1-minimal
    r = ddmin(items, lambda s: sum(1 for x in s if x % 2 == 0) >= 3)
    assert len(r.items) == 3 and all(x % 2 == 0 for x in r.items) and r.minimal


def test_ddmin_respects_its_budget_and_still_returns_a_failing_set() -> None:
    calls: list[Sequence[int]] = []

    def fails(s: Sequence[int]) -> bool:
        calls.append(s)
        return {1, 5, 9, 13} <= set(s)

    r = ddmin(list(range(32)), fails, budget=5)
    assert len(calls) == r.tests == 5 and not r.minimal
    assert {1, 5, 9, 13} <= set(r.items)


# -- planted bugs: found, shrunk, written, reproduced ---------------------------------------------------


def _plant_dropped_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DSN is lost whenever the scenario has a permfail fault."""
    real = MemoryTransport.deliver_dsn

    def deliver_dsn(self: MemoryTransport, dsn: Any) -> None:
        if any(f.kind == "permfail" for f in self.server.faults):
            return
        real(self, dsn)

    monkeypatch.setattr(MemoryTransport, "deliver_dsn", deliver_dsn)


def _plant_double_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message is filed twice when a tempfail fault is configured."""
    real = MemoryTransport.attempt

    def attempt(self: MemoryTransport, att: Any) -> Any:
        res = real(self, att)
        if res.folder is not None and any(f.kind == "tempfail" for f in self.server.faults):
            accepted = [r for r, rep in zip(att.rcpts, res.replies, strict=True) if rep.ok]
            self.server.file_copies(accepted, res.folder, [att.message_id], att.now)
        return res

    monkeypatch.setattr(MemoryTransport, "attempt", attempt)


@pytest.mark.parametrize(("plant", "invariant", "kind"), [
    (_plant_dropped_dsn, "bounce-dsn", "permfail"),
    (_plant_double_delivery, "delivered-once", "tempfail"),
], ids=["dropped-dsn", "double-delivery"])
def test_a_planted_bug_is_found_shrunk_and_reproduced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      plant: Any, invariant: str, kind: str) -> None:
    text = TOUR.read_text()
    with monkeypatch.context() as m:
        plant(m)
        cfg = ChaosConfig(runs=30, chaos_seed=1, workers=1, recheck_every=0)
        rep = run_chaos(TOUR, text, cfg)
        assert invariant in rep.failures()
        shrink_failures(rep, TOUR, text, tmp_path)
        (r,) = [r for r in rep.reproductions if r.invariant == invariant]
        assert r.reproduced and r.minimal and 1 <= len(r.items) <= 2
        assert any(it.kind == kind for it in r.items)
        assert r.path.parent == tmp_path and r.path.name.startswith("chaos-tour-run")
        header = r.path.read_text().split("schema:")[0]
        assert f"run {r.run}" in header and invariant in header and "--seed 1" in header
        scn = load_scenario(r.path)
        assert invariant in {v.invariant for v in check_scenario(scn).violations}
    # the bug removed, the same file passes
    assert check_scenario(load_scenario(r.path), recheck=True).violations == ()


def test_a_crash_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any, dsn: Any) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(MemoryTransport, "deliver_dsn", boom)
    (v,) = check_scenario(load_scenario(TOUR)).violations
    assert v.invariant == "no-crash" and "kaboom" in v.detail


def test_report_json_shape() -> None:
    rep = run_chaos(TEMPFAIL, TEMPFAIL.read_text(), ChaosConfig(runs=3, workers=1))
    j = orjson.loads(orjson.dumps(rep.to_json()))
    assert set(j) >= {"scenario", "file", "chaos_seed", "runs", "runs_failed", "rechecked", "emails_checked",
                      "recipients_checked", "injected", "failures", "violations", "reproductions", "interrupted",
                      "ok"}
    assert set(j["injected"]) <= set(CHAOS_KINDS)


def test_edit_removes_and_appends_in_text_and_round_trip_modes() -> None:
    """A flow-style timeline cannot be edited as text: the round trip gives the same scenario."""
    from simulator.scenario.edit import ListEdit, ScenarioEdit, edit_text, edit_yaml

    block = LOGIN.read_text()
    flow_style = block.replace("timeline:\n  - {at: +1d, login: lee}\n  - {at: +8d, complete_batch: NOV-LAKE}\n",
                               "timeline: [{at: +1d, login: lee}, {at: +8d, complete_batch: NOV-LAKE}]\n")
    assert flow_style != block
    scn = load_scenario(LOGIN)
    pos = next(i for i, e in enumerate(scn.timeline) if e.kind == "login")
    edit = ScenarioEdit(scalars=(("seed", 99),), lists=(
        ListEdit("faults", append=("{kind: outage, at: +1h, for: 5m}",)),
        ListEdit("timeline", remove=frozenset({pos}), append=("{at: +2h, resync: lee}",))))
    assert edit_text(flow_style, edit) is None
    a = load_scenario_text(edit_text(block, edit) or "", "a.yaml")
    b = load_scenario_text(edit_yaml(flow_style, edit), "b.yaml")
    assert apply_edit(flow_style, edit) == edit_yaml(flow_style, edit)
    for s in (a, b):
        assert s.seed == 99 and [f.kind for f in s.faults] == ["outage"]
        assert "login" not in [e.kind for e in s.timeline] and s.timeline[-1].kind == "resync"
