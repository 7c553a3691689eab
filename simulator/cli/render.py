"""How results look on a terminal (rich), in JUnit XML, and the progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from simulator.engine.result import InvoiceView, RunResult
    from simulator.explain.explain import Explanation

LARGE = 60

OUTCOME_STYLE = {"inbox": "green", "junk": "yellow", "bounced": "red", "deferred": "magenta", "skipped": "red",
                 "none": "dim"}
STATUS_STYLE = {"Sent": "green", "In Queue": "yellow", "Pending": "cyan", "N/A": "red"}


def _rcpt_text(v: InvoiceView) -> Text:
    t = Text()
    for i, r in enumerate(v.recipients):
        if i:
            t.append("\n")
        t.append(r.email.strip() or "(empty)", style="bold" if r.outcome in ("inbox",) else "")
        t.append(" → ")
        t.append(r.outcome, style=OUTCOME_STYLE.get(r.outcome, ""))
        if r.reason:
            t.append(f" ({r.reason})", style="dim")
    if not v.recipients:
        t.append("(no email-invoice contact)", style="dim")
    return t


def summary(console: Console, result: RunResult, *, all_rows: bool = False) -> None:
    scn = result.engine.scn
    console.print(f"[bold]{scn.name}[/bold]  seed={scn.seed}  {scn.iso(0)} → {scn.iso(result.end)}")
    n = result.engine.total_invoices
    if n <= LARGE or all_rows:
        table = Table(show_lines=False, header_style="bold")
        for col in ("Invoice", "Batch", "Batch status", "Email status", "Reason", "Recipients"):
            table.add_column(col, overflow="fold")
        for v in result.invoices():
            status = Text(v.email_status, style=STATUS_STYLE.get(v.email_status, ""))
            table.add_row(v.id, v.batch, v.batch_status, status, v.reason or "", _rcpt_text(v))
        console.print(table)
    else:
        groups = result.summary_groups()
        table = Table(header_style="bold", title=f"{n:,} invoices (grouped; --all lists each)")
        for col in ("Batch status", "Email status", "Reason", "Recipient outcomes", "Invoices"):
            table.add_column(col, overflow="fold")
        for (bs, es, reason, outs), c in sorted(groups.items(), key=lambda kv: -kv[1]):
            table.add_row(bs, Text(es, style=STATUS_STYLE.get(es, "")), reason, outs, f"{c:,}")
        console.print(table)
    acc = result.accounting()
    console.print("accounted: " + ", ".join(f"{k}={v:,}" for k, v in acc.items()), soft_wrap=True)
    boxes = result.mailboxes()
    bounced = {a: m["bounces"] for a, m in boxes.items() if m["bounces"]}
    if bounced:
        console.print("bounce-backs in senders' inboxes: " + ", ".join(f"{a}: {c}" for a, c in bounced.items()))


def expectations(console: Console, result: RunResult) -> None:
    if not result.expectations:
        return
    console.print()
    ok = sum(1 for x in result.expectations if x.ok)
    console.print(f"[bold]expectations[/bold] {ok}/{len(result.expectations)} hold")
    for x in result.expectations:
        mark = "[green]✓[/green]" if x.ok else "[red]✗[/red]"
        console.print(f" {mark} {escape_markup(x.text)}", soft_wrap=True)
        if not x.ok:
            console.print(f"     [dim]{escape_markup(x.detail)}  ({x.loc})[/dim]", soft_wrap=True)


def escape_markup(s: str) -> str:
    return s.replace("[", r"\[")


def explanations(console: Console, exps: Iterable[Explanation]) -> None:
    for e in exps:
        console.print()
        head = Text(f"{e.invoice}", style="bold")
        head.append(f"  {e.headline}")
        console.print(head, soft_wrap=True)
        for step in e.chain:
            console.print(Text(f"  • {step}"), soft_wrap=True)
        if e.guide_steps:
            console.print(Text(f"  guide: {e.guide_steps}", style="cyan"), soft_wrap=True)
        if e.fix:
            console.print(Text(f"  fix: {e.fix}", style="green"), soft_wrap=True)
        for w in e.warnings:
            console.print(Text(f"  ! {w}", style="yellow"), soft_wrap=True)


def junit_xml(result: RunResult) -> str:
    scn = result.engine.scn
    xs = result.expectations
    fails = sum(1 for x in xs if not x.ok)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name={quoteattr("mailsim." + scn.name)} tests="{len(xs)}" failures="{fails}">']
    for i, x in enumerate(xs):
        lines.append(f'  <testcase classname={quoteattr(scn.name)} name={quoteattr(f"{i + 1}: {x.text}")}>')
        if not x.ok:
            lines.append(f"    <failure message={quoteattr(x.detail)}>{escape(x.loc)}</failure>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


@contextmanager
def progress(console: Console, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over virtual time on stderr, only when stderr is a terminal."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.fields[day]}"), TimeElapsedColumn(),
                  console=console, transient=True) as prog:
        task = prog.add_task("run", total=1, day="")

        def update(now: int, end: int) -> None:
            prog.update(task, total=max(end, 1), completed=now, day=f"day {now / 86400:.1f}")

        yield update
