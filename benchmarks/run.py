"""``make bench``: the DESIGN §6 memory-transport benchmark against the naive SimPy baseline.

Every measurement runs in a fresh subprocess (this same file with ``--child``) so that
peak RSS is that run's own. The parent collects one JSON line per child, writes
``benchmarks/results.json``, prints a table, and exits 0 even when a target is missed.

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
    gc_s: list[float] = []
    ok = True
    for _ in range(repeats):
        gc.collect()
        timer = GcTimer()
        gc.callbacks.append(timer)
        if gc_off:
            gc.disable()
        t1 = time.perf_counter()
        r = run_naive(size, batches_for(size))
        dt = time.perf_counter() - t1
        gc.enable()
        gc.callbacks.remove(timer)
        times.append(dt)
        gc_s.append(timer.seconds)
        ok = ok and r.sent == size and r.delivered == size
        del r
    med = statistics.median(times)
    return {"kind": "naive", "size": size, "gc_off": gc_off, "seconds": med, "all_seconds": times, "repeats": repeats,
            "gc_seconds": statistics.median(gc_s), "emails_per_s": size / med, "us_per_email": med / size * 1e6,
            "peak_rss_mb": peak_rss_mb(), "ok": ok}


def child_profile(size: int, out_path: Path) -> dict[str, Any]:
    from benchmarks.scenarios import build
    from simulator.engine.run import simulate

    scn = build(size, batches_for(size))
    prof = cProfile.Profile()
    t1 = time.perf_counter()
    prof.enable()
    res = simulate(scn)
    prof.disable()
    dt = time.perf_counter() - t1
    buf = io.StringIO()
    buf.write(f"# cProfile of simulate() on the §6 workload, {size} emails, trace off, memory transport\n")
    buf.write(f"# wall under the profiler: {dt:.2f} s (the profiler inflates it; use ratios, not absolutes)\n")
    buf.write(f"# run ok: {res.ok}, accounting: {res.accounting()}\n\n")
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    buf.write("## top 25 by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(25)
    buf.write("\n## top 25 by internal (tottime)\n")
    stats.sort_stats("tottime").print_stats(25)
    out_path.write_text(buf.getvalue())
    return {"kind": "profile", "size": size, "seconds_under_profiler": dt, "path": str(out_path.relative_to(ROOT))}


def child_main(args: argparse.Namespace) -> int:
    if args.child == "mailsim":
        res = child_mailsim(args.size, args.trace, args.repeats)
    elif args.child == "naive":
        res = child_naive(args.size, args.repeats, args.gc_off)
    else:
        res = child_profile(args.size, Path(args.profile_out))
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    return 0


# ------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------
def spawn(argv: list[str], label: str, log: Any) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    log(f"[dim]… {label}[/dim]")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res: dict[str, Any] = json.loads(line[len("RESULT "):])
            res["process_wall_seconds"] = wall
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
                     trace: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per §6 target: measured value, limit, status PASS / MISSED / n/a."""
    rows: list[dict[str, Any]] = []

    def row(name: str, measured: str, limit: str, ok: bool | None) -> None:
        rows.append({"target": name, "measured": measured, "limit": limit,
                     "status": "n/a" if ok is None else ("PASS" if ok else "MISSED")})

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
    base = ms.get(min(sizes))
    for n in sizes[1:]:
        if base and n in ms:
            r = ms[n]["us_per_email"] / base["us_per_email"]
            row(f"linearity {n:,} vs {base['size']:,}", f"{r:.2f}× per-email cost",
                f"≤ {1 + TARGET_LINEAR:.2f}× (no super-linear growth)", r <= 1 + TARGET_LINEAR)
    # informational: marginal cost per extra email between consecutive sizes (fixed costs cancel)
    done = [n for n in sizes if n in ms]
    if len(done) >= 3:
        m1 = (ms[done[1]]["seconds"] - ms[done[0]]["seconds"]) / (done[1] - done[0])
        m2 = (ms[done[-1]]["seconds"] - ms[done[-2]]["seconds"]) / (done[-1] - done[-2])
        r = m2 / m1 if m1 > 0 else float("inf")
        row(f"marginal cost {done[-2]:,}→{done[-1]:,} vs {done[0]:,}→{done[1]:,}",
            f"{m2 * 1e6:.1f} vs {m1 * 1e6:.1f} µs/email ({r:.2f}×)", f"within ±{TARGET_LINEAR:.0%}",
            abs(r - 1) <= TARGET_LINEAR)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="comma-separated email counts (multiples of 1000); default 10k,100k,1M")
    ap.add_argument("--quick", action="store_true", help="10k and 100k only, no profile")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive SimPy baseline")
    ap.add_argument("--no-trace", action="store_true", help="skip the trace-on run")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--profile-size", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, help="runs per size (median reported); default by size")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--no-network", action="store_true", help="skip the wire/sink/DNS benchmarks (network.py)")
    # child mode (internal)
    ap.add_argument("--child", choices=("mailsim", "naive", "profile"), help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gc-off", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.repeats = args.repeats or repeats_for(args.size)
        return child_main(args)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")} if args.sizes
                   else set(QUICK_SIZES if args.quick else FULL_SIZES))
    bad = [n for n in sizes if n <= 0 or n % BATCH_SIZE]
    if bad:
        console.print(f"[red]sizes must be positive multiples of {BATCH_SIZE}: {bad}[/red]")
        return 2
    do_profile = not (args.no_profile or args.quick)
    rep: list[str] = ["--repeats", str(args.repeats)] if args.repeats else []
    started = time.time()
    load_at_start = list(os.getloadavg())

    ms: dict[int, dict[str, Any]] = {}
    nv: dict[int, dict[str, Any]] = {}  # naive, GC on (SimPy's default)
    nv0: dict[int, dict[str, Any]] = {}  # naive, GC paused (as simulate() runs)
    trace: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    for n in sizes:
        r = spawn(["--child", "mailsim", "--size", str(n), *rep], f"mailsim {n:,} emails, trace off", console.print)
        if r:
            ms[n] = r
            console.print(f"  mailsim {n:>9,}: {r['seconds']:7.2f} s  {r['us_per_email']:6.1f} µs/email  "
                          f"{r['peak_rss_mb']:6.0f} MB  ok={r['ok']}")
        if not args.no_naive:
            for gc_off, store, label in ((False, nv, "naive"), (True, nv0, "naive, GC off")):
                r = spawn(["--child", "naive", "--size", str(n), *rep, *(["--gc-off"] if gc_off else [])],
                          f"{label} {n:,} emails", console.print)
                if r:
                    store[n] = r
                    console.print(f"  {label:<13} {n:>9,}: {r['seconds']:7.2f} s  {r['us_per_email']:6.1f} µs/email"
                                  f"  {r['peak_rss_mb']:6.0f} MB")
    if not args.no_trace:
        n = max(sizes)
        trace = spawn(["--child", "mailsim", "--size", str(n), "--trace", "--repeats", "1"],
                      f"mailsim {n:,} emails, trace on", console.print)
        if trace:
            console.print(f"  trace   {n:>9,}: {trace['seconds']:7.2f} s  {trace['trace_lines']:,} lines  "
                          f"{trace['trace_bytes'] / 2**20:.0f} MiB")
    if do_profile:
        ps = args.profile_size
        out = HERE / f"profile-{ps // 1000}k.txt"
        profile = spawn(["--child", "profile", "--size", str(ps), "--profile-out", str(out)],
                        f"cProfile {ps:,} emails", console.print)

    best_naive = {n: max((x for x in (nv.get(n), nv0.get(n)) if x), key=lambda x: x["emails_per_s"])
                  for n in sizes if n in nv or n in nv0}
    targets = evaluate_targets(sizes, ms, best_naive, trace)
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
            entry["linearity_vs_smallest"] = m["us_per_email"] / base["us_per_email"] if base else None
            prev = max((k for k in ms if k < n), default=None)
            if prev is not None:
                # cost of each extra email between the previous size and this one: fixed costs cancel out
                entry["marginal_us_per_email"] = (m["seconds"] - ms[prev]["seconds"]) / (n - prev) * 1e6
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
    results: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "bench_wall_seconds": round(time.time() - started, 1),
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
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
        "profile": profile,
        "targets": targets,
        "all_targets_met": all(t["status"] != "MISSED" for t in targets),
    }
    if not args.no_network:
        # wire transport vs bare aiosmtpd+smtplib, the sink under 10 clients, DNS queries/s (DESIGN §6)
        console.print("[bold]network benchmarks[/bold] (benchmarks/network.py)")
        net = subprocess.run([sys.executable, str(HERE / "network.py"), *(["--quick"] if args.quick else [])],
                             check=False)
        net_json = HERE / "results-network.json"
        results["network"] = json.loads(net_json.read_text()) if net.returncode == 0 and net_json.exists() else None
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    tbl = Table(title="mailsim memory transport vs naive SimPy (one process per email)", show_lines=False)
    for col in ("emails", "load s", "sim s", "emails/s", "µs/email", f"cost ÷ {min(sizes) // 1000}k",
                "marginal µs", "RSS MB", "naive s", "naive µs", "naive RSS MB", "naive GC-off s", "vs naive",
                "vs naive GC-off", "ok"):
        tbl.add_column(col, justify="right")
    for n in sizes:
        m, v, v0 = ms.get(n), nv.get(n), nv0.get(n)
        lin = per_size[str(n)].get("linearity_vs_smallest")
        marg = per_size[str(n)].get("marginal_us_per_email")
        ratio = per_size[str(n)].get("ratio_vs_naive")
        ratio0 = per_size[str(n)].get("ratio_vs_naive_gc_off")
        tbl.add_row(
            f"{n:,}",
            f"{m['load_seconds']:.2f}" if m else "-",
            f"{m['seconds']:.2f}" if m else "-",
            f"{m['emails_per_s']:,.0f}" if m else "-",
            f"{m['us_per_email']:.1f}" if m else "-",
            f"{lin:.2f}" if lin is not None else "-",
            f"{marg:.1f}" if marg is not None else "-",
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
    if trace is not None:
        tr = results["trace_on"]
        ratio_txt = f"{tr['ratio_vs_trace_off']:.2f}× trace-off" if tr["ratio_vs_trace_off"] else ""
        console.print(f"trace on at {trace['size']:,}: {trace['seconds']:.2f} s ({ratio_txt}), "
                      f"{trace['trace_lines']:,} lines, {trace['trace_bytes'] / 2**20:.0f} MiB, "
                      f"peak RSS {trace['peak_rss_mb']:.0f} MB")
    tt = Table(title="DESIGN §6 targets")
    for col in ("target", "measured", "limit", "status"):
        tt.add_column(col)
    for t in targets:
        style = {"PASS": "green", "MISSED": "bold red", "n/a": "dim"}[t["status"]]
        tt.add_row(t["target"], t["measured"], t["limit"], f"[{style}]{t['status']}[/{style}]")
    console.print(tt)
    missed = [t["target"] for t in targets if t["status"] == "MISSED"]
    if missed:
        console.print(f"[bold red]MISSED {len(missed)} target(s):[/bold red] " + "; ".join(missed))
    else:
        console.print("[bold green]all measured targets met[/bold green]")
    if profile:
        console.print(f"profile: {profile['path']}")
    console.print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
