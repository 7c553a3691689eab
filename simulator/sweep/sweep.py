"""A sweep: a grid of scenario parameters × seeds, each combination one independent run.

``plan`` checks everything that can be checked before any run starts (the file, each ``--vary``
path and value on its own, the seeds), so a typo costs a second, not a cluster-hour. ``execute``
hands the runs to an executor and yields rows as they finish; what a row holds depends only on the
scenario text, the overrides and the seed.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.scenario.errors import ScenarioError
from simulator.sweep.executor import imap_unordered
from simulator.sweep.grid import (
    GridError,
    Override,
    RunSpec,
    Vary,
    apply,
    build_grid,
    override_error,
    parse_seeds,
    parse_value,
    parse_vary,
)
from simulator.sweep.worker import METRIC_COLUMNS, Job, remember_tree, run_one

BASE_COLUMNS = ("run", "key", "seed")


@dataclass(frozen=True)
class Plan:
    path: str
    text: str
    sha256: str
    name: str
    varies: tuple[Vary, ...]
    seeds: tuple[int, ...]
    runs: tuple[RunSpec, ...]

    @property
    def columns(self) -> list[str]:
        return [*BASE_COLUMNS, *(v.path for v in self.varies), *METRIC_COLUMNS, "scenario_sha256"]

    def job(self, spec: RunSpec) -> Job:
        return Job(self.text, self.path, self.sha256, self.name, spec)

    def params(self, spec: RunSpec) -> dict[str, str]:
        return {o.path: o.value for o in spec.overrides}


def plan(path: str | Path, vary: Sequence[str] = (), *, seeds: int | None = None,
         seed_range: str | None = None) -> Plan:
    """Check the file and every option; raises ScenarioError (file:line:col) or GridError (option)."""
    from simulator.scenario.loader import load_scenario, load_tree
    from simulator.scenario.yamltree import parse_yaml

    p = str(path)
    base = load_scenario(p)  # the file's own errors and limits, exactly as `mailsim run` reports them
    data = Path(p).read_bytes()
    text = data.decode("utf-8-sig")
    sha = hashlib.sha256(data).hexdigest()
    name = Path(p).stem or "scenario"
    varies = tuple(parse_vary(v) for v in vary)
    seen: set[str] = set()
    for v in varies:
        if v.steps[0].key == "seed" and len(v.steps) == 1:
            raise GridError("--vary seed=...: seeds are their own axis; use --seeds N or --seed-range A:B")
        if v.path in seen:
            raise GridError(f"--vary {v.path!r} is given twice; list all its values in one option")
        seen.add(v.path)
    tree = parse_yaml(text, p)
    for i, v in enumerate(varies):  # each value on its own against the base file
        for value in v.values:
            o = Override(i, v.path, value)
            try:
                load_tree(apply(tree, v.steps, parse_value(o), o.option, o.line), p, sha, name)
            except ScenarioError as e:
                raise GridError(override_error(e, [o]) or f"{o.option} makes the scenario invalid: {e}") from None
    seed_list = parse_seeds(seeds, seed_range, base.seed)
    remember_tree(sha, tree)  # forked workers start with the parsed file
    return Plan(p, text, sha, name, varies, seed_list, tuple(build_grid(varies, seed_list)))




def full_row(plan_: Plan, spec: RunSpec, metrics: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": spec.run, "key": spec.key, "seed": spec.seed, **plan_.params(spec)}
    row.update(metrics)
    row["scenario_sha256"] = plan_.sha256
    return row


def execute(plan_: Plan, *, workers: int | None = None, dask: str | None = None,
            skip: frozenset[str] = frozenset()) -> Generator[dict[str, Any], None, None]:
    """Rows of the runs not in ``skip`` (by key), in completion order.

    A local pool starts on this call, before the caller iterates (and before it starts, say, a
    progress bar's thread); closing the generator stops the workers.
    """
    todo = [s for s in plan_.runs if s.key not in skip]
    jobs = [plan_.job(s) for s in todo]
    results = imap_unordered(run_one, jobs, workers=workers, dask=dask)
    return _rows(plan_, todo, results)


def _rows(plan_: Plan, todo: list[RunSpec], results: Iterator[tuple[int, dict[str, Any]]],
          ) -> Generator[dict[str, Any], None, None]:
    try:
        for i, metrics in results:
            yield full_row(plan_, todo[i], metrics)
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def run_sweep(path: str | Path, vary: Sequence[str] = (), *, seeds: int | None = None,
              seed_range: str | None = None, workers: int | None = None,
              dask: str | None = None) -> list[dict[str, Any]]:
    """The whole sweep in memory, rows in run order: the notebook-friendly entry point."""
    p = plan(path, vary, seeds=seeds, seed_range=seed_range)
    return sorted(execute(p, workers=workers, dask=dask), key=lambda r: int(r["run"]))


# --- the summary table --------------------------------------------------------------------------------


@dataclass
class Group:
    params: tuple[str, ...]
    runs: int = 0
    errors: int = 0
    expect_failed_runs: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    p50: list[int] = field(default_factory=list)
    p95: list[int] = field(default_factory=list)
    lost: int = 0

    def mean(self, col: str) -> float | None:
        ok = self.runs - self.errors
        return self.sums.get(col, 0) / ok if ok else None

    def to_json(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "params": dict(zip(names, self.params, strict=True)),
            "runs": self.runs,
            "errors": self.errors,
            "expect_failed_runs": self.expect_failed_runs,
            "lost": self.lost,
            "mean": {c: self.mean(c) for c in SUMMED},
            "inbox_p50_s_median": self.median_p50(),
            "inbox_p95_s_median": self.median_p95(),
        }

    def median_p50(self) -> float | None:
        """The median over runs of each run's median completion-to-inbox time."""
        return statistics.median(self.p50) if self.p50 else None

    def median_p95(self) -> float | None:
        return statistics.median(self.p95) if self.p95 else None


SUMMED = ("invoices", "status_in_queue", "status_sent", "stuck", "rcpt_inbox", "rcpt_junk", "rcpt_deferred",
          "rcpt_bounced", "rcpt_skipped")


def summarize(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> list[Group]:
    """Rows grouped by their parameter values, in first-seen (grid) order."""
    groups: dict[tuple[str, ...], Group] = {}
    for r in sorted(rows, key=lambda r: (r.get("run") is None, r.get("run") or 0)):
        key = tuple(str(r.get(n)) for n in names)
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(key)
        g.runs += 1
        if r.get("error"):
            g.errors += 1
            continue
        for c in SUMMED:
            v = r.get(c)
            if isinstance(v, int):
                g.sums[c] = g.sums.get(c, 0) + v
        if isinstance(r.get("expect_failed"), int) and r["expect_failed"] > 0:
            g.expect_failed_runs += 1
        if isinstance(r.get("lost"), int):
            g.lost += r["lost"]
        if isinstance(r.get("inbox_p50_s"), int):
            g.p50.append(r["inbox_p50_s"])
        if isinstance(r.get("inbox_p95_s"), int):
            g.p95.append(r["inbox_p95_s"])
    return list(groups.values())


def human_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    left = round(s)
    if left < 60:
        return f"{left}s"
    parts = []
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= n:
            parts.append(f"{left // n}{unit}")
            left %= n
        if len(parts) == 2:
            break
    return "".join(parts)


