"""``mailsim``: the command line. Thin on purpose: parsing, rendering, exit codes.

Exit codes (contract): 0 every expectation holds, 1 an expectation failed,
2 bad input (the message names file:line:column). A scenario error is never a
traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from simulator.cli import render
from simulator.scenario.errors import ScenarioError

app = typer.Typer(
    name="mailsim",
    help="Replay why invoice emails did or did not reach the customer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _mount() -> None:
    """Sub-command groups live in their own modules; mount whichever exist."""
    import importlib

    for mod, name, help_ in (
        ("simulator.cli.spf_cmd", "spf", "RFC 7208 SPF checks against a scenario's DNS."),
        ("simulator.cli.dns_cmd", "dns", "Serve a scenario's DNS on loopback."),
        ("simulator.cli.sink_cmd", "sink", "Run the SMTP sink standalone."),
        ("simulator.cli.step_cmd", "step", "Step through a scenario's timeline interactively."),
        ("simulator.cli.timeline_cmd", "timeline", "Draw a run as an HTML (and PNG) timeline."),
        ("simulator.cli.replay_cmd", "replay", "Re-run a trace's scenario and check it is byte-identical."),
        ("simulator.cli.diff_cmd", "diff", "Where two runs (scenarios or traces) diverge."),
        ("simulator.cli.sweep_cmd", "sweep", "Run a grid of parameter values × seeds, one row per run."),
        ("simulator.cli.chaos_cmd", "chaos", "Seeded random faults on a scenario, with invariants checked."),
    ):
        try:
            sub = importlib.import_module(mod)
        except ImportError:
            continue
        app.add_typer(sub.app, name=name, help=help_)


def _load(path: Path) -> Any:
    from simulator.scenario.loader import load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _transport(name: str) -> Any:
    if name == "memory":
        return None
    if name == "wire":
        try:
            from simulator.transport.wire import wire_transport
        except ImportError:
            err.print("error: the wire transport is not available in this build")
            raise typer.Exit(2) from None
        return wire_transport
    err.print(f"error: --transport must be 'memory' or 'wire', got {name!r}")
    raise typer.Exit(2)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML).")],
    transport: Annotated[str, typer.Option(help="memory (default) or wire (real SMTP to a loopback sink).")] = "memory",
    trace: Annotated[Path | None, typer.Option(help="Write the JSONL trace here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    junit: Annotated[Path | None, typer.Option(help="Write expectations as JUnit XML.")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Explain each invoice after the table.")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="List every invoice even in large runs.")] = False,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
) -> None:
    """Run a scenario and show each invoice's batch status, email status, reason and delivery."""
    from dataclasses import replace

    from simulator.engine.run import simulate

    scn = _load(file)
    if seed is not None:
        scn = replace(scn, seed=seed)
    factory = _transport(transport)
    with render.progress(err, enabled=err.is_terminal and not json_out) as prog:
        result = simulate(scn, trace=trace, transport=factory, progress=prog)
    if junit is not None:
        junit.write_text(render.junit_xml(result))
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render.summary(out, result, all_rows=all_rows)
        if explain:
            from simulator.explain.explain import explain_run

            render.explanations(out, explain_run(result))
        render.expectations(out, result)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")]) -> None:
    """Check scenario files without running them (exit 2 on the first bad one)."""
    from simulator.scenario.loader import load_scenario

    bad = 0
    for f in files:
        try:
            scn = load_scenario(f)
        except ScenarioError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            bad += 1
            continue
        n = sum(b.count for b in scn.batches)
        out.print(f"ok  {f}: {scn.name} ({len(scn.batches)} batches, {n} invoices, {len(scn.timeline)} events,"
                  f" {len(scn.expect)} expectations)", soft_wrap=True)
    raise typer.Exit(2 if bad else 0)


@app.command()
def explain(
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    invoice: Annotated[str | None, typer.Option(help="Only this invoice.")] = None,
    at: Annotated[str | None, typer.Option(help="Explain the state at this time (ISO or +offset).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print explanations as JSON.")] = False,
) -> None:
    """Why each invoice email did or did not arrive: causes, evidence, guide step and fix."""
    from simulator.explain.explain import explain_scenario

    scn = _load(file)
    until: int | None = None
    if at is not None:
        from simulator.scenario.times import parse_time_required

        try:
            until = parse_time_required(at, scn.start)
        except (ValueError, ScenarioError) as exc:
            err.print(f"error: --at: {exc}")
            raise typer.Exit(2) from None
    if invoice is not None:
        known = any(b.index_of(invoice) is not None for b in scn.batches)
        if not known:
            err.print(f"error: no invoice {invoice!r} in {file}")
            raise typer.Exit(2)
    exps = explain_scenario(scn, until=until, invoice=invoice)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps([e.to_json() for e in exps], option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render.explanations(out, exps)


# Commands that hold nothing to clean up at exit: after a million-email run, tearing down every
# object one by one costs seconds, so these leave with os._exit once their output is flushed.
FAST_EXIT = frozenset({"run", "explain", "validate", "replay", "diff", "timeline"})


def main() -> None:
    _mount()
    try:
        app()
    except SystemExit as exc:
        if len(sys.argv) > 1 and sys.argv[1] in FAST_EXIT:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug, not bad input: say so briefly unless debugging
        if os.environ.get("MAILSIM_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (set MAILSIM_DEBUG=1 for the traceback)")
        sys.exit(3)


if __name__ == "__main__":
    main()
