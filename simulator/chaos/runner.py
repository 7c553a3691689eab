"""Run one chaos run and check it; fan many out over the sweep executor.

:func:`run_task` is what a pool or Dask worker executes: it receives the base file's text
(no shared disk needed), parses it once per process, rebuilds the run's plan from
(chaos seed, run index) and returns a small picklable :class:`RunOutcome`. Nothing in it
depends on where or in which order it runs, so results are the same for any executor.
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.chaos.generate import CHAOS_KINDS, RunPlan, Targets, build, generate
from simulator.chaos.invariants import Violation, check_all, check_deterministic, parse_trace
from simulator.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Checked:
    """One scenario run (twice when rechecked) and what its invariants said."""

    violations: tuple[Violation, ...]
    emails: int = 0  # invoice emails whose fate was checked (every invoice of the scenario)
    recipients: int = 0


def check_scenario(scn: Scenario, *, recheck: bool = False) -> Checked:
    """Simulate ``scn`` with a trace and check every invariant; ``recheck`` runs it again and compares traces."""
    from simulator.engine.run import simulate

    with tempfile.TemporaryDirectory(prefix="mailsim-chaos-") as tmp:
        path = Path(tmp) / "a.jsonl"
        try:
            result = simulate(scn, trace=path)
        except Exception as exc:  # a crash is a finding, reported like any violation
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Checked((Violation("no-crash", f"{type(exc).__name__}: {exc} "
                                                  f"(at {Path(where.filename).name}:{where.lineno})"),))
        data = path.read_bytes()
        records = parse_trace(data)
        found = check_all(result, records)
        emails = sum(b.count for b in scn.batches)
        recipients = sum(len(e.recipients) for *_x, e in result.engine.iter_invoices() if e is not None)
        if recheck:
            again = Path(tmp) / "b.jsonl"
            try:
                simulate(scn, trace=again)
                found.extend(check_deterministic(data, again.read_bytes()))
            except Exception as exc:
                found.append(Violation("deterministic", f"the second run raised {type(exc).__name__}: {exc}"))
    return Checked(tuple(found), emails, recipients)


@dataclass(frozen=True, slots=True)
class Task:
    """Everything a worker needs for one run; the base text travels with it."""

    text: str
    path: str
    chaos_seed: int
    run: int
    max_faults: int
    kinds: tuple[str, ...]
    recheck: bool


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run: int
    seed: int
    kinds: tuple[str, ...]  # the injected items' kinds, in plan order
    violations: tuple[Violation, ...]
    emails: int
    recipients: int
    rechecked: bool

    @property
    def ok(self) -> bool:
        return not self.violations


_BASE: dict[tuple[str, str], tuple[Scenario, Targets]] = {}


def base_of(text: str, path: str) -> tuple[Scenario, Targets]:
    """The parsed base scenario and its targets, once per process (a worker serves many runs of one file)."""
    key = (path, text)
    hit = _BASE.get(key)
    if hit is None:
        from simulator.scenario.loader import load_scenario_text

        if len(_BASE) >= 4:
            _BASE.clear()
        scn = load_scenario_text(text, path)
        hit = _BASE[key] = (scn, Targets.of(scn))
    return hit


def plan_of(task: Task) -> RunPlan:
    scn, targets = base_of(task.text, task.path)
    return generate(scn, task.chaos_seed, task.run, max_faults=task.max_faults, kinds=task.kinds, targets=targets)


def run_task(task: Task) -> RunOutcome:
    """One chaos run: plan, build, simulate, check (module level: pickled by reference)."""
    scn, _t = base_of(task.text, task.path)
    plan = plan_of(task)
    checked = check_scenario(build(scn, plan.seed, plan.items), recheck=task.recheck)
    return RunOutcome(task.run, plan.seed, tuple(it.kind for it in plan.items), checked.violations, checked.emails,
                      checked.recipients, task.recheck)


DEFAULT_MAX_FAULTS = 4


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    runs: int
    chaos_seed: int = 0
    max_faults: int = DEFAULT_MAX_FAULTS
    kinds: tuple[str, ...] = CHAOS_KINDS
    recheck_every: int = 10  # run k is run twice when k % recheck_every == 0; 0: never
    workers: int | None = None
    dask: str | None = None
    shrink_budget: int = 200  # re-runs allowed per shrink


def tasks_for(text: str, path: str, cfg: ChaosConfig) -> list[Task]:
    every = cfg.recheck_every
    return [Task(text, path, cfg.chaos_seed, k, cfg.max_faults, cfg.kinds, every > 0 and k % every == 0)
            for k in range(cfg.runs)]


def run_all(tasks: Sequence[Task], cfg: ChaosConfig) -> Iterator[RunOutcome]:
    """Outcomes in completion order (callers sort by ``run``); closing the iterator stops the workers."""
    from simulator.sweep.executor import imap_unordered

    gen = imap_unordered(run_task, tasks, workers=cfg.workers, dask=cfg.dask)
    try:
        for _i, outcome in gen:
            yield outcome
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()
