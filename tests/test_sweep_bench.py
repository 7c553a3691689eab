"""The sweep-scaling benchmark's code path at a tiny size (no timing assertions: numbers live in `make bench`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from sweep import measure  # type: ignore[import-not-found]  # noqa: E402


def test_sweep_benchmark_measures_identical_work_in_every_mode() -> None:
    res = measure(runs=3, emails=1000, dask=True, rounds=2)
    modes = res["modes"]
    assert set(modes) == {"serial", "pool_2", "dask_local_2"}
    assert modes["pool_2"]["same_rows"] is True and modes["dask_local_2"]["same_rows"] is True
    assert res["target"]["measured"] == modes["pool_2"]["ratio_vs_serial"] > 0
    assert res["runs"] == 3 and res["emails_per_run"] == 1000
    assert len(modes["serial"]["all_seconds"]) == 2 and len(modes["pool_2"]["all_seconds"]) == 2
