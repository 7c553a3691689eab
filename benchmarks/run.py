"""``make bench``: the DESIGN §6 memory-transport benchmark against the naive SimPy baseline.

Every measurement runs in a fresh subprocess (this same file with ``--child``) so that
peak RSS is that run's own. The parent collects one JSON line per child, writes
``benchmarks/results.json``, prints a table, and exits 0 even when a target is missed.

Sections (one function each, run in this order by :func:`main`): ``network`` (first: only the
sink writes files, see network.py), ``mailsim`` and ``naive`` per size, ``linearity`` (a warmed child
per size and round, samples of equal emails: DESIGN §8's in-process per-email cost),
``profile``, ``varied`` (issue 12), ``sweep`` (issue 6: sweep scaling, benchmarks/sweep.py), and
last ``trace`` (trace on at the largest size: its 645 MB file disturbs whatever runs after it).

    .venv/bin/python benchmarks/run.py                    # the full §6 set: 10k, 100k, 1M
    .venv/bin/python benchmarks/run.py --quick            # 10k and 100k, no profile
    .venv/bin/python benchmarks/run.py --sizes 10000,50000 --no-trace --no-profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: a child given the compiled build must not import the checkout's

HERE = ROOT / "benchmarks"
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BATCH_SIZE = 1000  # §6: 1,000 batches × 1,000 invoices at 1M; smaller runs have fewer batches of the same size


def batches_for(size: int) -> int:
    """Scale the number of batches, not their size: the run grows only in volume."""
    return size // BATCH_SIZE

# DESIGN §6 / §8 targets
TARGET_1M_SECONDS = 15.0
TARGET_1M_RSS_MB = 1536.0
TARGET_NAIVE_RATIO = 2.0
TARGET_TRACE_RATIO = 2.5
TARGET_TRACE_FLOOR_1M = 40.0
TARGET_LINEAR = 0.15


# ------------------------------------------------------------------------------------------
# children: one measurement each, printed as one JSON line on stdout
# ------------------------------------------------------------------------------------------
class GcTimer:
    """Wall time spent in the cyclic garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t
            self.collections += 1


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / (1024 * 1024)


def repeats_for(size: int) -> int:
    """Small sizes are noisy: repeat them (median reported), never the 1M run."""
    return max(1, min(5, 200_000 // size))


def child_mailsim(size: int, trace: bool, repeats: int) -> dict[str, Any]:
    from benchmarks.scenarios import build, workload
    from simulator.engine.run import simulate

    t0 = time.perf_counter()
    scn = build(size, batches_for(size))
    load = time.perf_counter() - t0
    w = workload(size, batches_for(size))
    times: list[float] = []
    gc_s: list[float] = []
    out: dict[str, Any] = {"kind": "mailsim", "size": size, "trace": trace, "load_seconds": load}
    with tempfile.TemporaryDirectory(prefix="mailsim-bench-") as tmp:
        for rep in range(repeats):
            gc.collect()
            path = Path(tmp) / f"trace-{rep}.jsonl" if trace else None
            timer = GcTimer()
            gc.callbacks.append(timer)
            t1 = time.perf_counter()
            res = simulate(scn, trace=path)
            dt = time.perf_counter() - t1
            gc.callbacks.remove(timer)
            times.append(dt)
            gc_s.append(timer.seconds)
            acc = res.accounting()
            ok = bool(res.ok) and acc.get("sent") == size and acc.get("inbox") == size and acc.get("lost") == 0
            blocked = sum(1 for inv in w.blocked_batches for e in res.engine.emails[inv]
                          if e.stuck_at is not None or e.sent_at != e.completed_at)
            out.update(ok=ok, accounting=acc, blocked_emails=blocked, expected_blocked=w.blocked_emails,
                       expectations=[{"ok": x.ok, "text": x.text} for x in res.expectations])
            if path is not None:
                out["trace_bytes"] = path.stat().st_size
                with path.open("rb") as fh:
                    out["trace_lines"] = sum(1 for _ in fh)
                path.unlink()
            del res
    med = statistics.median(times)
    out.update(seconds=med, all_seconds=times, gc_seconds=statistics.median(gc_s), repeats=repeats,
               emails_per_s=size / med, us_per_email=med / size * 1e6, peak_rss_mb=peak_rss_mb())
    return out


def child_naive(size: int, repeats: int, gc_off: bool) -> dict[str, Any]:
    """The naive model as SimPy users write it (GC on), or with the cyclic GC paused like ``simulate`` does."""
    from benchmarks.naive import run_naive

    times: list[float] = []
    cpu: list[float] = []
    gc_s: list[float] = []
    ok = True
    for _ in range(repeats):
        gc.collect()
        timer = GcTimer()
        gc.callbacks.append(timer)
        if gc_off:
            gc.disable()
        c1, t1 = time.process_time(), time.perf_counter()
        r = run_naive(size, batches_for(size))
        dt = time.perf_counter() - t1
        cpu.append(time.process_time() - c1)
        gc.enable()
        gc.callbacks.remove(timer)
        times.append(dt)
        gc_s.append(timer.seconds)
        ok = ok and r.sent == size and r.delivered == size
        del r
    med = statistics.median(times)
    return {"kind": "naive", "size": size, "gc_off": gc_off, "seconds": med, "all_seconds": times, "repeats": repeats,
            "cpu_seconds": min(cpu),
            "gc_seconds": statistics.median(gc_s), "emails_per_s": size / med, "us_per_email": med / size * 1e6,
            "peak_rss_mb": peak_rss_mb(), "ok": ok}


def build_workload(workload: str, size: int) -> Any:
    """The uniform §6 workload (benchmarks/scenarios.py) or the varied one (benchmarks/varied.py)."""
    if workload == "varied":
        from benchmarks.varied import build as build_varied

        return build_varied(size)
    from benchmarks.scenarios import build

    return build(size, batches_for(size))


def child_profile(size: int, out_path: Path, workload: str = "uniform") -> dict[str, Any]:
    from simulator.engine.run import simulate

    scn = build_workload(workload, size)
    prof = cProfile.Profile()
    t1 = time.perf_counter()
    prof.enable()
    res = simulate(scn)
    prof.disable()
    dt = time.perf_counter() - t1
    buf = io.StringIO()
    buf.write(f"# cProfile of simulate() on the §6 {workload} workload, {size} emails, trace off, memory transport\n")
    buf.write(f"# wall under the profiler: {dt:.2f} s (the profiler inflates it; use ratios, not absolutes)\n")
    buf.write(f"# run ok: {res.ok}, accounting: {res.accounting()}\n\n")
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    buf.write("## top 25 by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(25)
    buf.write("\n## top 25 by internal (tottime)\n")
    stats.sort_stats("tottime").print_stats(25)
    out_path.write_text(buf.getvalue())
    return {"kind": "profile", "size": size, "workload": workload, "seconds_under_profiler": dt,
            "path": str(out_path.relative_to(ROOT))}


def runs_per_sample(size: int, largest: int) -> int:
    """Runs of ``size`` that make one sample: as many emails in all as one run of the largest size."""
    return max(1, largest // size)


def child_linearity(sizes: list[int], rounds: int, workload: str = "uniform",
                    largest: int | None = None, warm: bool = False) -> dict[str, Any]:
    """Every size in this one process, interleaved, ``rounds`` times: in-process ``simulate()`` costs.

    ``make bench`` runs it with one size at a time, a child per size and round (:func:`linearity_children`);
    ``largest`` then says how many emails a sample holds, and ``warm`` makes one untimed run first.

    DESIGN §8 measures linear scaling in-process. Each run records the CPU time this
    process spent in ``simulate()`` (user + system, so page faults count) and its wall
    time. CPU time is what the target is judged on: on a shared machine a one-second 1M
    run is always descheduled a few times while a 10 ms run often is not, so wall-clock
    minima favour the small runs.

    One sample of a size is ``runs_per_sample`` consecutive runs (as many emails as one run
    of the largest size), recorded as their mean time per run: every size's samples then
    take about as long and are as exposed to this machine's noise (other processes slow a
    run down, only ever upwards, so the minimum over samples is the estimate). The minimum
    of 24 ten-millisecond runs against that of 3 one-second runs compared the luckiest 10 ms
    window with a typical second: on this VM single 10k runs spread over 0.43–0.91 µs an
    email within one process. The sizes take turns (the order rotates each round) so that a
    busy minute hits every size rather than one. Scenarios are built, and frozen out of the
    collector's way, before any timing; each run starts after a collection, outside its time.
    """
    from simulator.engine.run import simulate

    scns = {n: build_workload(workload, n) for n in sizes}
    if warm:  # one run of each size first, untimed (see linearity_children)
        for n in sizes:
            simulate(scns[n])
    gc.collect()
    gc.freeze()  # the collections between runs then walk only what a run left behind
    largest = largest or max(sizes)
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    # the judged CPU time split: user and system seconds, and minor page faults (getrusage, per email)
    split: dict[int, list[tuple[float, float, float]]] = {n: [] for n in sizes}
    ok = True
    for r in range(rounds):
        order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
        for n in order:
            k = runs_per_sample(n, largest)
            c_sum = w_sum = user = system = faults = 0.0
            for _ in range(k):
                gc.collect()
                u0 = resource.getrusage(resource.RUSAGE_SELF)
                c0, w0 = time.process_time(), time.perf_counter()
                res = simulate(scns[n])
                w_sum += time.perf_counter() - w0
                c_sum += time.process_time() - c0
                u1 = resource.getrusage(resource.RUSAGE_SELF)
                user += u1.ru_utime - u0.ru_utime
                system += u1.ru_stime - u0.ru_stime
                faults += u1.ru_minflt - u0.ru_minflt
                ok = ok and bool(res.ok)
                del res
            emails = n * k  # getrusage ticks coarser than process_time: summed over the sample's runs
            split[n].append((user / emails * 1e6, system / emails * 1e6, faults / emails))
            cpu[n].append(c_sum / k)
            wall[n].append(w_sum / k)
    gc.unfreeze()
    return {**linearity_result(workload, rounds, ok, largest, cpu, wall, split),
            "split_samples": {str(n): split[n] for n in sizes}}


Split = dict[int, list[tuple[float, float, float]]]  # per size: (user µs, system µs, page faults) an email


def linearity_result(workload: str, rounds: int, ok: bool, largest: int, cpu: dict[int, list[float]],
                     wall: dict[int, list[float]], split: Split) -> dict[str, Any]:
    """A linearity section's result from its samples (seconds per run, by size), one child's or merged."""
    return {"kind": "linearity", "workload": workload, "rounds": rounds, "ok": ok, "measure": "cpu",
            "runs_per_sample": {str(n): runs_per_sample(n, largest) for n in cpu},
            "cpu_seconds": {str(n): v for n, v in cpu.items()}, "wall_seconds": {str(n): v for n, v in wall.items()},
            **linearity_summary(cpu), "wall": linearity_summary(wall), "cpu_split": cpu_split(split)}


def linearity_children(sizes: list[int], rounds: int, workload: str, log: Log) -> dict[str, Any] | None:
    """The linearity samples, each size in a child of its own: ``rounds`` rounds, one child per size, the
    sizes taking turns (the order rotates each round), every child warmed by one untimed run.

    One child running every size interleaved (rounds 3–8) made a small run pay for the large one before it:
    after a 1M run the heap is the 1M run's, freed — CPython keeps the arenas it could not return,
    partly used, and a 10k run's objects are spread over them. Measured on this VM (uniform, compiled,
    5 rounds, the same build): 10k alone with 100k 0.22 µs an email (samples 0.22–0.24; 100k 0.214,
    0.97×); the same child with 1M interleaved 0.256 (samples 0.256–0.363; 100k 0.75×). A
    `mailsim run` of 10k emails never follows a 1M run in its process. Each child now starts from
    the same state for its size: the scenario built, one run done, then its samples — and the
    samples still take turns with the other sizes', so a busy minute hits every size. Every child
    hashes strings with one seed (``PYTHONHASHSEED=0``), so dict and set layouts are alike in all
    of them: three sets of children with a fixed seed put the uniform 10k minimum at 0.234–0.264 µs
    an email (100k ÷ 10k 0.92–1.04×); four with random seeds (one of them a `make bench`) at
    0.223–0.287 (0.80–1.00×).
    """
    largest = max(sizes)
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    split: Split = {n: [] for n in sizes}
    ok = True

    def quiet(line: str) -> None:  # a line per child would drown the section; failures still show
        if not line.startswith("[dim]"):
            log(line)

    for r in range(rounds):
        order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
        for n in order:
            res = spawn(["--child", "linearity", "--workload", workload, "--lin-sizes", str(n), "--rounds", "1",
                         "--lin-largest", str(largest), "--lin-warm"],
                        f"{workload} linearity, round {r + 1}/{rounds}: {n:,} emails in a child of its own", quiet,
                        env={"PYTHONHASHSEED": "0"})
            if res is None:
                return None
            ok = ok and bool(res["ok"])
            cpu[n] += res["cpu_seconds"][str(n)]
            wall[n] += res["wall_seconds"][str(n)]
            split[n] += [(u, sy, f) for u, sy, f in res["split_samples"][str(n)]]
    return {**linearity_result(workload, rounds, ok, largest, cpu, wall, split),
            "processes": "one per size and round, warmed by one run"}


def cpu_split(split: dict[int, list[tuple[float, float, float]]]) -> dict[str, dict[str, float]]:
    """Per size, the minimum over samples of user µs, system µs and minor page faults per email (a diagnostic).

    The judged time is user + system: a page fault is a real cost of a large run. But consecutive
    small runs reuse memory the allocator kept while a large one maps fresh pages every run, so the
    split says whether a ratio above 1 comes from the Python work (user) or from memory (system, faults).
    """
    return {str(n): {"user_us": min(u for u, _s, _f in v), "system_us": min(s for _u, s, _f in v),
                     "faults_per_email": min(f for _u, _s, f in v)} for n, v in split.items() if v}


def linearity_summary(times: dict[int, list[float]]) -> dict[str, Any]:
    """Per-email costs from repeated in-process times (seconds per run, by size; one entry per sample).

    - ``raw``: min time / emails at each size, and its ratio to the smallest size:
      what DESIGN §8 names ("per-email cost at 10k, 100k, 1M"); the target is judged on it.
    - ``marginal``: (T(n) − T(previous size)) / Δn between consecutive sizes: the cost of
      each extra email, where any fixed per-run cost cancels out.
    - ``fixed``: T(smallest) − smallest × the first marginal cost: the part of the small
      run that does not grow with the emails (setup, SPF and DNS answers, the first
      transaction per envelope), and its share of that run.
    """
    sizes = sorted(times)
    best = {n: min(times[n]) for n in sizes}
    med = {n: statistics.median(times[n]) for n in sizes}
    base = sizes[0]
    raw = {str(n): {"min_s": best[n], "median_s": med[n], "samples": len(times[n]),
                    "us_per_email": best[n] / n * 1e6, "us_per_email_median": med[n] / n * 1e6,
                    "vs_smallest": (best[n] / n) / (best[base] / base)} for n in sizes}
    marginal = [{"from": a, "to": b, "us_per_email": (best[b] - best[a]) / (b - a) * 1e6}
                for a, b in pairwise(sizes)]
    fixed: dict[str, float] | None = None
    if marginal:
        f = best[base] - base * marginal[0]["us_per_email"] / 1e6
        fixed = {"ms": f * 1e3, "share_of_smallest": f / best[base] if best[base] > 0 else 0.0}
    return {"raw": raw, "marginal": marginal, "fixed": fixed}


def child_main(args: argparse.Namespace) -> int:
    if args.child == "mailsim":
        res = child_mailsim(args.size, args.trace, args.repeats)
    elif args.child == "linearity":
        res = child_linearity(sorted(int(x) for x in args.lin_sizes.split(",")), args.rounds, args.workload,
                              args.lin_largest, args.lin_warm)
    elif args.child == "naive":
        res = child_naive(args.size, args.repeats, args.gc_off)
    else:
        res = child_profile(args.size, Path(args.profile_out), args.workload)
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    return 0


# ------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------
def spawn(argv: list[str], label: str, log: Any, build: str | None = None,
          env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Run a child of this script; ``build``: "compiled" or "source" (default: the judged one, see varied_bench);
    ``env``: variables to set on top."""
    from benchmarks.varied_bench import build_env, default_build

    build = build or default_build()
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    log(f"[dim]… {label}[/dim]")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**build_env(build), **(env or {})})
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res: dict[str, Any] = json.loads(line[len("RESULT "):])
            res["process_wall_seconds"] = wall
            res["build"] = build
            return res
    log(f"[bold red]{label} failed (exit {proc.returncode})[/bold red]\n{proc.stderr[-3000:]}")
    return None


def machine_info() -> dict[str, Any]:
    import simpy

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "simpy": simpy.__version__,
    }
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "simulator"], capture_output=True, text=True,
                               cwd=ROOT, check=False).stdout.strip()
        info["git"] = head + ("+dirty-simulator" if dirty else "")
        info["load_average_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def evaluate_targets(sizes: list[int], ms: dict[int, dict[str, Any]], nv: dict[int, dict[str, Any]],
                     trace: dict[str, Any] | None, linearity: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per §6 target: measured value, limit, status PASS / MISSED / n/a (or ``info`` for a diagnostic)."""
    rows: list[dict[str, Any]] = []

    def row(name: str, measured: str, limit: str, ok: bool | None, status: str | None = None) -> None:
        rows.append({"target": name, "measured": measured, "limit": limit,
                     "status": status or ("n/a" if ok is None else ("PASS" if ok else "MISSED"))})

    big = ms.get(1_000_000)
    row("1M emails, trace off: wall", f"{big['seconds']:.2f} s" if big else "not run",
        f"≤ {TARGET_1M_SECONDS:.0f} s", None if not big else big["seconds"] <= TARGET_1M_SECONDS)
    row("1M emails: peak RSS", f"{big['peak_rss_mb']:.0f} MB" if big else "not run",
        f"≤ {TARGET_1M_RSS_MB:.0f} MB", None if not big else big["peak_rss_mb"] <= TARGET_1M_RSS_MB)
    for n in sizes:
        if n in ms and n in nv:
            ratio = ms[n]["emails_per_s"] / nv[n]["emails_per_s"]
            row(f"throughput vs naive at {n:,}", f"{ratio:.2f}× (vs the faster of GC on/off)",
                f"≥ {TARGET_NAIVE_RATIO:.0f}×", ratio >= TARGET_NAIVE_RATIO)
    if trace is not None and trace["size"] in ms:
        n = trace["size"]
        off = ms[n]["seconds"]
        floor = TARGET_TRACE_FLOOR_1M * n / 1_000_000
        limit = max(TARGET_TRACE_RATIO * off, floor)
        row(f"trace on at {n:,}", f"{trace['seconds']:.2f} s ({trace['seconds'] / off:.2f}×)",
            f"≤ max({TARGET_TRACE_RATIO}× off, {floor:.0f} s) = {limit:.1f} s", trace["seconds"] <= limit)
    linearity_rows(linearity, row)
    return rows


def linearity_rows(lin: dict[str, Any] | None, row: Any) -> None:
    """DESIGN §6/§8 linear scaling, judged on the raw in-process per-email cost (see :func:`linearity_summary`).

    Judged on the raw cost because that is what §8 names, and because it is the stricter
    reading: a fixed per-run cost that makes a small run dearer per email is a departure
    from "linear per email" too. Both directions count (a run that gets cheaper per email
    at scale is not linear either). The marginal cost and the fixed-cost estimate are shown as
    diagnostics (status ``info``): they say whether a miss comes from a fixed per-run cost
    or from cost that grows faster than the emails.
    """
    if lin is None:
        row("linear per-email cost", "not run (--no-linearity)", f"within ±{TARGET_LINEAR:.0%}", None)
        return
    raw = {int(k): v for k, v in lin["raw"].items()}
    sizes = sorted(raw)
    base = sizes[0]
    for n in sizes[1:]:
        r = raw[n]["vs_smallest"]
        row(f"linear: per-email cost at {n:,} vs {base:,}",
            f"{r:.2f}× ({raw[n]['us_per_email']:.2f} vs {raw[base]['us_per_email']:.2f} µs; in-process CPU "
            f"time per run, min of {raw[n]['samples']} / {raw[base]['samples']} samples of equal emails)",
            f"within ±{TARGET_LINEAR:.0%}", abs(r - 1) <= TARGET_LINEAR)
    marg = lin.get("marginal") or []
    if len(marg) >= 2:
        m1, m2 = marg[0]["us_per_email"], marg[-1]["us_per_email"]
        r = m2 / m1 if m1 > 0 else float("inf")
        row(f"marginal cost {marg[-1]['from']:,}→{marg[-1]['to']:,} vs {marg[0]['from']:,}→{marg[0]['to']:,}",
            f"{m2:.2f} vs {m1:.2f} µs/email ({r:.2f}×)", f"diagnostic (±{TARGET_LINEAR:.0%} = no growth)",
            None, "info")
    split = {int(k): v for k, v in (lin.get("cpu_split") or {}).items()}
    if len(split) >= 2 and split[base]["user_us"] > 0:
        top = max(split)
        u = split[top]["user_us"] / split[base]["user_us"]
        row(f"user CPU per email at {top:,} vs {base:,}",
            f"{u:.2f}× (user {split[top]['user_us']:.2f} vs {split[base]['user_us']:.2f} µs; system "
            f"{split[top]['system_us']:.2f} vs {split[base]['system_us']:.2f} µs, "
            f"{split[top]['faults_per_email']:.3f} vs {split[base]['faults_per_email']:.3f} page faults/email)",
            "diagnostic (judged on user + system)", None, "info")
    fixed = lin.get("fixed")
    if fixed:
        row(f"fixed per-run cost (T({base:,}) − {base:,} × first marginal)",
            f"{fixed['ms']:.1f} ms = {fixed['share_of_smallest']:.0%} of the {base:,} run", "diagnostic", None,
            "info")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="comma-separated email counts (multiples of 1000); default 10k,100k,1M")
    ap.add_argument("--quick", action="store_true", help="10k and 100k only, no profile")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive SimPy baseline")
    ap.add_argument("--no-trace", action="store_true", help="skip the trace-on run")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--no-linearity", action="store_true", help="skip the in-process linear-scaling section")
    ap.add_argument("--rounds", type=int, default=5,
                    help="linearity: rounds (each a warmed child per size, the sizes taking turns; minimum reported)")
    ap.add_argument("--profile-size", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, help="runs per size (median reported); default by size")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--no-network", action="store_true", help="skip the wire/sink/DNS benchmarks (network.py)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the sweep-scaling benchmark (sweep.py)")
    ap.add_argument("--no-varied", action="store_true", help="skip the varied workload (benchmarks/varied_bench.py)")
    # child mode (internal)
    ap.add_argument("--child", choices=("mailsim", "naive", "profile", "linearity"), help=argparse.SUPPRESS)
    ap.add_argument("--lin-sizes", help=argparse.SUPPRESS)
    ap.add_argument("--lin-largest", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--lin-warm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gc-off", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    ap.add_argument("--workload", choices=("uniform", "varied"), default="uniform", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.size is not None:
            args.repeats = args.repeats or repeats_for(args.size)
        return child_main(args)

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")} if args.sizes
                   else set(QUICK_SIZES if args.quick else FULL_SIZES))
    bad = [n for n in sizes if n <= 0 or n % BATCH_SIZE]
    if bad:
        console.print(f"[red]sizes must be positive multiples of {BATCH_SIZE}: {bad}[/red]")
        return 2
    rep: list[str] = ["--repeats", str(args.repeats)] if args.repeats else []
    started = time.time()
    load_at_start = list(os.getloadavg())
    log = console.print
    from benchmarks.varied_bench import default_build

    build = default_build()
    log(f"engine build measured: [bold]{build}[/bold]" + (" (mypyc, .build/compiled from `make compiled`; the varied "
                                                         "section also runs the pure source)" if build == "compiled"
                                                         else " (no compiled build: `make compiled`)"))

    # -- sections: each spawns its own children and returns what it measured --
    # the network section first: its sink writes a file per message, and the sections below delete
    # large files (a 1M trace), which on this VM's ext4 slows file creation for a while (network.py's _LATER)
    network = None if args.no_network else section_network(args.quick, log)
    ms, nv, nv0 = section_per_size(sizes, rep, not args.no_naive, log)
    linearity = None if args.no_linearity or len(sizes) < 2 else section_linearity(sizes, args.rounds, log)
    profile = None if args.no_profile or args.quick else section_profile(args.profile_size, log)
    varied = None if args.no_varied else section_varied(sizes, args.rounds, not (args.no_profile or args.quick),
                                                        log, paired=not args.no_naive)
    sweep = None if args.no_sweep else section_sweep(args.quick, log)
    # last: the trace-on run writes a 645 MB trace and deletes it, and for a minute or more the kernel's
    # writeback and this VM's discards share the two cores with whatever runs next — the linearity
    # section measured right after it came out 1.3–1.7× slower than a minute later (0.61 against
    # 0.36 µs/email at 10k), and unevenly across sizes
    trace = None if args.no_trace else section_trace(max(sizes), log)

    best_naive = {n: max((x for x in (nv.get(n), nv0.get(n)) if x), key=lambda x: x["emails_per_s"])
                  for n in sizes if n in nv or n in nv0}
    targets = evaluate_targets(sizes, ms, best_naive, trace, linearity)
    per_size = per_size_report(sizes, ms, nv, nv0)
    results: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "bench_wall_seconds": round(time.time() - started, 1),
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "build": build,
        "workload": {"batch_size": BATCH_SIZE, "batches": {str(n): batches_for(n) for n in sizes},
                     "recipient_domains": 3, "properties": 30, "batch_every": "1m",
                     "token_expiry": "region sender at the middle batch, resync 2h later", "transport": "memory"},
        "sizes": per_size,
        "trace_on": None if trace is None else {
            "emails": trace["size"], "seconds": trace["seconds"], "gc_seconds": trace["gc_seconds"],
            "peak_rss_mb": trace["peak_rss_mb"], "trace_lines": trace["trace_lines"],
            "trace_bytes": trace["trace_bytes"], "ok": trace["ok"],
            "ratio_vs_trace_off": (trace["seconds"] / ms[trace["size"]]["seconds"]) if trace["size"] in ms else None,
        },
        "linearity": linearity,
        "profile": profile,
        "targets": targets,
        "all_targets_met": all(t["status"] != "MISSED" for t in targets),
    }
    if varied is not None:
        results["varied"] = varied
        add_varied_targets(varied, best_naive, targets)
        results["all_targets_met"] = all(t["status"] != "MISSED" for t in targets)
    if not args.no_sweep:
        results["sweep"] = sweep
        sweep_target(sweep, targets)
        results["all_targets_met"] = all(t["status"] != "MISSED" for t in targets)
    if not args.no_network:
        results["network"] = network
    results["bench_wall_seconds"] = round(time.time() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_report(console, sizes, ms, nv, nv0, per_size, results)
    return 0


# ------------------------------------------------------------------------------------------
# sections (parent side): one function per part of the report
# ------------------------------------------------------------------------------------------
Log = Callable[[str], None]
Runs = dict[int, dict[str, Any]]


def section_per_size(sizes: list[int], rep: list[str], naive: bool, log: Log) -> tuple[Runs, Runs, Runs]:
    """mailsim (trace off) and the naive model (GC on, GC off), each size in a fresh process: wall, RSS, ratio."""
    ms: Runs = {}
    nv: Runs = {}  # naive, GC on (SimPy's default)
    nv0: Runs = {}  # naive, GC paused (as simulate() runs)
    for n in sizes:
        r = spawn(["--child", "mailsim", "--size", str(n), *rep], f"mailsim {n:,} emails, trace off", log)
        if r:
            ms[n] = r
            log(f"  mailsim {n:>9,}: {r['seconds']:7.2f} s  {r['us_per_email']:6.2f} µs/email  "
                f"{r['peak_rss_mb']:6.0f} MB  ok={r['ok']}")
        if naive:
            for gc_off, store, label in ((False, nv, "naive"), (True, nv0, "naive, GC off")):
                r = spawn(["--child", "naive", "--size", str(n), *rep, *(["--gc-off"] if gc_off else [])],
                          f"{label} {n:,} emails", log)
                if r:
                    store[n] = r
                    log(f"  {label:<13} {n:>9,}: {r['seconds']:7.2f} s  {r['us_per_email']:6.1f} µs/email"
                        f"  {r['peak_rss_mb']:6.0f} MB")
    return ms, nv, nv0


def section_trace(n: int, log: Log) -> dict[str, Any] | None:
    """The largest size again with the trace on (DESIGN §6: ≤ 2.5× trace off, or 40 s at 1M)."""
    trace = spawn(["--child", "mailsim", "--size", str(n), "--trace", "--repeats", "1"],
                  f"mailsim {n:,} emails, trace on", log)
    if trace:
        log(f"  trace   {n:>9,}: {trace['seconds']:7.2f} s  {trace['trace_lines']:,} lines  "
            f"{trace['trace_bytes'] / 2**20:.0f} MiB")
    return trace


def section_linearity(sizes: list[int], rounds: int, log: Log) -> dict[str, Any] | None:
    """DESIGN §8 linear scaling, in-process: ``rounds`` rounds of a child per size (see linearity_children)."""
    log(f"[dim]… linearity: {', '.join(f'{n:,}' for n in sizes)}, {rounds} rounds, a child per size and round[/dim]")
    lin = linearity_children(sizes, rounds, "uniform", log)
    if lin:
        for n, r in sorted(lin["raw"].items(), key=lambda kv: int(kv[0])):
            log(f"  in-process CPU {int(n):>9,}: min {r['min_s'] * 1e3:9.1f} ms  {r['us_per_email']:5.2f} µs/email "
                f"(median {r['us_per_email_median']:5.2f}, {r['samples']} samples)  ÷ smallest {r['vs_smallest']:.2f}")
        for m in lin["marginal"]:
            log(f"  marginal {m['from']:,}→{m['to']:,}: {m['us_per_email']:.2f} µs/email")
        if lin["fixed"]:
            log(f"  fixed per-run cost ≈ {lin['fixed']['ms']:.1f} ms ({lin['fixed']['share_of_smallest']:.0%} "
                f"of the smallest run)")
        for n, r in sorted(lin["wall"]["raw"].items(), key=lambda kv: int(kv[0])):
            log(f"  (wall clock {int(n):>9,}: min {r['us_per_email']:5.2f} µs/email, "
                f"÷ smallest {r['vs_smallest']:.2f})")
        log_split(lin, log)
    return lin


def log_split(lin: dict[str, Any], log: Log) -> None:
    for n, r in sorted((lin.get("cpu_split") or {}).items(), key=lambda kv: int(kv[0])):
        log(f"  (user {int(n):>9,}: min {r['user_us']:5.2f} µs/email, system {r['system_us']:5.2f}, "
            f"{r['faults_per_email']:.3f} page faults/email)")


def section_profile(size: int, log: Log) -> dict[str, Any] | None:
    """cProfile of one run, written to benchmarks/profile-<size>k.txt (ratios only: the profiler inflates)."""
    out = HERE / f"profile-{size // 1000}k.txt"
    return spawn(["--child", "profile", "--size", str(size), "--profile-out", str(out)],
                 f"cProfile {size:,} emails", log, "source")  # cProfile cannot see into compiled functions


def section_varied(sizes: list[int], rounds: int, profile: bool, log: Log, paired: bool = True) -> dict[str, Any]:
    """Issue 12: the varied workload as whole ``mailsim run`` processes (each round paired with a run of the
    naive model unless ``--no-naive``), in-process linearity, a profile."""
    from benchmarks.varied_bench import measure

    log("[bold]varied workload[/bold] (benchmarks/varied.py: emails that differ)")
    out: dict[str, Any] = {"processes": measure(sizes, log, paired)}
    # as many rounds as the uniform linearity: with 3, one child measured 100k ÷ 10k at 0.86×, 0.98× and
    # 0.81× in three runs on this VM (single samples of one size 1.62–2.18 µs/email); the minimum of more
    # samples is the better estimate of each size's cost, and the section takes ≈10 s more
    out["linearity"] = None if len(sizes) < 2 else linearity_children(sizes, rounds, "varied", log)
    lin = out["linearity"]
    if lin:
        for n, r in sorted(lin["raw"].items(), key=lambda kv: int(kv[0])):
            log(f"  varied in-process CPU {int(n):>9,}: {r['us_per_email']:5.2f} µs/email "
                f"(min of {r['samples']} samples), ÷ smallest {r['vs_smallest']:.2f}")
        log_split(lin, log)
    if profile:
        path = HERE / "profile-varied-100k.txt"
        out["profile"] = spawn(["--child", "profile", "--workload", "varied", "--size", "100000", "--profile-out",
                                str(path)], "cProfile, varied 100,000 emails", log, "source")
    return out


def add_varied_targets(varied: dict[str, Any], naive: Runs, targets: list[dict[str, Any]]) -> None:
    from benchmarks.varied_bench import targets as varied_rows

    def row(name: str, measured: str, limit: str, ok: bool | None, status: str | None = None) -> None:
        targets.append({"target": name, "measured": measured, "limit": limit,
                        "status": status or ("n/a" if ok is None else ("PASS" if ok else "MISSED"))})

    varied_rows(varied["processes"], naive, varied.get("linearity"), row)


def section_network(quick: bool, log: Log) -> dict[str, Any] | None:
    """Wire transport vs bare aiosmtpd+smtplib, the sink under 10 clients, DNS queries/s (benchmarks/network.py)."""
    log("[bold]network benchmarks[/bold] (benchmarks/network.py)")
    net = subprocess.run([sys.executable, str(HERE / "network.py"), *(["--quick"] if quick else [])], check=False)
    net_json = HERE / "results-network.json"
    return json.loads(net_json.read_text()) if net.returncode == 0 and net_json.exists() else None


def section_sweep(quick: bool, log: Log) -> dict[str, Any] | None:
    """100 runs × 10k emails: one after another, on a pool of 2 and on a Dask LocalCluster (benchmarks/sweep.py)."""
    runs = "20" if quick else "100"
    log(f"[bold]sweep scaling[/bold] (benchmarks/sweep.py, {runs} runs × 10,000 emails)")
    res = subprocess.run([sys.executable, str(HERE / "sweep.py"), "--runs", runs], check=False)
    out = HERE / "results-sweep.json"
    return json.loads(out.read_text()) if res.returncode == 0 and out.exists() else None


def sweep_target(sweep: dict[str, Any] | None, targets: list[dict[str, Any]]) -> None:
    """Issue 6: a sweep on 2 cores takes at most 0.6× the one-after-another time."""
    t = (sweep or {}).get("target") or {}
    measured = t.get("measured")
    modes = (sweep or {}).get("modes", {})
    same = all(m.get("same_rows", True) for m in modes.values())
    text = "not run" if measured is None else f"{measured:.2f}× ({sweep['runs']} runs; rows identical: {same})"
    ok = None if measured is None else (measured <= t["limit"] and same)
    targets.append({"target": "sweep of 10k-email runs on a pool of 2 vs one after another", "measured": text,
                    "limit": f"≤ {t.get('limit', 0.6)}×",
                    "status": "n/a" if ok is None else ("PASS" if ok else "MISSED")})


def per_size_report(sizes: list[int], ms: Runs, nv: Runs, nv0: Runs) -> dict[str, Any]:
    """results.json's ``sizes``: the per-size children's numbers and the ratios between them."""
    base = ms.get(min(sizes))
    per_size: dict[str, Any] = {}
    for n in sizes:
        m, v, v0 = ms.get(n), nv.get(n), nv0.get(n)
        entry: dict[str, Any] = {"emails": n}
        if m:
            entry["mailsim"] = {k: m[k] for k in ("seconds", "all_seconds", "load_seconds", "emails_per_s",
                                                  "us_per_email", "peak_rss_mb", "gc_seconds", "repeats", "ok",
                                                  "blocked_emails", "expected_blocked", "accounting",
                                                  "process_wall_seconds")}
            # one fresh process per size: cold vs warm interpreter, so only indicative (the linearity
            # section is the measurement the target is judged on)
            entry["cost_vs_smallest_process"] = m["us_per_email"] / base["us_per_email"] if base else None
        if v:
            entry["naive"] = {k: v[k] for k in ("seconds", "all_seconds", "emails_per_s", "us_per_email",
                                                "peak_rss_mb", "gc_seconds", "repeats", "ok")}
        if v0:
            entry["naive_gc_off"] = {k: v0[k] for k in ("seconds", "all_seconds", "emails_per_s", "us_per_email",
                                                       "peak_rss_mb", "repeats", "ok")}
        if m and v:
            entry["ratio_vs_naive"] = m["emails_per_s"] / v["emails_per_s"]
        if m and v0:
            entry["ratio_vs_naive_gc_off"] = m["emails_per_s"] / v0["emails_per_s"]
        if m and (v or v0):
            entry["ratio_vs_best_naive"] = m["emails_per_s"] / max(x["emails_per_s"] for x in (v, v0) if x)
        per_size[str(n)] = entry
    return per_size


def print_report(console: Any, sizes: list[int], ms: Runs, nv: Runs, nv0: Runs, per_size: dict[str, Any],
                 results: dict[str, Any]) -> None:
    from rich.table import Table

    lin = results.get("linearity")
    tbl = Table(title="mailsim memory transport vs naive SimPy (one process per email)", show_lines=False)
    for col in ("emails", "load s", "sim s", "emails/s", "µs/email", "in-process CPU µs/email (min)",
                f"÷ {min(sizes) // 1000}k", "RSS MB", "naive s", "naive µs", "naive RSS MB", "naive GC-off s",
                "vs naive", "vs naive GC-off", "ok"):
        tbl.add_column(col, justify="right")
    for n in sizes:
        m, v, v0 = ms.get(n), nv.get(n), nv0.get(n)
        raw = lin["raw"].get(str(n)) if lin else None
        ratio = per_size[str(n)].get("ratio_vs_naive")
        ratio0 = per_size[str(n)].get("ratio_vs_naive_gc_off")
        tbl.add_row(
            f"{n:,}",
            f"{m['load_seconds']:.2f}" if m else "-",
            f"{m['seconds']:.2f}" if m else "-",
            f"{m['emails_per_s']:,.0f}" if m else "-",
            f"{m['us_per_email']:.2f}" if m else "-",
            f"{raw['us_per_email']:.2f}" if raw else "-",
            f"{raw['vs_smallest']:.2f}" if raw else "-",
            f"{m['peak_rss_mb']:.0f}" if m else "-",
            f"{v['seconds']:.2f}" if v else "-",
            f"{v['us_per_email']:.1f}" if v else "-",
            f"{v['peak_rss_mb']:.0f}" if v else "-",
            f"{v0['seconds']:.2f}" if v0 else "-",
            f"{ratio:.2f}×" if ratio is not None else "-",
            f"{ratio0:.2f}×" if ratio0 is not None else "-",
            ("yes" if m["ok"] else "[red]NO[/red]") if m else "-",
        )
    console.print(tbl)
    tr = results.get("trace_on")
    if tr is not None:
        ratio_txt = f"{tr['ratio_vs_trace_off']:.2f}× trace-off" if tr["ratio_vs_trace_off"] else ""
        console.print(f"trace on at {tr['emails']:,}: {tr['seconds']:.2f} s ({ratio_txt}), "
                      f"{tr['trace_lines']:,} lines, {tr['trace_bytes'] / 2**20:.0f} MiB, "
                      f"peak RSS {tr['peak_rss_mb']:.0f} MB")
    tt = Table(title="DESIGN §6 targets")
    for col in ("target", "measured", "limit", "status"):
        tt.add_column(col)
    for t in results["targets"]:
        style = {"PASS": "green", "MISSED": "bold red", "n/a": "dim", "info": "cyan"}[t["status"]]
        tt.add_row(t["target"], t["measured"], t["limit"], f"[{style}]{t['status']}[/{style}]")
    console.print(tt)
    missed = [t["target"] for t in results["targets"] if t["status"] == "MISSED"]
    if missed:
        console.print(f"[bold red]MISSED {len(missed)} target(s):[/bold red] " + "; ".join(missed))
    else:
        console.print("[bold green]all measured targets met[/bold green]")
    if results.get("profile"):
        console.print(f"profile: {results['profile']['path']}")

if __name__ == "__main__":
    raise SystemExit(main())
