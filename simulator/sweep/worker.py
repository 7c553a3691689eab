"""One sweep run, wherever it executes: apply the overrides, simulate, reduce to one row.

This module is what a pool or Dask worker imports, so it keeps its imports light at module level
and caches the parsed base scenario per process (keyed by its SHA-256): a sweep of a thousand runs
parses the file once per worker, not once per run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from simulator.domain.statuses import EmailStatus
from simulator.scenario.errors import ScenarioError
from simulator.sweep.grid import GridError, RunSpec, apply_all, override_error

STATUS_COLUMNS = {EmailStatus.NA: "status_na", EmailStatus.PENDING: "status_pending",
                  EmailStatus.IN_QUEUE: "status_in_queue", EmailStatus.SENT: "status_sent"}
OUTCOME_COLUMNS = {o: f"rcpt_{o}" for o in ("none", "skipped", "deferred", "inbox", "junk", "bounced")}
METRIC_COLUMNS = ("invoices", *STATUS_COLUMNS.values(), *OUTCOME_COLUMNS.values(), "stuck", "lost",
                  "inbox_p50_s", "inbox_p95_s", "inbox_max_s", "in_queue_reasons", "expect_failed",
                  "expect_total", "end", "error")

_TREES: dict[str, object] = {}


@dataclass(frozen=True, slots=True)
class Job:
    """A run plus the scenario text it applies to (sent along so remote workers need no shared disk)."""

    text: str
    path: str
    sha256: str
    name: str
    spec: RunSpec


def _tree(job: Job) -> object:
    tree = _TREES.get(job.sha256)
    if tree is None:
        from simulator.scenario.yamltree import parse_yaml

        tree = parse_yaml(job.text, job.path)
        remember_tree(job.sha256, tree)  # a worker serves one sweep at a time: the cache stays small
    return tree


def remember_tree(sha256: str, tree: object) -> None:
    """Seed this process's cache (a parent that forks its workers hands them the parsed file)."""
    if len(_TREES) >= 4:
        _TREES.clear()
    _TREES[sha256] = tree


def nearest_rank(sorted_values: list[int], q: float) -> int:
    """The q-quantile by nearest rank: always a value that occurred, and the same on every platform."""
    k = max(0, min(len(sorted_values) - 1, -(-int(q * 100) * len(sorted_values) // 100) - 1))
    return sorted_values[k]


def row_of(result: Any) -> dict[str, Any]:
    """Counts per status and outcome, stuck and lost emails, completion-to-inbox times, expectations."""
    stats = result.statistics()
    status, outcome, reasons, latency, stuck = (stats.status, stats.outcome, stats.in_queue_reasons,
                                                stats.inbox_latencies, stats.stuck)
    acc = result.accounting()
    row: dict[str, Any] = {"invoices": acc.get("invoices", 0)}
    for status_name, col in STATUS_COLUMNS.items():
        row[col] = status.get(status_name, 0)
    for name, col in OUTCOME_COLUMNS.items():
        row[col] = outcome.get(name, 0)
    row["stuck"] = stuck
    row["lost"] = acc.get("lost", 0)
    row["inbox_p50_s"] = nearest_rank(latency, 0.50) if latency else None
    row["inbox_p95_s"] = nearest_rank(latency, 0.95) if latency else None
    row["inbox_max_s"] = latency[-1] if latency else None
    row["in_queue_reasons"] = ";".join(f"{k}={v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    row["expect_failed"] = sum(1 for x in result.expectations if not x.ok)
    row["expect_total"] = len(result.expectations)
    row["end"] = result.iso(result.end)
    row["error"] = None
    return row


def empty_row(error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(METRIC_COLUMNS)
    row["error"] = error
    return row


def run_one(job: Job) -> dict[str, Any]:
    """The row of one run. Bad combinations become a row with ``error`` set, never an exception."""
    from simulator.engine.run import simulate
    from simulator.scenario.loader import load_tree

    spec = job.spec
    try:
        tree = apply_all(_tree(job), spec.overrides)
        scn = load_tree(tree, job.path, job.sha256, job.name)
    except GridError as e:
        return empty_row(str(e))
    except ScenarioError as e:
        return empty_row(override_error(e, spec.overrides) or str(e))
    scn = replace(scn, seed=spec.seed)
    return row_of(simulate(scn))
