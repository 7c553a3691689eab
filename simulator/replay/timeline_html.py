"""The timeline as one self-contained HTML file: inline CSS, vanilla JS, inline SVG.

No network at all (no CDN, no web fonts, no fetch): the model is embedded as
JSON in ``<script type="application/json" id="timeline-data">`` and the page's
script draws it as SVG. Lanes carry ``data-invoice`` / ``data-batch`` /
``data-status`` / ``data-reason`` (sender lanes ``data-user``), every span has a
``<title>`` with its dates and reason, and script errors are written into
``#errors`` (so a headless browser's DOM dump shows them).

Zoom with the mouse wheel, the buttons or the range inputs; drag to pan;
filter by batch, status, reason or invoice id; click a span for its details.
Above :data:`MAX_DETAIL_LANES` invoices the lanes are aggregated (one per
batch × status × reason, drawn as counts over time).
"""

from __future__ import annotations

import base64
import html
import importlib.util
from importlib import resources
from pathlib import Path

import orjson

from simulator.replay.timeline import KINDS, MAX_DETAIL_LANES, Timeline


def _asset(name: str) -> str:
    """A package-data file beside this module (the page's CSS and scripts, inlined into the one file)."""
    return resources.files("simulator.replay").joinpath(name).read_text(encoding="utf-8")


_BODY = """<header>
<h1>mailsim timeline — {name}</h1>
<div class="sub">{sub}</div>
{desc}
<div class="chips">{chips}</div>
</header>
<pre id="errors"></pre>
<div id="toolbar">
  <label>batch <select id="f-batch"></select></label>
  <label>status <select id="f-status"></select></label>
  <label>reason <select id="f-reason"></select></label>
  <label>invoice <input type="search" id="f-q" placeholder="id or address" size="14"></label>
  <label><input type="checkbox" id="f-rcpt" checked> recipients</label>
  <span id="shown"></span>
  <span>
    <button id="z-out" title="zoom out">−</button>
    <button id="z-in" title="zoom in">+</button>
    <button id="z-fit" title="zoom to where things happen">fit activity</button>
    <button id="z-all" title="the whole run">whole run</button>
  </span>
  <label>from <input type="range" id="r-from" min="0" max="1000" value="0"></label>
  <label>to <input type="range" id="r-to" min="0" max="1000" value="1000"></label>
  <span id="window"></span>
</div>
<div id="legend"></div>
<div id="player" role="toolbar" aria-label="player">
  <button id="p-first" title="the start (Home)">⇤</button>
  <button id="p-prev" title="previous step (←; Shift+← previous notable event)">◀</button>
  <button id="p-play" title="play / pause (space)">▶ play</button>
  <button id="p-next" title="next step (→; Shift+→ next notable event)">▶▶</button>
  <button id="p-last" title="the end (End)">⇥</button>
  <label>speed <select id="speed">
    <option value="60">1 min/s</option><option value="600">10 min/s</option>
    <option value="3600" selected>1 hour/s</option><option value="21600">6 hours/s</option>
    <option value="86400">1 day/s</option></select></label>
  <span id="clock"></span>
  <span id="stepinfo"></span>
</div>
<div id="caption" aria-live="polite"></div>
<section id="playhead-state" aria-live="polite"></section>
{noscript}
<div id="chart">
  <div id="axiswrap"><svg id="axis" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="time axis"></svg></div>
  <svg id="lanes" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline lanes"></svg>
  <div id="empty">No invoice matches the filters.</div>
</div>
<div id="details"><span class="hint">Hover a span for its dates and reason; click it for the guide step and fix.
Wheel (over the lanes) zooms, drag pans. Click or drag the time axis to move the playhead; ←/→ step,
Shift+←/→ jump between notable events, space plays, Home/End.</span></div>
"""


def render_html(tl: Timeline, max_lanes: int = MAX_DETAIL_LANES, *, static_picture: bool = True) -> str:
    """The page. ``static_picture``: embed the PNG in a ``<noscript>`` (shown when scripts are off)."""
    data = tl.to_json(max_lanes)
    blob = orjson.dumps(data).decode().replace("</", "<\\/").replace("<!--", "<\\!--")
    e = html.escape
    sub = (f"{e(_pretty(tl.start_iso))} → {e(_pretty(tl.end_iso))} ({_dur(tl.end)}) · an email is stuck after "
           f"{_dur(tl.stuck_after)} in queue")
    sub += f" · {tl.n_invoices:,} invoice{'s' if tl.n_invoices != 1 else ''}"
    if data["aggregated"]:
        sub += f" · aggregated into {len(data['lanes'])} lanes (more than {max_lanes:,} invoices)"
    chips = "".join(f'<span class="chip">{e(k)}: {v:,}</span>' for k, v in tl.counts.items())
    acc = tl.accounting
    chips += "".join(f'<span class="chip">{e(k)}: {acc[k]:,}</span>'
                     for k in ("inbox", "junk", "bounced", "deferred", "skipped") if acc.get(k))
    desc = f'<div class="desc">{e(tl.description)}</div>' if tl.description else ""
    noscript = ""
    # the picture needs matplotlib (the png extra): without it the page simply has no <noscript> picture
    if static_picture and importlib.util.find_spec("matplotlib") is not None:
        from simulator.replay.timeline_png import png_bytes

        picture = base64.b64encode(png_bytes(tl)).decode()
        noscript = (f'<noscript><p>Scripts are off: the static picture of the run (no playhead).</p>'
                    f'<img alt="timeline of {e(tl.scenario)}" src="data:image/png;base64,{picture}"></noscript>')
    body = (_BODY.replace("{name}", e(tl.scenario)).replace("{sub}", sub).replace("{desc}", desc)
            .replace("{chips}", chips).replace("{noscript}", noscript))
    kind_css = "".join(f".k-{k}{{fill:{c};}}" for k, (_, c) in KINDS.items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>mailsim timeline — {e(tl.scenario)}</title>\n"
        f"<script>{_asset('timeline_errors.js')}</script>\n<style>{_asset('timeline.css')}{kind_css}</style>\n"
        f"</head>\n<body>\n{body}"
        f"<script type=\"application/json\" id=\"timeline-data\">{blob}</script>\n"
        f"<script>{_asset('timeline.js')}\n{_asset('player.js')}</script>\n</body>\n</html>\n"
    )


def _pretty(iso: str) -> str:
    return iso.replace("T", " ").replace(":00Z", "Z")


def _dur(seconds: int) -> str:
    from simulator.scenario.times import format_duration

    return format_duration(max(0, seconds))


def write_html(tl: Timeline, path: str | Path, max_lanes: int = MAX_DETAIL_LANES, *,
               static_picture: bool = True) -> Path:
    p = Path(path)
    p.write_text(render_html(tl, max_lanes, static_picture=static_picture), encoding="utf-8")
    return p
