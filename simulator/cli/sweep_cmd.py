"""``mailsim sweep FILE --vary PATH=V1,V2 --seeds N``: a grid of what-if runs, one row each.

Exit 0 every run ran (and, with ``--strict``, every expectation held), 1 ``--strict`` and some
expectation failed, 2 bad input (file:line:col, or the option at fault), 3 some run could not be
built from its combination (its row says why), 130 interrupted (finished rows are kept).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from simulator.cli.common import console, dask_address, fail, output_file, text_file

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, subcommand_metavar="",
                  context_settings={"allow_interspersed_args": True})


def _console(stderr: bool = False) -> Console:
    return console(stderr=stderr, soft_wrap=False)


def _table(con: Console, groups: list[Any], names: list[str], total: int, title: str) -> None:
    from simulator.sweep.sweep import human_seconds

    t = Table(title=title, title_justify="left", header_style="bold")
    for n in names:
        t.add_column(n, no_wrap=True)
    for col in ("runs", "In Queue", "stuck", "inbox", "junk", "deferred", "bounced", "p50→inbox", "p95",
                "expect✗", "errors"):
        t.add_column(col, justify="right", no_wrap=True)

    def mean(g: Any, c: str) -> str:
        v = g.mean(c)
        return "–" if v is None else (f"{v:,.0f}" if v == int(v) else f"{v:,.1f}")

    for g in groups:
        t.add_row(*g.params, str(g.runs), mean(g, "status_in_queue"), mean(g, "stuck"), mean(g, "rcpt_inbox"),
                  mean(g, "rcpt_junk"), mean(g, "rcpt_deferred"), mean(g, "rcpt_bounced"),
                  human_seconds(g.median_p50()), human_seconds(g.median_p95()),
                  f"{g.expect_failed_runs}/{g.runs}" if g.expect_failed_runs else "0",
                  str(g.errors) if g.errors else "")
    con.print(t)
    con.print(f"means per run over seeds; {total} rows", style="dim")


@app.callback(invoke_without_command=True)
def sweep(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML).")],
    vary: Annotated[list[str] | None, typer.Option(
        "--vary", metavar="PATH=V1,V2",
        help="A parameter and its values, e.g. 'users[nora].sync.last_login=-80d,-90d' or "
             "'settings.queue_poll=1m,5m'. Repeat for a grid.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Run each combination with seeds 0..N-1.")] = None,
    seed_range: Annotated[str | None, typer.Option(
        "--seed-range", metavar="A:B", help="Seeds A to B, both included.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Local worker processes (default: every core; 1 runs in this process).")] = None,
    dask: Annotated[str | None, typer.Option(
        metavar="ADDR", help="A Dask scheduler (tcp://host:port), or 'local' for a loopback LocalCluster.")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Write one row per run here (.csv or .jsonl); '-' for standard output.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or jsonl (default: from --out's suffix).")] = None,
    resume: Annotated[bool, typer.Option(help="Keep the rows already in --out and run only the rest.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any run's expectations fail.")] = False,
) -> None:
    """Run a grid of parameter values × seeds; one row per run and a summary grouped by parameters."""
    from simulator.scenario.errors import ScenarioError
    from simulator.sweep.grid import GridError
    from simulator.sweep.output import OutputError, RowWriter, guess_format, read_rows
    from simulator.sweep.sweep import execute, plan, summarize

    if workers is not None and workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")
    dask = dask_address(dask)
    to_stdout = out_path is not None and str(out_path) == "-"
    path = None if out_path is None or to_stdout else output_file(out_path, "--out")
    if resume and path is None:
        raise fail("--resume needs --out FILE")
    try:
        p = plan(file, vary or [], seeds=seeds, seed_range=seed_range)
        form = guess_format(path, fmt)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    except (GridError, OutputError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}") from None
    columns = p.columns
    names = [v.path for v in p.varies]
    kept_rows: list[dict[str, Any]] = []
    kept_raw: list[str] = []
    if path is not None and path.exists():
        if not resume and not force:
            raise fail(f"{path} exists; add --resume to continue it or --force to overwrite it")
        if resume:
            text_file(path, "--out")
            try:
                kept_rows, kept_raw = read_rows(path, form, columns)
            except OutputError as exc:
                raise fail(str(exc)) from None
            other = {str(r.get("scenario_sha256")) for r in kept_rows} - {p.sha256}
            if other:
                raise fail(f"{path} holds rows of another version of {file} (scenario_sha256 differs); "
                           "use another --out or --force")
    done = frozenset(str(r["key"]) for r in kept_rows)
    todo = sum(1 for s in p.runs if s.key not in done)
    err = _console(stderr=True)
    where = "in this process" if (workers == 1 and dask is None) else (
        f"on Dask {dask}" if dask else f"on {workers or 'all'} local worker(s)")
    err.print(f"sweep {file}: {len(p.runs)} runs ({len(p.seeds)} seed(s) × "
              f"{len(p.runs) // max(1, len(p.seeds))} combination(s)); {len(p.runs) - todo} already in {path}; "
              f"{todo} to run {where}" if kept_rows else
              f"sweep {file}: {len(p.runs)} runs ({len(p.seeds)} seed(s) × "
              f"{len(p.runs) // max(1, len(p.seeds))} combination(s)) {where}")
    writer = RowWriter(path, form, columns, keep=kept_raw, stream=sys.stdout if to_stdout else None)
    rows = list(kept_rows)
    interrupted = False
    show = err.is_terminal and not json_out
    try:
        gen = execute(p, workers=workers, dask=dask, skip=done)  # workers start before the bar's thread
        with Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=True, disable=not show) as prog:
            task = prog.add_task("runs", total=todo)
            try:
                for row in gen:
                    writer.write(row)
                    rows.append(row)
                    prog.advance(task)
            finally:
                gen.close()
    except KeyboardInterrupt:
        interrupted = True
    writer.close()
    if interrupted:
        err.print(f"interrupted: {writer.count} run(s) finished and kept"
                  + (f" in {path} ({len(rows)} rows); run again with --resume to finish" if path else ""))
        # the stopped pool's manager thread would otherwise wake at interpreter exit and write to
        # pipes its killed workers closed (a traceback after a clean stop): rows are flushed, so leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if path is not None:
        writer.sort_by_run()
    groups = summarize(rows, names)
    errors = [r for r in rows if r.get("error")]
    failed = sum(1 for r in rows if isinstance(r.get("expect_failed"), int) and r["expect_failed"] > 0)
    if json_out:
        doc = {"scenario": p.name, "file": str(file), "runs": len(rows), "errors": len(errors),
               "expect_failed_runs": failed, "out": str(path) if path else None,
               "groups": [g.to_json(names) for g in groups]}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        con = err if to_stdout else _console()
        _table(con, groups, names, len(rows), f"{p.name}: {len(rows)} runs")
        if path is not None:
            con.print(f"rows: {path}")
        for r in errors[:5]:
            con.print(f"run {r['run']} (seed {r['seed']}): {r['error']}", style="red", soft_wrap=True)
        if len(errors) > 5:
            con.print(f"... and {len(errors) - 5} more runs with errors", style="red")
    if errors:
        raise typer.Exit(3)
    raise typer.Exit(1 if strict and failed else 0)
