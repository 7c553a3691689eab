"""How results look on a terminal (rich), in JUnit XML, and the progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from simulator.domain.display import visible

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
        t.append(visible(r.email) or "(empty)", style="bold" if r.outcome in ("inbox",) else "")
        t.append(" → ")
        t.append(r.outcome, style=OUTCOME_STYLE.get(r.outcome, ""))
        if r.reason:
            t.append(f" ({r.reason})", style="dim")
    if not v.recipients:
        t.append("(no email-invoice contact)", style="dim")
    return t


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _longest_word(cell: str | Text) -> int:
    return max((len(w) for w in _plain(cell).split()), default=0)


def _longest_line(cell: str | Text) -> int:
    return max((len(line) for line in _plain(cell).splitlines()), default=0)


def _table_or_none(console: Console, headers: tuple[str, ...], rows: list[tuple[str | Text, ...]],
                   **table_args: object) -> Table | None:
    """A table whose columns are at least as wide as their longest word — or None if that cannot fit.

    Rich folds a word longer than its column mid-token (``no-deliverab|le-recipient``), which is
    unreadable and can split an address exactly where its trailing space is. So each column
    gets at least its longest word, the room left goes first to the columns that need least of
    it to show their lines unwrapped, and a terminal too narrow for the words alone gets the
    stacked layout instead.
    """
    columns = range(len(headers))
    least = [max((_longest_word(headers[i]), *(_longest_word(r[i]) for r in rows))) for i in columns]
    most = [max((_longest_line(headers[i]), *(_longest_line(r[i]) for r in rows))) for i in columns]
    room = console.width - (3 * len(headers) + 1)  # borders and one space of padding each side
    if sum(least) > room:
        return None
    widths = list(most)
    if sum(most) > room:  # share the room left: narrow columns are served whole first (water-filling)
        widths, spare = list(least), room - sum(least)
        want = [m - lo for m, lo in zip(most, least, strict=True)]
        order = sorted(columns, key=lambda i: want[i])
        for k, i in enumerate(order):
            give = min(want[i], spare // (len(order) - k))
            widths[i] += give
            spare -= give
    table = Table(header_style="bold", **table_args)  # type: ignore[arg-type]
    for head, width in zip(headers, widths, strict=True):
        table.add_column(head, width=width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _stacked(console: Console, rows: Iterable[tuple[Text, Text]]) -> None:
    """One block per row (a head line, then indented details): what a narrow terminal can show whole."""
    for head, detail in rows:
        console.print(head)
        if detail.plain:
            console.print(Text("    ").append_text(detail) if "\n" not in detail.plain else
                          Text("\n").join(Text("    ").append_text(line) for line in detail.split("\n")))


def summary(console: Console, result: RunResult, *, all_rows: bool = False) -> None:
    spec = result.spec
    console.print(Text.assemble((spec.name, "bold"), f"  seed={spec.seed}  {spec.iso(0)} → {spec.iso(result.end)}"))
    n = result.total_invoices
    if n <= LARGE or all_rows:
        views = list(result.invoices())
        rows: list[tuple[str | Text, ...]] = [
            (v.id, v.batch, v.batch_status, Text(v.email_status, style=STATUS_STYLE.get(v.email_status, "")),
             v.reason or "", _rcpt_text(v)) for v in views]
        table = _table_or_none(console, ("Invoice", "Batch", "Batch status", "Email status", "Reason", "Recipients"),
                               rows)
        if table is not None:
            console.print(table)
        else:
            _stacked(console, ((Text.assemble((v.id, "bold"), f"  batch {v.batch} ({v.batch_status})  email ",
                                              (v.email_status, STATUS_STYLE.get(v.email_status, "")),
                                              f"  {v.reason}" if v.reason else ""), _rcpt_text(v))
                               for v in views))
    else:
        groups = sorted(result.summary_groups().items(), key=lambda kv: -kv[1])
        title = f"{n:,} invoices (grouped; --all lists each)"
        grouped: list[tuple[str | Text, ...]] = [
            (bs, Text(es, style=STATUS_STYLE.get(es, "")), reason, outs.replace(",", ", "), f"{c:,}")
            for (bs, es, reason, outs), c in groups]
        table = _table_or_none(console, ("Batch status", "Email status", "Reason", "Recipient outcomes", "Invoices"),
                               grouped, title=title)
        if table is not None:
            console.print(table)
        else:
            console.print(title)
            _stacked(console, ((Text.assemble((f"{c:,}", "bold"), f" × batch {bs}, email ",
                                              (es, STATUS_STYLE.get(es, "")), f"  {reason}" if reason else ""),
                                Text(outs.replace(",", ", "))) for (bs, es, reason, outs), c in groups))
    acc = result.accounting()
    console.print("accounted: " + ", ".join(f"{k}={v:,}" for k, v in acc.items()))
    boxes = result.mailboxes()
    bounced = {a: m["bounces"] for a, m in boxes.items() if m["bounces"]}
    if bounced:
        console.print(Text("bounce-backs in senders' inboxes: "
                           + ", ".join(f"{visible(a)}: {c}" for a, c in bounced.items())))


def expectations(console: Console, result: RunResult) -> None:
    if not result.expectations:
        return
    console.print()
    ok = sum(1 for x in result.expectations if x.ok)
    console.print(f"[bold]expectations[/bold] {ok}/{len(result.expectations)} hold")
    written = result.spec.expect if len(result.spec.expect) == len(result.expectations) else ()
    for i, x in enumerate(result.expectations):
        mark = "[green]✓[/green]" if x.ok else "[red]✗[/red]"
        text = x.text
        e = written[i] if written else None
        if e is not None and e.recipient is not None and visible(e.recipient) != e.recipient:
            text = text.replace(f"recipient={e.recipient}", f"recipient={visible(e.recipient)}")
        console.print(f" {mark} {escape_markup(text)}", soft_wrap=True)
        if not x.ok:
            console.print(f"     [dim]{escape_markup(x.detail)}  ({x.loc})[/dim]", soft_wrap=True)


def escape_markup(s: str) -> str:
    return s.replace("[", r"\[")


def _line(console: Console, lead: str, text: str, style: str, wrap: bool, lead_style: str | None = None) -> None:
    """``lead`` then ``text``; wrapped at word boundaries under the text (a hanging indent) when ``wrap``."""
    head = Text(lead, style=style if lead_style is None else lead_style)
    if not wrap:  # a pipe or file: one line per item, whatever its length (grep-able)
        console.print(head.append(text, style=style), soft_wrap=True)
        return
    grid = Table.grid()
    grid.add_column(width=len(lead), no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(head, Text(text, style=style))
    console.print(grid)


def explanations(console: Console, exps: Iterable[Explanation], *, wrap: bool | None = None) -> None:
    """Each explanation: headline, evidence, guide steps, fix, warnings.

    On a terminal (or with ``COLUMNS`` set) long lines wrap at word boundaries under their
    text; into a pipe every item stays one line.
    """
    if wrap is None:
        wrap = console.is_terminal or bool(os.environ.get("COLUMNS"))
    for e in exps:
        console.print()
        _line(console, f"{e.invoice}  ", e.headline, "", wrap, lead_style="bold")
        for step in e.chain:
            _line(console, "  • ", step, "", wrap)
        if e.guide_steps:
            _line(console, "  guide: ", e.guide_steps, "cyan", wrap)
        if e.fix:
            _line(console, "  fix: ", e.fix, "green", wrap)
        for w in e.warnings:
            _line(console, "  ! ", w, "yellow", wrap)


def junit_xml(result: RunResult) -> str:
    from xml.sax.saxutils import escape, quoteattr  # here: it pulls in urllib and http (25 ms per command)

    scn = result.spec
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
