"""``mailsim``: the command line. Thin on purpose: parsing, rendering, exit codes.

Exit codes (contract): 0 every expectation holds, 1 an expectation failed,
2 bad input (the message names file:line:column, or the option at fault), 130
interrupted, 3 only for a bug. A scenario error is never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument
from typer.models import DefaultPlaceholder

from simulator.cli import render
from simulator.cli.common import fail, load_or_exit, output_file, scenario_file
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

# Sub-commands living in their own modules: (module, name, one-line summary for the command list).
SUBCOMMANDS = (
    ("simulator.cli.spf_cmd", "spf", "RFC 7208 SPF checks against a scenario's DNS."),
    ("simulator.cli.dns_cmd", "dns", "Serve a scenario's DNS on loopback, or snapshot real DNS into one."),
    ("simulator.cli.sink_cmd", "sink", "Run the SMTP sink standalone."),
    ("simulator.cli.step_cmd", "step", "Step through a scenario's timeline interactively."),
    ("simulator.cli.timeline_cmd", "timeline", "Draw a run as an HTML (and PNG) timeline."),
    ("simulator.cli.replay_cmd", "replay", "Re-run a trace's scenario and check it is byte-identical."),
    ("simulator.cli.diff_cmd", "diff", "Where two runs (scenarios or traces) diverge."),
    ("simulator.cli.sweep_cmd", "sweep", "Run a grid of parameter values × seeds, one row per run."),
    ("simulator.cli.chaos_cmd", "chaos", "Seeded random faults on a scenario, with invariants checked."),
    ("simulator.cli.schema_cmd", "schema", "Print the JSON Schema of the mailsim/1 scenario format."),
    ("simulator.cli.examples_cmd", "examples", "List the bundled example scenarios, or copy them out."),
)

# Parameters that name a scenario file: each also accepts a bundled example's bare name (``tour``).
SCENARIO_PARAMS = frozenset({"file", "files", "scenario", "a", "b"})

# Optional dependencies (pyproject extras): a command that needs one that is missing says which to install.
EXTRAS = {"matplotlib": ("png", "--png"), "dask": ("dask", "--dask"), "distributed": ("dask", "--dask")}


def _set(value: Any) -> Any:
    """A typer setting's value, or None while it still holds typer's 'not given' placeholder."""
    return None if isinstance(value, DefaultPlaceholder) else value


def _mount(first: str | None = None) -> None:
    """Mount the sub-command modules that exist (a trimmed build may lack some).

    ``first`` is the command line's first word: a command of this module needs no sub-command
    module, a sub-command only its own, anything else (``--help``, a typo) all of them. Importing
    every sub-command (the timeline's rendering stack, the sink, the DNS server) cost ≈0.1 s of each
    ``mailsim run``. A module whose app is one command (a callback, no sub-commands) is registered as
    a plain command, so its usage line is ``mailsim step [OPTIONS] FILE``, not a group's
    ``COMMAND [ARGS]...``.
    """
    import importlib

    own = {c.name or c.callback.__name__ for c in app.registered_commands
           if c.callback is not None and c.callback.__module__ == __name__}
    if first in own:
        return
    wanted = [entry for entry in SUBCOMMANDS if entry[1] == first] or SUBCOMMANDS
    for mod, name, summary in wanted:
        try:
            sub = importlib.import_module(mod)
        except ImportError:
            continue
        cb = sub.app.registered_callback
        if cb is not None and not sub.app.registered_commands and not sub.app.registered_groups:
            settings = {**(_set(sub.app.info.context_settings) or {}), **(_set(cb.context_settings) or {})}
            app.command(name=name, short_help=summary, context_settings=settings or None)(cb.callback)
        else:
            app.add_typer(sub.app, name=name, help=summary)


def _print_version(value: bool) -> None:
    if value:
        from simulator.engine.run import compiled
        from simulator.trace.writer import package_version

        build = " (compiled engine)" if compiled() else ""  # which build runs (setup.py): worth knowing for speed
        sys.stdout.write(f"mailsim {package_version()}{build}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print mailsim's version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """Replay why invoice emails did or did not reach the customer."""


class _Argument(TyperArgument):
    """A positional argument shown the usual way in usage lines: ``FILE``, ``[FILE]``, ``FILE...``."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        shown = super().display_type_rich(ctx)
        return "<path>..." if shown == "<list[Path]>" else shown


def _flag_help_option(cmd: Any) -> None:
    """``--help`` is made per context, outside ``cmd.params``: give it the flags' empty metavar too."""
    make = cmd.get_help_option

    def get_help_option(ctx: Any) -> Any:
        opt = make(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = get_help_option


def _resolving(previous: Callable[..., Any] | None) -> Callable[..., Any]:
    """A click parameter callback mapping each value through :func:`scenario_file` (after ``previous``)."""

    def resolve(ctx: Any, param: Any, value: Any) -> Any:
        if previous is not None:
            value = previous(ctx, param, value)

        def one(v: Any) -> Any:
            if v is None:
                return v
            got = scenario_file(Path(v))
            return got if isinstance(v, Path) else str(got)

        if isinstance(value, list | tuple):
            return type(value)(one(v) for v in value)
        return one(value)

    return resolve


def tidy(cmd: Any) -> Any:
    """One convention for every command's help and FILE arguments, applied to the built click tree.

    Typer (which carries its own copy of click) shows every option's type, ``<bool>`` for flags too, and
    wraps required arguments in braces. Here boolean flags show no type (they take no value); arguments
    are upper-case names (``FILE``, ``TRACE``) without braces; scenario FILE parameters resolve bundled
    example names.
    """
    for param in cmd.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False) and param.metavar is None:
            param.metavar = ""
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = "FILE" if param.name == "files" else (param.name or "arg").upper()
            param.__class__ = _Argument
        if param.name in SCENARIO_PARAMS:
            param.callback = _resolving(param.callback)
    _flag_help_option(cmd)
    for sub in (getattr(cmd, "commands", None) or {}).values():
        tidy(sub)
    return cmd


def command(first: str | None = None) -> Any:
    """The ``mailsim`` command tree, mounted and tidied (what the entry point runs).

    ``first`` (the command line's first word) mounts only what that command needs; None: everything.
    """
    _mount(first)
    return tidy(typer.main.get_command(app))


def _load(path: Path) -> Any:
    return load_or_exit(path)


def _warn(scn: Any) -> None:
    """A loaded scenario's warnings (e.g. a provider name close to a known one), on stderr."""
    for warning in scn.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)


def _transport(name: str, maildir: Path | None = None) -> Any:
    """The transport factory for ``--transport`` (None: the engine's plain memory transport).

    With ``--maildir`` the sink (wire) or the keeping memory transport writes every stored copy there.
    """
    if name == "memory":
        if maildir is None:
            return None
        from simulator.transport.keep import keeping_transport

        return keeping_transport(maildir)
    if name == "wire":
        try:
            from simulator.transport.wire import WireTransport, wire_transport
        except ImportError:
            err.print("error: the wire transport is not available in this build")
            raise typer.Exit(2) from None
        if maildir is None:
            return wire_transport
        return lambda port: WireTransport(port, maildir=maildir)
    raise fail(f"--transport must be 'memory' or 'wire', got {name!r}")


def _new_maildir(path: Path) -> Path:
    """``--maildir DIR``: a new or empty folder (copies of two runs are never mixed in one Maildir)."""
    if path.exists() and not path.is_dir():
        raise fail(f"--maildir {path}: not a directory")
    try:
        if path.is_dir() and any(path.iterdir()):
            raise fail(f"--maildir {path}: not empty; give a new or empty folder")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--maildir {path}: {exc.strerror or exc}") from None
    return path


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
    maildir: Annotated[Path | None, typer.Option(
        help="Also write every stored copy (inbox, junk, DSNs in senders' mailboxes) here as Maildir files,"
             " laid out as the sink lays them out: DIR/ADDRESS/new/, junk in DIR/ADDRESS/.Junk/new/.")] = None,
) -> None:
    """Run a scenario and show each invoice's batch status, email status, reason and delivery."""
    from dataclasses import replace

    from simulator.engine.run import simulate

    trace, junit = output_file(trace, "--trace"), output_file(junit, "--junit")
    # A run's millions of objects hold no cycles worth collecting: keep the cyclic GC off for the whole
    # command. Letting simulate() turn it back on cost one collection walking every email (≈0.7 s at 1M
    # emails that differ). At the end the run's objects are frozen (O(1) while the GC is off) so that an
    # in-process caller (tests, notebooks) gets its GC back without paying for that walk.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        scn = _load(file)
        _warn(scn)
        if seed is not None:
            scn = replace(scn, seed=seed)
        if transport not in ("memory", "wire"):
            raise fail(f"--transport must be 'memory' or 'wire', got {transport!r}")
        factory = _transport(transport, _new_maildir(maildir) if maildir is not None else None)
        with render.progress(err, enabled=err.is_terminal and not json_out) as prog:
            result = simulate(scn, trace=trace, transport=factory, progress=prog)
        if junit is not None:
            junit.write_text(render.junit_xml(result))
        if json_out:
            import orjson  # only for --json (17 ms of every other command)

            sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            render.summary(out, result, all_rows=all_rows)
            if explain:
                from simulator.explain.explain import explain_run

                render.explanations(out, explain_run(result))
            render.expectations(out, result)
        raise typer.Exit(0 if result.ok else 1)
    finally:
        gc.freeze()
        if gc_was_enabled:
            gc.enable()


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")]) -> None:
    """Check scenario files without running them (exit 2 on the first bad one)."""
    from simulator.scenario.loader import load_scenario

    bad = 0
    for f in files:
        try:
            scn = load_scenario(f)
        except ScenarioError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            bad += 1
            continue
        _warn(scn)
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
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed (as run --seed).")] = None,
) -> None:
    """Why each invoice email did or did not arrive: causes, evidence, guide step and fix."""
    from dataclasses import replace

    from simulator.explain.explain import explain_scenario

    scn = _load(file)
    if seed is not None:
        scn = replace(scn, seed=seed)
    until: int | None = None
    if at is not None:
        until = _explain_moment(scn, at)
    if invoice is not None and not any(b.index_of(invoice) is not None for b in scn.batches):
        err.print(f"error: --invoice: no invoice {invoice!r} in {file}{_invoice_hint(scn, invoice)}",
                  soft_wrap=True)
        raise typer.Exit(2)
    exps = explain_scenario(scn, until=until, invoice=invoice)
    if json_out:
        import orjson

        sys.stdout.buffer.write(orjson.dumps([e.to_json() for e in exps], option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render.explanations(out, exps)


DEFAULT_RUN_CAP = 30 * 86400  # DESIGN §3: without until, a run ends when nothing is scheduled, capped at 30d


def _explain_moment(scn: Any, at: str) -> int:
    """``--at`` as seconds from start; a moment outside the run is bad input (there is nothing to explain)."""
    from simulator.scenario.times import parse_time_required

    try:
        t = parse_time_required(at, scn.start)
    except (ValueError, ScenarioError) as exc:
        err.print(f"error: --at: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if scn.until is not None:
        last, what = scn.until, "until"
    else:
        scheduled = [e.at for e in scn.timeline] + [x.when for x in scn.expect if x.when is not None]
        last, what = max([DEFAULT_RUN_CAP, *scheduled]), "the 30-day cap of a run without until"
    if not 0 <= t <= last:
        side = "before the run's start" if t < 0 else f"after the run's end ({what})"
        err.print(f"error: --at {at}: {scn.iso(t)} is {side}; choose a moment from {scn.iso(0)} to {scn.iso(last)}",
                  soft_wrap=True)
        raise typer.Exit(2)
    return t


def _invoice_hint(scn: Any, invoice: str) -> str:
    """``; did you mean 'INV-2'?`` for a mistyped invoice id (case, spaces, a character off), or ``""``."""
    from simulator.scenario.errors import did_you_mean

    wanted = invoice.strip().casefold()
    for b in scn.batches:
        for candidate in (invoice.strip(), invoice.strip().upper(), invoice.strip().lower()):
            if b.index_of(candidate) is not None:
                return f"; did you mean {candidate!r}?"
    ids = [inv.id for b in scn.batches if b.compact is None for inv in b.invoices]
    ids += [b.invoice_id(i) for b in scn.batches if b.compact is not None for i in (0, b.count - 1) if b.count]
    by_folded = {i.casefold(): i for i in ids}
    hint = did_you_mean(wanted, by_folded)
    if not hint:
        return ""
    folded = hint.removeprefix("; did you mean ").removesuffix("?")[1:-1]
    return f"; did you mean {by_folded.get(folded, folded)!r}?"


# Commands that hold nothing to clean up at exit: after a million-email run, tearing down every
# object one by one costs seconds, so these leave with os._exit once their output is flushed.
FAST_EXIT = frozenset({"run", "explain", "validate", "replay", "diff", "timeline"})


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one-line error for an optional dependency that is not installed, or None if it is not one."""
    top = (exc.name or "").partition(".")[0]
    if top not in EXTRAS:
        return None
    extra, option = EXTRAS[top]
    return f"{option} needs {top}, which is not installed: pip install 'mailsim[{extra}]'"


def _usage_error(exc: Exception) -> str | None:
    """A command-line usage error (click's, inside typer) as one ``error:`` line; None for anything else.

    Click would draw a box with the usage around it; the contract is one line naming the option.
    """
    if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
        return None
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed already
        return ""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {where}{exc.format_message()}{hint}"


def _invoke(args: list[str]) -> int:
    """Run the command line; its exit code (usage errors reported here, bugs raised)."""
    cli = command(args[0] if args else None)
    try:
        rv = cli.main(args=args, prog_name="mailsim", standalone_mode=False)
    except typer.Abort:
        err.print("aborted")
        return 1
    except Exception as exc:
        line = _usage_error(exc)
        if line is None:
            raise
        if line:
            sys.stderr.write(line + "\n")
        return int(getattr(exc, "exit_code", 2))
    return rv if isinstance(rv, int) else 0


def _leave(args: list[str], code: int) -> None:
    if args and args[0] in FAST_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _invoke(args)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except ModuleNotFoundError as exc:
        message = _missing_extra(exc)
        if message is None or os.environ.get("MAILSIM_DEBUG"):
            if os.environ.get("MAILSIM_DEBUG"):
                raise
            err.print(f"internal error: {type(exc).__name__}: {exc} (set MAILSIM_DEBUG=1 for the traceback)")
            sys.exit(3)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: say so briefly unless debugging
        if os.environ.get("MAILSIM_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (set MAILSIM_DEBUG=1 for the traceback)")
        sys.exit(3)
    _leave(args, code)


if __name__ == "__main__":
    main()
