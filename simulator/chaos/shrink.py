"""From a failing chaos run to the smallest scenario file that still fails the same way.

Delta debugging (Zeller's ddmin) over the run's injected items: a reader debugging "an email
was lost" wants the one outage and the one skipped login that do it, not the eight items the
dice happened to add. The run's seed is kept (seeded draws are part of the failure), the
base scenario's own faults and events are never removed, and the search is capped in
re-runs so a shrink always ends; a capped result is still failing, just not proved minimal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from simulator.chaos.generate import Item, build, edit_for, fault_item
from simulator.chaos.invariants import Violation
from simulator.chaos.runner import check_scenario
from simulator.scenario.edit import apply_edit
from simulator.scenario.model import Scenario

T = TypeVar("T")


class BudgetExhausted(Exception):
    """Raised inside :func:`ddmin` when the test budget runs out."""


@dataclass
class DdminResult:
    items: list[Any]
    tests: int
    minimal: bool  # False: the budget ran out first (the items still fail, but one may be removable)


def ddmin(items: Sequence[T], fails: Callable[[Sequence[T]], bool], *, budget: int = 200) -> DdminResult:
    """A 1-minimal subsequence of ``items`` for which ``fails`` holds (``fails(items)`` is assumed).

    Subsets keep the items' order. Each distinct subset is tested at most once; ``budget`` caps
    the number of tests.
    """
    seen: dict[tuple[int, ...], bool] = {}
    tests = 0

    def test(idx: Sequence[int]) -> bool:
        nonlocal tests
        key = tuple(idx)
        if key not in seen:
            if tests >= budget:
                raise BudgetExhausted
            tests += 1
            seen[key] = fails([items[i] for i in key])
        return seen[key]

    cur = list(range(len(items)))
    seen[tuple(cur)] = True
    try:
        if test(()):
            return DdminResult([], tests, True)
        n = 2
        while len(cur) >= 2:
            size = len(cur)
            chunks = [cur[size * k // n: size * (k + 1) // n] for k in range(n)]
            for c in chunks:
                if test(c):
                    cur, n = c, 2
                    break
            else:
                for c in chunks:
                    rest = [i for i in cur if i not in c]
                    if test(rest):
                        cur, n = rest, max(n - 1, 2)
                        break
                else:
                    if n >= len(cur):
                        break
                    n = min(2 * n, len(cur))
    except BudgetExhausted:
        return DdminResult([items[i] for i in cur], tests, False)
    return DdminResult([items[i] for i in cur], tests, True)


@dataclass
class Reproduction:
    path: Path
    run: int
    invariant: str
    detail: str
    items: list[Item]
    original_items: int
    reruns: int
    minimal: bool
    reproduced: bool  # loading and running the written file shows the same invariant failing
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "run": self.run, "invariant": self.invariant, "detail": self.detail,
                "items": [it.describe() for it in self.items], "original_items": self.original_items,
                "reruns": self.reruns, "minimal": self.minimal, "reproduced": self.reproduced}


def _fails(invariant: str) -> Callable[[Scenario], Violation | None]:
    def check(scn: Scenario) -> Violation | None:
        got = check_scenario(scn, recheck=invariant == "deterministic")
        return next((v for v in got.violations if v.invariant == invariant), None)

    return check


def file_name(scenario: str, run: int, invariant: str | None = None) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario).strip("-") or "scenario"
    return f"chaos-{safe}-run{run}" + (f"-{invariant}" if invariant else "") + ".yaml"


def shrink_and_write(*, base: Scenario, base_text: str, base_path: str, chaos_seed: int, run: int, seed: int,
                     items: Sequence[Item], violation: Violation, out_dir: Path, budget: int = 200,
                     name: str | None = None, command: str | None = None) -> Reproduction:
    """Shrink ``items`` to a minimal set still failing ``violation.invariant``; write and verify the file."""
    check = _fails(violation.invariant)
    last: dict[str, Violation] = {"v": violation}

    def fails(subset: Sequence[Item]) -> bool:
        v = check(build(base, seed, subset))
        if v is not None:
            last["v"] = v
        return v is not None

    res = ddmin(list(items), fails, budget=budget)
    kept: list[Item] = res.items
    tests = res.tests
    minimal = res.minimal
    # A seeded fault's draws hash its position in faults:, so removing an earlier fault can silence a
    # later one and keep both in a 1-minimal set. Try each partial-probability fault at probability 1;
    # when that still fails, keep the simpler fault and minimise again.
    for k, it in enumerate(kept):
        if it.fault is None or it.fault.probability >= 1.0 or tests >= budget:
            continue
        simpler = [*kept[:k], fault_item(replace(it.fault, probability=1.0)), *kept[k + 1:]]
        tests += 1
        if fails(simpler):
            again = ddmin(simpler, fails, budget=max(1, budget - tests))
            kept, tests, minimal = again.items, tests + again.tests, again.minimal
            break
    # the detail shown is the one the kept set produces (re-run once more if the last test was another set)
    final = check(build(base, seed, kept))
    shown = final or last["v"]
    text = apply_edit(base_text, edit_for(seed, kept), base_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (name or file_name(base.name, run))
    header = [
        f"# written by `{command or f'mailsim chaos {base_path} --seed {chaos_seed}'}`: run {run} of that command",
        f"# broke the invariant {shown}",
        f"# shrunk from {len(items)} injected item(s) to {len(kept)}"
        f" ({tests} re-run(s){'' if minimal else ', budget reached: may not be minimal'});"
        f" scenario seed {seed}",
        *[f"#   {it.describe()}" for it in kept],
        f"# check it: mailsim chaos {path.name} --check   (exit 1 while the bug is there)",
        "# (its expect: entries were written for the fault-free run and may not hold here)",
    ]
    path.write_text("\n".join(header) + "\n" + text, encoding="utf-8")
    from simulator.scenario.errors import ScenarioError
    from simulator.scenario.loader import load_scenario

    notes: list[str] = []
    try:
        reproduced = check(load_scenario(path)) is not None
    except ScenarioError as exc:
        reproduced = False
        notes.append(f"the written file does not load: {exc}")
    return Reproduction(path, run, violation.invariant, str(shown), kept, len(items), tests + 1, minimal,
                        reproduced, notes)
