"""``mailsim diff A B``: where two runs (each a scenario or a trace) part, and which invoices end differently.

Exit 0 the runs are the same, 1 they differ, 2 bad input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, subcommand_metavar="",
                  context_settings={"allow_interspersed_args": True})


def _console() -> Console:
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, soft_wrap=False, width=width)


def _fields(rec: dict[str, Any]) -> str:
    rest = {k: v for k, v in rec.items() if k not in ("seq", "t", "at", "event")}
    return orjson.dumps(rest).decode()


def _status_cell(o: Any) -> str:
    if o is None:
        return "(not in the trace: Draft)"
    parts = [o.email_status or "?"]
    if o.batch_status != "Sent":
        parts[0] = f"{parts[0]} (batch {o.batch_status})"
    if o.reason:
        parts.append(o.reason)
    if o.since:
        parts.append(f"since {o.since}")
    if o.stuck_at:
        parts.append(f"stuck {o.stuck_at}")
    return " · ".join(parts)


def _rcpt_cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "(not a recipient here)"
    parts = [str(r["outcome"])]
    if r.get("reason"):
        parts.append(str(r["reason"]))
    if r.get("at"):
        parts.append(str(r["at"]))
    return " · ".join(parts)


def render(con: Console, res: Any) -> None:
    from simulator.replay.diff import describe

    for label, run in (("A", res.a), ("B", res.b)):
        what = f"scenario {run.name}" if run.kind == "scenario" else f"trace of scenario {run.name}"
        con.print(Text(f"{label}  {run.path} — {what}, seed {run.header.get('seed')}, {len(run.records)} events"),
                  soft_wrap=True)
        for note in run.notes:
            con.print(Text(f"   note: {note}"), soft_wrap=True)
    con.print()
    d = res.divergence
    if d is None:
        con.print(Text("The runs do not diverge: the same events (seq and source lines aside)."))
    else:
        con.print(Text(f"First divergence: event {d.position}, {d.at}", style="bold"))
        con.print(Text(f"  {d.summary()}"), soft_wrap=True)
        for label, ev in (("A", d.a), ("B", d.b)):
            if ev is None:
                con.print(Text(f"  {label}  (its trace has ended)"))
            else:
                con.print(Text(f"  {label}  #{ev.get('seq')}  {ev.get('at')}  {ev.get('event')}  {_fields(ev)}"),
                          soft_wrap=True)
        if d.changes:
            con.print(Text("  changes (A → B):"))
            for c in d.changes:
                con.print(Text("    " + c.render("A", "B")), soft_wrap=True)
        for label, evs, other in (("A", d.only_a, d.a), ("B", d.only_b, d.b)):
            extra = [e for e in evs if e is not other]
            if d.kind != "changed" and extra:
                con.print(Text(f"  then only in {label}: " + "; ".join(f"{describe(e)} ({e.get('at')})"
                                                                       for e in extra)), soft_wrap=True)
    con.print()
    if not res.invoices:
        con.print(Text(f"No invoice ends differently ({res.compared} compared)."))
        return
    table = Table(title=f"Invoices whose outcome differs: {len(res.invoices)} of {res.compared}",
                  title_justify="left")
    table.add_column("Invoice")
    table.add_column("What")
    table.add_column(f"A: {res.a.name}")
    table.add_column(f"B: {res.b.name}")
    for inv in res.invoices:
        first = True
        status_fields = {f for f, _, _ in inv.changes if not f.startswith("recipient ")}
        if status_fields:
            table.add_row(Text(inv.invoice), Text("email status" if "exists" not in status_fields else "invoice"),
                          Text(_status_cell(inv.a) if inv.a or "exists" not in status_fields else "(no such invoice)"),
                          Text(_status_cell(inv.b) if inv.b or "exists" not in status_fields else "(no such invoice)"))
            first = False
        for f, x, y in inv.changes:
            if not f.startswith("recipient "):
                continue
            table.add_row(Text(inv.invoice if first else ""), Text(f.removeprefix("recipient ")),
                          Text(_rcpt_cell(x)), Text(_rcpt_cell(y)))
            first = False
    con.print(table)


@app.callback(invoke_without_command=True)
def diff(
    a: Annotated[Path, typer.Argument(metavar="A", help="A scenario file or a trace (JSONL).")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Another scenario file or trace.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Where runs A and B first diverge, and a table of invoices whose outcome or reason differs."""
    from simulator.replay.diff import diff_runs, load_run
    from simulator.replay.replay import TraceInputError

    try:
        ra = load_run(a)
        rb = load_run(b)
    except TraceInputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    res = diff_runs(ra, rb)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(res.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render(_console(), res)
    raise typer.Exit(res.exit_code)


if __name__ == "__main__":  # pragma: no cover
    app()
