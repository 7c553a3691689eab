"""A chaos session: run the tasks, gather outcomes in run order, shrink what failed, summarise.

Kept apart from the CLI so tests (and notebooks) drive exactly what ``mailsim chaos`` does.
Everything in :meth:`Report.to_json` except ``seconds`` and ``runs_per_second`` is a function of
(file, options) alone — never of the executor, the worker count or the completion order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.chaos.generate import CHAOS_KINDS
from simulator.chaos.invariants import INVARIANTS
from simulator.chaos.runner import (
    DEFAULT_MAX_FAULTS,
    ChaosConfig,
    RunOutcome,
    Task,
    base_of,
    plan_of,
    run_all,
    tasks_for,
)
from simulator.chaos.shrink import Reproduction, file_name, shrink_and_write

MAX_LISTED = 50


@dataclass
class Report:
    scenario: str
    file: str
    cfg: ChaosConfig
    outcomes: list[RunOutcome] = field(default_factory=list)
    reproductions: list[Reproduction] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def injected(self) -> dict[str, int]:
        c = Counter(k for o in self.outcomes for k in o.kinds)
        return {k: c[k] for k in CHAOS_KINDS if c[k]}

    def failures(self) -> dict[str, int]:
        """Runs failing each invariant."""
        c = Counter(n for o in self.outcomes for n in {v.invariant for v in o.violations})
        return {k: c[k] for k in INVARIANTS if c[k]}

    def to_json(self) -> dict[str, Any]:
        listed = [{"run": o.run, "seed": o.seed, **v.to_json()} for o in self.failed for v in o.violations]
        return {
            "scenario": self.scenario,
            "file": self.file,
            "chaos_seed": self.cfg.chaos_seed,
            "runs": len(self.outcomes),
            "runs_requested": self.cfg.runs,
            "runs_failed": len(self.failed),
            "rechecked": sum(1 for o in self.outcomes if o.rechecked),
            "emails_checked": sum(o.emails for o in self.outcomes),
            "recipients_checked": sum(o.recipients for o in self.outcomes),
            "injected": self.injected(),
            "failures": self.failures(),
            "violations": listed[:MAX_LISTED],
            "violations_total": len(listed),
            "reproductions": [r.to_json() for r in self.reproductions],
            "interrupted": self.interrupted,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "runs_per_second": round(len(self.outcomes) / self.seconds, 1) if self.seconds > 0 else None,
        }


def run_chaos(path: Path, text: str, cfg: ChaosConfig, *, progress: Callable[[RunOutcome], None] | None = None,
              report: Report | None = None) -> Report:
    """Run every task into ``report`` (so an interrupt leaves what finished in it); outcomes end in run order.

    A :class:`~simulator.scenario.errors.ScenarioError` from the base file propagates before anything runs.
    """
    scn, _t = base_of(text, str(path))
    rep = report or Report(scn.name, str(path), cfg)
    t0 = time.perf_counter()
    try:
        for outcome in run_all(tasks_for(text, str(path), cfg), cfg):
            rep.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    finally:
        rep.outcomes.sort(key=lambda o: o.run)
        rep.seconds = time.perf_counter() - t0
    return rep


def command_line(path: Path, cfg: ChaosConfig) -> str:
    """The options that decide the runs' plans (not how many ran or where): enough to regenerate run k."""
    parts = [f"mailsim chaos {path} --seed {cfg.chaos_seed}"]
    if cfg.max_faults != DEFAULT_MAX_FAULTS:
        parts.append(f"--max-faults {cfg.max_faults}")
    if tuple(cfg.kinds) != CHAOS_KINDS:
        parts.append(f"--kinds {','.join(cfg.kinds)}")
    return " ".join(parts)


def shrink_failures(rep: Report, path: Path, text: str, out_dir: Path,
                    on_start: Callable[[RunOutcome, str], None] | None = None) -> None:
    """One reproduction per failing invariant: from the lowest-numbered run that fails it."""
    scn, _t = base_of(text, str(path))
    cfg = rep.cfg
    done_runs: set[int] = set()
    for name in INVARIANTS:
        first = next((o for o in rep.outcomes if any(v.invariant == name for v in o.violations)), None)
        if first is None:
            continue
        plan = plan_of(Task(text, str(path), cfg.chaos_seed, first.run, cfg.max_faults, cfg.kinds, False))
        violation = next(v for v in first.violations if v.invariant == name)
        if on_start is not None:
            on_start(first, name)
        fname = file_name(scn.name, first.run, name if first.run in done_runs else None)
        rep.reproductions.append(shrink_and_write(
            base=scn, base_text=text, base_path=str(path), chaos_seed=cfg.chaos_seed, run=first.run,
            seed=plan.seed, items=plan.items, violation=violation, out_dir=out_dir, budget=cfg.shrink_budget,
            name=fname, command=command_line(path, cfg)))
        done_runs.add(first.run)
