"""The timeline as a PNG (matplotlib, Agg backend): the same lanes, colours and marks as the HTML.

A still picture cannot scroll, so it aggregates sooner than the HTML: above
``max_lanes`` invoices (default 24) it draws one lane per batch × status ×
reason with the share of invoices (and recipients) in each state over time.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

from simulator.replay.timeline import (
    CUES,
    DELIVERY_KINDS,
    KINDS,
    SENDER_KINDS,
    STATUS_KINDS,
    Lane,
    Row,
    Timeline,
)
from simulator.scenario.times import format_duration

PNG_MAX_LANES = 24


def png_bytes(tl: Timeline, *, max_lanes: int = PNG_MAX_LANES) -> bytes:
    """The PNG in memory (the HTML page's ``<noscript>`` picture)."""
    buf = io.BytesIO()
    _draw(tl, buf, max_lanes=max_lanes)
    return buf.getvalue()


def render_png(tl: Timeline, path: str | Path, *, max_lanes: int = PNG_MAX_LANES, width: int = 1600,
               height: int = 900, dpi: int = 100) -> Path:
    out = Path(path)
    _draw(tl, out, max_lanes=max_lanes, width=width, height=height, dpi=dpi)
    return out


def _draw(tl: Timeline, target: Path | io.BytesIO, *, max_lanes: int = PNG_MAX_LANES, width: int = 1600,
          height: int = 900, dpi: int = 100) -> None:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(tl.start_ms / 1000, tz=UTC)
    lanes, aggregated = tl.display_lanes(max_lanes)
    a, b = tl.view if tl.view else (0, max(tl.end, 1))

    def x(t: float) -> float:
        return float(mdates.date2num(start + timedelta(seconds=t)))

    # layout: rows stacked top-down in "units"; senders first
    items: list[tuple[Lane, list[tuple[Row, float, float]], float, float]] = []
    y = 0.0
    gap = 0.5
    for lane in [*tl.senders, *lanes]:
        top = y
        rows: list[tuple[Row, float, float]] = []
        for i, row in enumerate(lane.rows):
            h = 1.0 if i == 0 else 0.6
            if lane.kind == "group":
                h = 1.6 if i == 0 else 1.0
            rows.append((row, y, h))
            y += h + 0.15
        items.append((lane, rows, top, y))
        y += gap
    total_h = max(y, 1.0)

    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.subplots_adjust(left=0.2, right=0.985, top=0.86, bottom=0.14)
    x0, x1 = x(a), x(b)
    xspan = (x1 - x0) or 1.0
    min_w = xspan * 0.002
    kinds_used: dict[str, None] = {}

    for f in tl.faults:
        if f.end < a or f.start > b:
            continue
        ax.axvspan(x(f.start), x(f.end), color="#d9472b", alpha=0.08, hatch="///", lw=0)
        ax.text(x(max(f.start, a)), -0.9, f.label, fontsize=7.5, color="#a5321b", va="bottom")

    for lane, rows, _top, bottom in items:
        ax.axhline(bottom + gap / 2 - 0.05, color="#e3e6ea", lw=0.6, zorder=0)
        for i, (row, ry, h) in enumerate(rows):
            if row.steps is not None:
                _draw_steps(ax, row, ry, h, tl.end, x, a, b, STATUS_KINDS if i == 0 else DELIVERY_KINDS, kinds_used)
            else:
                for s in row.spans:
                    if s.end < a or s.start > b:
                        continue
                    sx, ex = x(max(s.start, a)), x(min(s.end, b))
                    w = max(ex - sx, min_w)
                    ax.broken_barh([(sx, w)], (ry, h), facecolors=KINDS[s.kind][1], edgecolor=_HATCH_INK,
                                   hatch=_hatch(s.kind), linewidth=0)
                    kinds_used.setdefault(s.kind, None)
                    text = s.label + (f" · {s.reason}" if s.reason else "")
                    fs = 7.5 if h >= 1 else 6.3
                    # on a hatched bar the text sits on a patch of the plain colour, to stay readable
                    box = ({"facecolor": KINDS[s.kind][1], "edgecolor": "none", "pad": 0.6} if _hatch(s.kind)
                           else None)
                    for shown in (text, s.label):
                        if w > xspan * len(shown) * 0.0052 * fs / 7.5:
                            ax.text(sx + xspan * 0.003, ry + h / 2, shown, fontsize=fs, va="center",
                                    color=_ink(KINDS[s.kind][1]), clip_on=True, bbox=box)
                            break
            for m in row.marks:
                if not a <= m.t <= b:
                    continue
                if m.kind == "stuck":
                    ax.plot([x(m.t)] * 2, [ry - 0.2, ry + h + 0.2], color="#b3261e", lw=1.4, ls=(0, (2, 1.5)))
                elif m.kind == "attempt":
                    ax.plot([x(m.t)] * 2, [ry - 0.05, ry + h + 0.05], color="#243140", lw=1.6)
                else:
                    ax.plot([x(m.t)], [ry + h / 2], marker="D", ms=4.5, color="#b3261e" if m.kind == "expiry"
                            else "#243140", mec="white", mew=0.6)
            if lane.kind == "invoice" and i > 0:
                ax.text(x0 - xspan * 0.006, ry + h / 2, _fit(row.label, 30), fontsize=6.5, ha="right",
                        va="center", color="#5f6b7a", clip_on=False)

    # markers: dotted lines with merged labels along the top
    marks = sorted((mk for mk in tl.markers if a <= mk.t <= b), key=lambda mk: mk.t)
    merged: list[list[Any]] = []
    for mk in marks:
        if merged and x(mk.t) - x(merged[-1][0]) < xspan * 0.01:
            merged[-1][1].append(mk.label)
            merged[-1][2] = merged[-1][2] or mk.kind == "expiry"
        else:
            merged.append([mk.t, [mk.label], mk.kind == "expiry"])
    levels = 3
    ends = [-1e18] * levels
    char = xspan * 0.0048  # one character of the 7.5 pt label, in data units
    for t, labels, expiry in merged:
        color = "#b3261e" if expiry else "#3b4a5c"
        ax.axvline(x(t), color=color, lw=0.8, ls=(0, (1.5, 2.5)), alpha=0.8, zorder=0.5)
        text = labels[0] if len(labels) == 1 else f"{len(labels)} events: {labels[0]}, …"
        if all(lab.endswith(" completed") for lab in labels):
            joined = ", ".join(lab.removesuffix(" completed") for lab in labels) + " completed"
        else:
            joined = " · ".join(labels)
        if len(labels) > 1 and len(joined) <= 60:
            text = joined
        xt = x(t)
        level, ha = _label_row(xt, len(text) * char, ends, x0, x1)
        if level < 0:  # no row takes it whole: shorten it to the widest free row (the rest is in the HTML)
            level = max(range(levels), key=lambda lv: x1 - max(xt, ends[lv]) if xt >= ends[lv] else -1)
            room = int((x1 - max(xt, ends[level])) / char) - 1
            text = text[: max(4, room - 1)] + "…" if len(text) > room else text
            ha = "left"
        ends[level] = xt + len(text) * char if ha == "left" else xt
        ax.text(xt, -1.7 - level * 0.9, (" " + text) if ha == "left" else (text + " "), fontsize=7.5, color=color,
                va="bottom", ha=ha, clip_on=False)

    ax.set_xlim(x0, x1)
    ax.set_ylim(total_h, -3.9)
    ticks = []
    labels = []
    for lane, rows, _top, _bottom in items:
        ticks.append(rows[0][1] + rows[0][2] / 2)
        head = lane.label if lane.kind != "invoice" else f"{lane.label}  {lane.status}"
        if lane.reason and lane.kind != "sender":
            head += f"\n{lane.reason}"
        elif lane.kind == "sender":
            head = f"{lane.label}\nsender, now: {lane.status}"
        labels.append("\n".join(_fit(line, 48) for line in head.split("\n")))
    ax.set_yticks(ticks, labels, fontsize=7.2)
    ax.tick_params(axis="y", length=0)
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    loc = mdates.AutoDateLocator(minticks=5, maxticks=12)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=start.tzinfo))
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#eceff3", lw=0.6, zorder=0)
    ax.set_xlabel("time (UTC)", fontsize=8)

    title = f"mailsim timeline — {tl.scenario}"
    sub = (f"{tl.start_iso.replace('T', ' ')} → {tl.end_iso.replace('T', ' ')} · {tl.n_invoices:,} invoices · "
           + ", ".join(f"{k} {v:,}" for k, v in tl.counts.items())
           + f" · stuck after {format_duration(tl.stuck_after)} in queue (red dashes)")
    if aggregated:
        sub += f" · aggregated: {len(lanes)} lanes, bar heights = share of invoices"
    fig.text(0.012, 0.975, title, fontsize=13, weight="bold", va="top")
    fig.text(0.012, 0.945, sub, fontsize=8.5, color="#5f6b7a", va="top")
    order = [k for k in (*STATUS_KINDS, *DELIVERY_KINDS, *SENDER_KINDS) if k in kinds_used]
    handles = [Patch(facecolor=KINDS[k][1], edgecolor=_HATCH_INK if _hatch(k) else KINDS[k][1], hatch=_hatch(k),
                     label=(f"{CUES[k][1]} " if k in CUES else "") + KINDS[k][0]) for k in order]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7) or 1, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.55, 0.0))
    fig.savefig(target, dpi=dpi, format="png")
    plt.close(fig)


def _draw_steps(ax: Any, row: Row, ry: float, h: float, end: int, x: Any, a: int, b: int,
                order: tuple[str, ...], used: dict[str, None]) -> None:
    """Stacked shares per kind over time: one PolyCollection per kind (thousands of steps stay cheap)."""
    steps = row.steps or []
    total = max(row.total, 1)
    polys: dict[str, list[list[tuple[float, float]]]] = {}
    for i, (t0, counts) in enumerate(steps):
        t1 = steps[i + 1][0] if i + 1 < len(steps) else end
        if t1 < a or t0 > b:
            continue
        sx, ex = x(max(t0, a)), x(min(max(t1, t0), b))
        base = 0
        for k in order:
            n = counts.get(k, 0)
            if not n:
                continue
            used.setdefault(k, None)
            yb = ry + h - base / total * h
            yt = ry + h - (base + n) / total * h
            polys.setdefault(k, []).append([(sx, yb), (ex, yb), (ex, yt), (sx, yt)])
            base += n
    for k, verts in polys.items():
        hatch = _hatch(k)
        ax.add_collection(PolyCollection(verts, facecolors=KINDS[k][1], edgecolors=_HATCH_INK if hatch else KINDS[k][1],
                                         linewidths=0 if hatch else 0.3, hatch=hatch))


def _ink(hex_color: str) -> str:
    n = int(hex_color[1:], 16)
    r, g, b = n >> 16, (n >> 8) & 255, n & 255
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else "#1d2733"


def _fit(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


_HATCH_INK = "#ffffff"


def _hatch(kind: str) -> str | None:
    """The second cue of a state that must not rest on its colour (stuck, bounced, token expired)."""
    cue = CUES.get(kind)
    return cue[2] if cue else None


def _label_row(xt: float, width: float, ends: list[float], x0: float, x1: float) -> tuple[int, str]:
    """The first row where a label fits whole: to the right of its line, else hung to its left; -1 if none."""
    for level, end in enumerate(ends):
        if xt >= end and xt + width <= x1:
            return level, "left"
    for level, end in enumerate(ends):
        if xt - width >= max(end, x0):
            return level, "right"
    return -1, "left"
