"""``mailsim chaos FILE --runs N``: seeded random faults on a scenario, every run checked against the invariants.

Exit 0 every invariant held in every run, 1 some run broke one (a shrunk reproduction file is
written for each broken invariant first), 2 bad input (file:line:col, or the option at fault),
130 interrupted (a summary of the runs that finished is still printed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from simulator.cli.common import console, fail, load_or_exit

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, subcommand_metavar="",
                  context_settings={"allow_interspersed_args": True})


def _console(stderr: bool = False) -> Console:
    return console(stderr=stderr, soft_wrap=True)


def _kinds(values: list[str] | None) -> tuple[str, ...]:
    from simulator.chaos.generate import CHAOS_KINDS
    from simulator.scenario.errors import did_you_mean

    if not values:
        return CHAOS_KINDS
    asked = [k.strip() for v in values for k in v.split(",") if k.strip()]
    for k in asked:
        if k not in CHAOS_KINDS:
            raise fail(f"--kinds: unknown kind {k!r}{did_you_mean(k, CHAOS_KINDS, cutoff=0.5)}; "
                       f"kinds: {', '.join(CHAOS_KINDS)}")
    if not asked:
        raise fail("--kinds: name at least one kind")
    return tuple(k for k in CHAOS_KINDS if k in asked)


def _print_summary(con: Console, rep: Any) -> None:
    j = rep.to_json()
    rate = f", {j['runs_per_second']} runs/s" if j["runs_per_second"] else ""
    head = f"chaos {j['scenario']} ({j['file']}): {j['runs']}"
    head += f" of {j['runs_requested']}" if j["runs"] != j["runs_requested"] else ""
    con.print(f"{head} runs, chaos seed {j['chaos_seed']}, {j['seconds']:.1f}s{rate}; "
              f"{j['rechecked']} run twice for determinism")
    con.print(f"emails checked: {j['emails_checked']} ({j['recipients_checked']} recipients)")
    inj = ", ".join(f"{k} {n}" for k, n in j["injected"].items()) or "nothing"
    con.print(f"injected: {inj}")
    if not j["failures"]:
        con.print("invariants: every one held in every run", style="green")
    else:
        fails = ", ".join(f"{k} in {n} run(s)" for k, n in j["failures"].items())
        con.print(f"invariants broken: {fails} — {j['runs_failed']} failing run(s)", style="red")
        for v in j["violations"][:10]:
            where = " ".join(x for x in (v["invoice"], v["recipient"]) if x)
            con.print(f"  run {v['run']}: {v['invariant']}: {where + ': ' if where else ''}{v['detail']}")
        if j["violations_total"] > 10:
            con.print(f"  … {j['violations_total'] - 10} more")
    for r in j["reproductions"]:
        state = "reproduces" if r["reproduced"] else "DOES NOT reproduce"
        minimal = "minimal" if r["minimal"] else "not proved minimal (budget)"
        con.print(f"reproduction: {r['path']} — {r['invariant']}, {len(r['items'])} item(s) of "
                  f"{r['original_items']}, {minimal}, {r['reruns']} re-run(s), {state}",
                  style="bold" if r["reproduced"] else "red")
        for it in r["items"]:
            con.print(f"    {it}")
    if j["interrupted"]:
        con.print("interrupted: the summary covers the runs that finished", style="yellow")


def _check_one(file: Path, json_out: bool) -> None:
    """``--check``: the file as it is, no injection (how a written reproduction is re-verified)."""
    from simulator.chaos.runner import check_scenario

    scn = load_or_exit(file)
    got = check_scenario(scn, recheck=True)
    if json_out:
        doc = {"scenario": scn.name, "file": str(file), "ok": not got.violations, "emails_checked": got.emails,
               "violations": [v.to_json() for v in got.violations]}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        con = _console()
        if got.violations:
            for v in got.violations:
                con.print(str(v), style="red")
        else:
            con.print(f"{file}: every invariant held ({got.emails} emails, run twice)", style="green")
    raise typer.Exit(1 if got.violations else 0)


@app.callback(invoke_without_command=True)
def chaos(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML).")],
    runs: Annotated[int, typer.Option(help="How many seeded fault runs.")] = 100,
    seed: Annotated[int, typer.Option(help="Chaos seed: run k's faults are a function of (seed, k, FILE).")] = 0,
    workers: Annotated[int | None, typer.Option(
        help="Local worker processes (default: every core; 1 runs in this process).")] = None,
    dask: Annotated[str | None, typer.Option(
        metavar="ADDR", help="A Dask scheduler (tcp://host:port), or 'local' for a loopback LocalCluster.")] = None,
    max_faults: Annotated[int, typer.Option(help="At most this many injected items per run (at least 1).")] = 4,
    kinds: Annotated[list[str] | None, typer.Option(
        "--kinds", metavar="K1,K2",
        help="Only these kinds: outage, tempfail, permfail, disconnect, slow, dns_timeout, dns_servfail, "
             "change_password, skip_login, resync, deactivate_user (default: all).")] = None,
    recheck_every: Annotated[int, typer.Option(
        help="Run every Nth run twice and compare the traces byte for byte (0: never).")] = 10,
    out: Annotated[Path, typer.Option(help="Directory for the reproduction files.")] = Path("."),
    shrink_budget: Annotated[int, typer.Option(help="Re-runs allowed to shrink one failure.")] = 200,
    check: Annotated[bool, typer.Option(
        "--check", help="Inject nothing: run FILE as it is (e.g. a written reproduction) and check it.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Layer seeded random faults on a scenario, check the invariants after every run, shrink failures."""
    from simulator.chaos.report import Report, run_chaos, shrink_failures
    from simulator.chaos.runner import ChaosConfig
    from simulator.scenario.errors import ScenarioError

    if check:
        _check_one(file, json_out)
    if runs < 0:
        raise fail(f"--runs must be 0 or more, got {runs}")
    if workers is not None and workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")
    if max_faults < 1:
        raise fail(f"--max-faults must be at least 1, got {max_faults}")
    if recheck_every < 0:
        raise fail(f"--recheck-every must be 0 or more, got {recheck_every}")
    if shrink_budget < 1:
        raise fail(f"--shrink-budget must be at least 1, got {shrink_budget}")
    if dask is not None and not (dask == "local" or "://" in dask):
        raise fail(f"--dask {dask!r}: expected a scheduler address such as tcp://127.0.0.1:8786, or 'local'")
    cfg = ChaosConfig(runs=runs, chaos_seed=seed, max_faults=max_faults, kinds=_kinds(kinds),
                      recheck_every=recheck_every, workers=workers, dask=dask, shrink_budget=shrink_budget)
    scn = load_or_exit(file)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:  # pragma: no cover - load_or_exit read it a moment ago
        raise fail(f"{file}: {exc}") from None
    err = _console(stderr=True)
    rep = Report(scn.name, str(file), cfg)
    show = err.is_terminal and not json_out
    try:
        with Progress(TextColumn("chaos"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
                      disable=not show) as prog:
            task = prog.add_task("", total=runs)
            failing = 0

            def advance(o: Any) -> None:
                nonlocal failing
                failing += not o.ok
                prog.update(task, advance=1, description=f"{failing} failing" if failing else "")

            run_chaos(file, text, cfg, progress=advance, report=rep)
        if rep.failed:
            def started(o: Any, name: str) -> None:
                if show:
                    err.print(f"shrinking run {o.run} ({name}, {len(o.kinds)} injected item(s)) …")

            shrink_failures(rep, file, text, out, on_start=started)
    except KeyboardInterrupt:
        rep.interrupted = True
    except ScenarioError as exc:  # pragma: no cover - the file was validated above
        raise fail(str(exc)) from None
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(rep.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _print_summary(_console(), rep)
    if rep.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(0 if rep.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    app()
