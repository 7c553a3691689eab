"""``mailsim timeline FILE --html OUT.html [--png OUT.png]``: a picture of the run.

Runs the scenario with a trace, builds the lanes (invoices, sender users,
events, faults) and writes a self-contained HTML page and/or a PNG. Exit 0
when the files are written (whatever the expectations say: the picture is not a
check), 2 on bad input.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import fail, load_or_exit
from simulator.replay.timeline import MAX_DETAIL_LANES

# a one-command group: let options follow FILE (click groups stop at the first positional otherwise)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"allow_interspersed_args": True})


@app.callback(invoke_without_command=True)
def timeline(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML).")],
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the interactive HTML page here.")] = None,
    png: Annotated[Path | None, typer.Option(help="Write a PNG (matplotlib) here.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Initial window start: +2h, -30m or an ISO time.")] = None,
    to: Annotated[str | None, typer.Option(help="Initial window end: +5h or an ISO time (default: the end).")] = None,
    max_lanes: Annotated[int, typer.Option(help="Aggregate the HTML's invoice lanes above this many invoices.")]
    = MAX_DETAIL_LANES,
    png_max_lanes: Annotated[int, typer.Option(help="Aggregate the PNG's invoice lanes above this many.")] = 24,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
) -> None:
    """Draw a run: one lane per invoice (status, then each recipient's delivery), lanes for sender users,
    markers for timeline events and faults, the stuck threshold. HTML is one offline file; PNG via matplotlib."""
    from simulator.scenario.times import parse_time

    if html_out is None and png is None:
        raise fail("nothing to write: give --html OUT.html and/or --png OUT.png")
    if max_lanes < 1 or png_max_lanes < 1:
        raise fail("--max-lanes and --png-max-lanes must be at least 1")
    scn = load_or_exit(file)
    if seed is not None:
        scn = replace(scn, seed=seed)
    bounds: list[int | None] = []
    for name, text in (("--from", from_), ("--to", to)):
        if text is None:
            bounds.append(None)
            continue
        try:
            bounds.append(parse_time(text, scn.start))
        except ValueError as exc:
            raise fail(f"{name}: {exc}") from None

    for target in (html_out, png):
        if target is not None and target.parent and not target.parent.exists():
            raise fail(f"{target}: directory {target.parent} does not exist")

    from simulator.replay.timeline import timeline_of
    from simulator.replay.timeline_html import write_html

    tl = timeline_of(scn, detail_limit=max(max_lanes, png_max_lanes))
    if bounds[0] is not None or bounds[1] is not None:
        a = max(0, bounds[0] if bounds[0] is not None else 0)
        b = min(tl.end, bounds[1] if bounds[1] is not None else tl.end)
        if b <= a:
            raise fail(f"the window is empty: --from must be before --to, within the run (0 → +{tl.end}s)")
        tl.view = (a, b)
    written = []
    if html_out is not None:
        write_html(tl, html_out, max_lanes)
        written.append(str(html_out))
    if png is not None:
        from simulator.replay.timeline_png import render_png  # matplotlib: the png extra, only when asked

        render_png(tl, png, max_lanes=png_max_lanes)
        written.append(str(png))
    shown = "aggregated" if tl.n_invoices > max_lanes else "one lane each"
    sys.stdout.write(f"{scn.name}: {tl.n_invoices:,} invoices ({shown}), {len(tl.senders)} sender lanes, "
                     f"{len(tl.markers)} events, {len(tl.faults)} faults → {', '.join(written)}\n")
