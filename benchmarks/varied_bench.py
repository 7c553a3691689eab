"""The varied-work section of ``make bench`` (issue 12, DESIGN §6): emails that differ.

For each size, :mod:`benchmarks.varied` writes the scenario to a file and the whole
``mailsim run FILE`` process is timed from outside (interpreter start, imports, load,
run, the table it prints), with its CPU time and peak RSS from ``wait4``. Each round runs the
naive SimPy model at the same size first (``run.py``'s naive child, GC off, timed in-process:
it does not even pay for its interpreter, so the ratio is conservative), and the target is
judged on the median of the per-round ratios (see :func:`measure`); the ratio of minima against
the per-size section's naive run is shown for information. Linear scaling is measured
in-process like the uniform workload's (``run.py``'s linearity child with ``--workload varied``),
and a cProfile of a 100k run goes to ``benchmarks/profile-varied-100k.txt``.

    .venv/bin/python benchmarks/varied_bench.py --sizes 10000,100000   # this section alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: a child given the compiled build must not import the checkout's

# The compiled engine (setup.py; `make compiled`, which `make bench` runs first): the package built with
# MAILSIM_COMPILE=1, imported through PYTHONPATH. The pure source runs too, so the report shows both.
COMPILED = ROOT / ".build" / "compiled"

TARGET_VARIED_NAIVE = 4.0  # whole process incl. load, vs the naive model
TARGET_SIZE = 1_000_000  # the size that target is set at
TARGET_RSS_MB = 1536.0
TARGET_LINEAR = 0.15


def compiled_available() -> bool:
    return (COMPILED / ".built").exists()


def build_env(build: str) -> dict[str, str]:
    """The environment a child runs ``build`` in: "compiled" (the mypyc build first on the path) or "source"."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if build == "compiled":
        env["PYTHONPATH"] = str(COMPILED)
    return env


def default_build() -> str:
    """What the targets are judged on: the compiled build when it was built, else the source."""
    return "compiled" if compiled_available() else "source"


def mailsim_command(path: Path) -> list[str]:
    """``mailsim run PATH`` with this interpreter's installation (the console script when present)."""
    script = Path(sys.executable).with_name("mailsim")
    if script.exists():
        return [str(script), "run", str(path)]
    return [sys.executable, "-c", "from simulator.cli.main import main; main()", "run", str(path)]


def run_process(cmd: list[str], build: str = "source") -> dict[str, Any]:
    """Wall time, CPU time (user + sys) and peak RSS of one child process, from ``wait4``."""
    t = time.perf_counter()
    # not in the checkout: a console script puts its own directory first, python -c the working directory
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT.parent,
                            env=build_env(build))
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": rss, "exit": code,
            "stderr": err[-2000:]}


REPEATS = 3  # rounds per size: the naive model, then a whole process per build; see measure()


def naive_cpu(n: int, log: Any = print) -> float | None:
    """The naive model's own CPU seconds for ``n`` emails (GC off: its faster way), from run.py's child.

    In-process time, so the naive side does not pay for its interpreter's start or its imports
    (the mailsim side does): conservative for the ratio.
    """
    from benchmarks.run import spawn

    res = spawn(["--child", "naive", "--size", str(n), "--repeats", "1", "--gc-off"],
                f"naive {n:,} emails, GC off (paired)", log, "source")
    return float(res["cpu_seconds"]) if res is not None and res.get("ok") else None


def _summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    ok = all(r["exit"] == 0 for r in runs)
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = min(r["cpu_s"] for r in runs)
    return {"runs": len(runs), "wall_s": wall, "all_wall_s": [r["wall_s"] for r in runs], "cpu_s": cpu,
            "all_cpu_s": [r["cpu_s"] for r in runs], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "ok": ok,
            "us_per_email_wall": wall / n * 1e6, "us_per_email_cpu": cpu / n * 1e6,
            "stderr": None if ok else runs[0]["stderr"]}


def measure(sizes: list[int], log: Any = print, paired: bool = True) -> dict[str, Any]:
    """Each size's whole ``mailsim run`` process (median wall, min CPU, max RSS over its repeats).

    The judged build (:func:`default_build`) and, when that is the compiled one, the pure source
    too (under ``"source"``), their runs alternating so both see the same machine. With ``paired``
    each round starts with the naive model at that size (:func:`naive_cpu`), so each of the judged
    build's runs has a naive run of its own minute: this VM's speed drifts by a third between the
    sections of one ``make bench`` (the varied 1M process took 3.2 s of CPU in one, 4.5 s in the
    next; the naive model 11.1 and 16.6 s), and a ratio of two minima from different sections
    measured the drift as much as the engine. The ratio is then judged per pair, by its median.
    """
    from benchmarks.varied import scenario_text, shape

    judged = default_build()
    builds = [judged] + (["source"] if judged == "compiled" else [])
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mailsim-varied-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"varied-{n}.yaml"
            path.write_text(scenario_text(n))
            runs: dict[str, list[dict[str, Any]]] = {b: [] for b in builds}
            naive: list[float | None] = []
            for _ in range(REPEATS):
                if paired:
                    naive.append(naive_cpu(n, log))
                for b in builds:
                    runs[b].append(run_process(mailsim_command(path), b))
            v = shape(n)
            out[str(n)] = {"emails": n, "build": judged, **_summary(runs[judged], n),
                           "file_bytes": path.stat().st_size, "properties": v.properties,
                           "invalid_contacts": v.invalid_contacts, "unknown_contacts": v.unknown_contacts}
            got = [x for x in naive if x is not None]
            if paired and len(got) == REPEATS:  # every naive run finished: one pair per round
                ratios = [x / r["cpu_s"] for x, r in zip(got, runs[judged], strict=True)]
                out[str(n)]["paired"] = {"naive_cpu_s": got, "mailsim_cpu_s": [r["cpu_s"] for r in runs[judged]],
                                         "ratios": ratios, "median": statistics.median(ratios)}
                log(f"  varied {n:>9,}: naive model (GC off) {statistics.median(got):7.2f} s"
                    f" CPU, paired ratios {', '.join(f'{r:.2f}×' for r in ratios)}")
            if judged == "compiled":
                out[str(n)]["source"] = _summary(runs["source"], n)
            for b in builds:
                m = out[str(n)] if b == judged else out[str(n)]["source"]
                log(f"  varied {n:>9,} ({b:8}): whole process {m['wall_s']:7.2f} s wall, {m['cpu_s']:6.2f} s CPU, "
                    f"{m['peak_rss_mb']:6.0f} MB, ok={m['ok']}")
    return out


def targets(varied: dict[str, Any], naive: dict[int, dict[str, Any]], lin: dict[str, Any] | None,
            row: Any) -> None:
    """Issue 12's rows: vs naive (whole process, wall and CPU), peak RSS at 1M, linear per-email cost."""
    for key, m in sorted(varied.items(), key=lambda kv: int(kv[0])):
        n = int(key)
        nv = naive.get(n)
        if nv is None:
            row(f"varied {n:,}: whole process vs naive", "naive not run", f"≥ {TARGET_VARIED_NAIVE:.0f}×", None)
            continue
        # judged on CPU time (both sides' own, min over runs): on this shared 2-core machine a long
        # process's wall time is mostly time spent waiting for a core; the wall ratio is shown too
        naive_cpu = nv.get("cpu_seconds", nv["seconds"])
        ratio_cpu = naive_cpu / m["cpu_s"]
        ratio = nv["seconds"] / m["wall_s"]
        measured = (f"{ratio_cpu:.2f}× CPU ({m['cpu_s']:.2f} s vs {naive_cpu:.2f} s); {ratio:.2f}× wall "
                    f"({m['wall_s']:.2f} s vs {nv['seconds']:.2f} s); {m.get('build', 'source')} build")
        src = m.get("source")
        if src is not None:  # the pure source, for comparison: what an editable install runs
            row(f"varied {n:,}: whole `mailsim run` vs naive, pure source",
                f"{naive_cpu / src['cpu_s']:.2f}× CPU ({src['cpu_s']:.2f} s); compiled build "
                f"{src['cpu_s'] / m['cpu_s']:.2f}× faster", "info (judged: the compiled build)", None, "info")
        pair = m.get("paired")
        if pair is not None:
            rs = pair["ratios"]
            measured = (f"{pair['median']:.2f}× CPU, median of {len(rs)} pairs ({min(rs):.2f}–{max(rs):.2f}×; "
                        f"naive {statistics.median(pair['naive_cpu_s']):.2f} s vs "
                        f"{statistics.median(pair['mailsim_cpu_s']):.2f} s); {m.get('build', 'source')} build")
            row(f"varied {n:,}: whole process, minima of different sections", f"{ratio_cpu:.2f}× CPU "
                f"({m['cpu_s']:.2f} s vs {naive_cpu:.2f} s); {ratio:.2f}× wall", "info (judged: paired)", None, "info")
            ratio_cpu = pair["median"]
        if n != TARGET_SIZE:  # the target is set at 1M (issue 12); smaller runs are mostly start-up and load
            row(f"varied {n:,}: whole `mailsim run` vs naive", measured, "diagnostic (target at 1M)", None, "info")
            continue
        row(f"varied {n:,}: whole `mailsim run` vs naive", measured, f"≥ {TARGET_VARIED_NAIVE:.0f}×",
            ratio_cpu >= TARGET_VARIED_NAIVE and m["ok"])
    big = varied.get("1000000")
    row("varied 1M: peak RSS", f"{big['peak_rss_mb']:.0f} MB" if big else "not run", f"≤ {TARGET_RSS_MB:.0f} MB",
        None if not big else big["peak_rss_mb"] <= TARGET_RSS_MB)
    if lin is None:
        row("varied: linear per-email cost", "not run", f"within ±{TARGET_LINEAR:.0%}", None)
        return
    raw = {int(k): v for k, v in lin["raw"].items()}
    base = min(raw)
    for n in sorted(raw)[1:]:
        r = raw[n]["vs_smallest"]
        row(f"varied: per-email cost at {n:,} vs {base:,}",
            f"{r:.2f}× ({raw[n]['us_per_email']:.2f} vs {raw[base]['us_per_email']:.2f} µs; in-process CPU, "
            f"min of {raw[n]['samples']} / {raw[base]['samples']} samples of equal emails)",
            f"within ±{TARGET_LINEAR:.0%}", abs(r - 1) <= TARGET_LINEAR)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(json.dumps(measure(sizes), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
