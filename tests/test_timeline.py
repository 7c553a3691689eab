"""``mailsim timeline``: the lanes/spans model, the self-contained HTML, the PNG and the command."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from simulator.cli.timeline_cmd import app as timeline_app
from simulator.replay.timeline import MAX_DETAIL_LANES, Lane, Timeline, timeline_of
from simulator.replay.timeline_html import render_html
from simulator.replay.timeline_png import render_png
from simulator.scenario.loader import load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "scenarios" / "tour.yaml"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

# 10,000 invoices in five batches: sends, bounces, skipped addresses, N/A, Draft, a greylisting
# domain, an outage, and a region sender whose token expires mid-run (batch C waits, then drains).
BIG = """\
schema: mailsim/1
name: timeline-10k
start: 2026-11-02T09:00:00Z
seed: 5
until: +2d
organization:
  configuration: {invoice_email_from: billing@acme.example}
  regions: [{id: north, invoicing_email_from: north@acme.example}]
  branches:
    - {id: b1, region: north}
    - {id: b2, invoicing_email_from: b2@acme.example}
users:
  - {id: nora, email: north@acme.example, sync: {provider: microsoft365, synced: -100d, last_login: -89d6h}}
  - {id: bea, email: b2@acme.example, sync: {provider: google, synced: -5d}}
  - {id: bill, email: billing@acme.example}
contacts:
  - {id: c1, email: jane@client.example}
  - {id: c2, email: bob@grey.example}
  - {id: c3, email: nobody@client.example}
  - {id: c4, email: "bad address@client.example"}
properties:
  - {id: p1, branch: b1, contacts: [{contact: c1, email_invoice: true}]}
  - {id: p2, branch: b2, contacts: [{contact: c2, email_invoice: true}, {contact: c1, email_invoice: true}]}
  - {id: p3, branch: b2, contacts: [{contact: c3, email_invoice: true}]}
  - {id: p4, branch: b2, contacts: [{contact: c4, email_invoice: true}]}
  - {id: p5, branch: b1, contacts: []}
batches:
  - {id: A, invoices: {count: 2500, properties: [p1, p5]}}
  - {id: B, invoices: {count: 2500, properties: [p2, p3, p4]}}
  - {id: C, invoices: {count: 2000, properties: [p1]}}
  - {id: D, invoices: {count: 2000, properties: [p2]}}
  - {id: E, invoices: {count: 1000, properties: [p1, p2]}}
dns:
  records:
    - {name: acme.example, type: TXT,
       value: "v=spf1 include:spf.protection.outlook.com include:_spf.google.com ip4:198.51.100.10 -all"}
    - {name: client.example, type: MX, value: "10 mx.client.example"}
    - {name: mx.client.example, type: A, value: 192.0.2.25}
    - {name: grey.example, type: MX, value: "10 mx.grey.example"}
    - {name: mx.grey.example, type: A, value: 192.0.2.26}
mailboxes:
  - {domain: client.example, users: [jane]}
  - {domain: grey.example, greylist: 10m}
timeline:
  - {at: +1h, complete_batch: A}
  - {at: +3h, complete_batch: B}
  - {at: +1d2h, complete_batch: C}
  - {at: +6h, complete_batch: E}
  - {at: +1d6h, resync: nora}
faults:
  - {at: +2h, for: 30m, kind: outage, target: client.example}
"""


@cache
def tour() -> Timeline:
    return timeline_of(load_scenario(TOUR))


@cache
def big() -> Timeline:
    return timeline_of(load_scenario_text(BIG, "timeline-10k.yaml"))


def lane(tl: Timeline, lane_id: str) -> Lane:
    for ln in [*tl.invoices, *tl.senders]:
        if ln.id == lane_id:
            return ln
    raise AssertionError(f"no lane {lane_id}")


def kinds(ln: Lane, row: int = 0) -> list[tuple[int, int, str, str | None]]:
    return [(s.start, s.end, s.kind, s.reason) for s in ln.rows[row].spans]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return w, h


# -- the model --------------------------------------------------------------------------------
def test_tour_invoice_lanes_show_status_spans_reasons_and_the_stuck_threshold() -> None:
    tl = tour()
    h = 3600
    assert [ln.id for ln in tl.invoices] == ["INV-1001", "INV-1002", "INV-1003", "INV-1005", "INV-1004",
                                             "INV-1007", "INV-1006"]
    inv4 = lane(tl, "INV-1004")
    assert (inv4.status, inv4.reason) == ("In Queue", "sync-token-expired")
    # Pending until the batch completes, In Queue blocked by the expired token, stuck after an hour
    assert kinds(inv4) == [(0, h, "pending", "batch-draft"), (h, 2 * h, "queue-blocked", "sync-token-expired"),
                           (2 * h, 24 * h, "queue-stuck", "sync-token-expired")]
    stuck = [m for m in inv4.rows[0].marks if m.kind == "stuck"]
    assert [m.t for m in stuck] == [2 * h] and "1h in queue" in stuck[0].detail
    assert "sync-token-expired: The sender's mailbox-sync token expired" in inv4.rows[0].spans[1].detail
    assert "north-ar@greenacre.example" in inv4.rows[0].spans[1].detail
    assert kinds(inv4, 1) == [(h, 24 * h, "unsent", None)]

    assert kinds(lane(tl, "INV-1001"), 1) == [(h, 24 * h, "inbox", None)]
    assert kinds(lane(tl, "INV-1003"), 1) == [(h, 24 * h, "bounced", "unknown-recipient")]
    assert lane(tl, "INV-1003").reason == "unknown-recipient"
    assert kinds(lane(tl, "INV-1007"), 1) == [(h, 24 * h, "junk", "spf-softfail-junk")]
    inv2 = lane(tl, "INV-1002")
    assert kinds(inv2)[-1] == (h, 24 * h, "sent", "no-deliverable-recipient")
    assert kinds(inv2, 1) == [(h, 24 * h, "skipped", "recipient-email-invalid")]
    assert set(inv2.reasons) == {"no-deliverable-recipient", "recipient-email-invalid"}
    # N/A before and after completion is one span; a Draft batch is Pending all along
    assert kinds(lane(tl, "INV-1005")) == [(0, 24 * h, "na", "no-invoice-email-contact")]
    assert kinds(lane(tl, "INV-1006")) == [(0, 24 * h, "pending", "batch-draft")]
    assert [m.t for m in lane(tl, "INV-1001").rows[1].marks if m.kind == "attempt"] == [h]


def test_tour_sender_lanes() -> None:
    tl = tour()
    assert [ln.id for ln in tl.senders] == ["user:nora", "user:lee", "user:hal"]
    nora = lane(tl, "user:nora")
    assert kinds(nora) == [(0, 24 * 3600, "token-expired", "sync-token-expired")]
    assert nora.status == "token expired"
    detail = nora.rows[0].spans[0].detail
    assert "refreshed 2026-07-30 09:00Z by login" in detail and "expired 2026-10-28 09:00Z" in detail
    assert kinds(lane(tl, "user:lee")) == [(0, 24 * 3600, "sync-valid", None)]


def test_tour_markers() -> None:
    tl = tour()
    assert [(m.t, m.kind, m.label) for m in tl.markers] == [
        (3600, "batch", "NOV-LAKE completed"), (3600, "batch", "NOV-DOWN completed"),
        (3600, "batch", "NOV-HILL completed")]
    assert tl.faults == []
    assert tl.counts == {"Sent": 4, "N/A": 1, "In Queue": 1, "Pending": 1}


@pytest.mark.parametrize("name, user, expect", [
    # a login after expiry does not revive the token; the re-sync at +1d does
    ("step3-login-after-expiry-then-resync", "nora", ["token-expired", "sync-valid"]),
    ("step3-password-changed-resync", None, ["sync-valid", "password-changed", "sync-valid"]),
    # the login while alive refreshes the token: still valid, with a later expiry from then on
    ("step3-login-at-day-85-saves-token", None, ["sync-valid", "sync-valid"]),
    ("step3-unsupported-provider-spf-fixed", None, ["unsupported"]),
    ("step2-configuration-fallback", None, ["smtp-path"]),
])
def test_sender_states_follow_the_sync_rules(name: str, user: str | None, expect: list[str]) -> None:
    tl = timeline_of(load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
    senders = [ln for ln in tl.senders if user is None or ln.id == f"user:{user}"]
    assert any([s.kind for s in ln.rows[0].spans] == expect for ln in senders), [
        (ln.id, kinds(ln)) for ln in tl.senders]


def test_sender_expiry_inside_the_run_splits_the_lane() -> None:
    tl = big()
    nora = lane(tl, "user:nora")
    exp = 18 * 3600  # last login -89d6h + 90d
    resync = 30 * 3600
    assert kinds(nora) == [(0, exp, "sync-valid", None), (exp, resync, "token-expired", "sync-token-expired"),
                           (resync, 48 * 3600, "sync-valid", None)]
    assert {m.kind for m in nora.rows[0].marks} == {"expiry", "resync"}
    assert any(m.kind == "expiry" and m.t == exp for m in tl.markers)
    assert [(b.start, b.end, b.kind) for b in tl.faults] == [(7200, 9000, "outage")]


def test_deferrals_and_retries_on_the_recipient_row() -> None:
    tl = timeline_of(load_scenario(ROOT / "scenarios" / "after-sending-greylisted.yaml"))
    row = tl.invoices[0].rows[1]
    assert [(s.kind, s.reason) for s in row.spans] == [("deferred", "greylisted"), ("inbox", None)]
    assert [m.label for m in row.marks] == ["attempt 1: 451", "attempt 2: 451", "attempt 3: 250"]
    tl = timeline_of(load_scenario(ROOT / "scenarios" / "after-sending-retries-exhausted.yaml"))
    assert [(s.kind, s.reason) for s in tl.invoices[0].rows[1].spans] == [
        ("deferred", "remote-outage"), ("bounced", "retries-exhausted")]
    assert tl.faults and tl.faults[0].kind == "outage"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_row_is_a_gapless_sequence_of_spans(path: Path) -> None:
    """Each status row covers the run from start to end without gaps or overlaps; recipient rows
    and sender rows are gapless from where they begin to the end."""
    tl = timeline_of(load_scenario(path))
    for ln in [*tl.invoices, *tl.senders]:
        for i, row in enumerate(ln.rows):
            spans = row.spans
            if not spans:
                assert i > 0, f"{ln.id}: empty status row"
                continue
            if i == 0:
                assert spans[0].start == 0, (ln.id, kinds(ln))
            assert spans[-1].end == tl.end, (ln.id, row.label, kinds(ln, i))
            for a, b in pairwise(spans):
                assert a.end == b.start and a.start <= a.end, (ln.id, row.label, kinds(ln, i))
            assert all(s.detail and s.kind for s in spans)
        # the final status span agrees with the run's result
        if ln.kind == "invoice":
            last = ln.rows[0].spans[-1].kind
            assert {"N/A": ("na",), "Pending": ("pending",), "Sent": ("sent",),
                    "In Queue": ("queue", "queue-blocked", "queue-stuck")}[ln.status or ""].count(last) == 1


def test_aggregate_lanes_for_a_large_run() -> None:
    tl = big()
    assert tl.n_invoices == 10_000
    lanes, aggregated = tl.display_lanes()
    assert aggregated and 1 < len(lanes) < 40
    assert all(ln.kind == "group" for ln in lanes)
    assert sum(ln.count for ln in lanes) == 10_000
    for ln in lanes:
        status = ln.rows[0]
        assert status.steps is not None and status.total == ln.count
        for _t, counts in status.steps:
            assert sum(counts.values()) == ln.count  # every invoice is in exactly one state at all times
    by_key = {(ln.batch, ln.status, ln.reason): ln for ln in lanes}
    # batch C waited behind the expired token, then drained after the re-sync
    c = by_key[("C", "Sent", None)]
    seen = [k for _t, counts in c.rows[0].steps or [] for k in counts]
    assert "queue-blocked" in seen and "queue-stuck" in seen and "sent" in seen
    assert ("B", "Sent", "unknown-recipient") in by_key and ("D", "Pending", "batch-draft") in by_key
    assert not tour().display_lanes()[1]


# -- HTML -------------------------------------------------------------------------------------
def embedded(page: str) -> Any:
    m = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page, re.S)
    assert m is not None
    return orjson.loads(m.group(1).replace("<\\/", "</"))


def test_html_is_self_contained() -> None:
    page = render_html(tour())
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched: no external URLs, links, sources, imports or network APIs
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    for needle in ("<link", "@import", "fetch(", "XMLHttpRequest", "WebSocket", "@font-face",
                   "navigator.sendBeacon"):
        assert needle not in page
    # the one source is the <noscript> picture, inline
    assert re.findall(r' src="([a-z]+:[a-z/]+;base64),', page) == ["data:image/png;base64"]
    assert page.count(" src=") == 1
    assert "default-src 'none'" in page  # and the page forbids any load should one slip in
    data = embedded(page)
    assert data["schema"] == "mailsim-timeline/1" and data["aggregated"] is False
    assert [ln["id"] for ln in data["lanes"]][4] == "INV-1004"
    assert "sync-token-expired" in data["reason_info"]


def test_html_is_deterministic_and_escapes_script_ends() -> None:
    assert render_html(tour()) == render_html(timeline_of(load_scenario(TOUR)))
    text = load_scenario(TOUR)
    from dataclasses import replace

    tl = timeline_of(replace(text, description="ends </script><script>alert(1)</script> here"))
    page = render_html(tl)
    assert page.count("</script>") == 3  # the error hook, the data, the code: nothing injected
    assert embedded(page)["description"] == "ends </script><script>alert(1)</script> here"


def test_html_of_ten_thousand_invoices_is_small_and_aggregated(tmp_path: Path) -> None:
    page = render_html(big())
    size = len(page.encode())
    assert size < 5_000_000, size
    data = embedded(page)
    assert data["aggregated"] is True and data["n_invoices"] == 10_000
    lanes = data["lanes"]
    assert isinstance(lanes, list) and all(ln["kind"] == "group" for ln in lanes)
    assert sum(ln["count"] for ln in lanes) == 10_000
    assert len(render_html(big(), max_lanes=20_000).encode()) > size  # the detailed page is the big one


# -- PNG --------------------------------------------------------------------------------------
def test_png_tour_and_large_run(tmp_path: Path) -> None:
    out = render_png(tour(), tmp_path / "tour.png")
    assert png_size(out) == (1600, 900) and out.stat().st_size > 20_000
    out = render_png(big(), tmp_path / "big.png")
    assert png_size(out) == (1600, 900)


# -- the command ------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_writes_html_and_png(tmp_path: Path) -> None:
    html_out, png_out = tmp_path / "t.html", tmp_path / "t.png"
    res = runner.invoke(timeline_app, [str(TOUR), "--html", str(html_out), "--png", str(png_out),
                                       "--from", "+30m", "--to", "+3h"])
    assert res.exit_code == 0, res.output
    assert "7 invoices" in res.output and "3 sender lanes" in res.output
    assert embedded(html_out.read_text())["view"] == [1800, 10800]
    assert png_size(png_out) == (1600, 900)
    res = runner.invoke(timeline_app, ["--max-lanes", "3", str(TOUR), "--html", str(html_out)])
    assert res.exit_code == 0, res.output
    assert embedded(html_out.read_text())["aggregated"] is True


@pytest.mark.parametrize("args, message", [
    ([], "nothing to write"),
    (["--html", "{tmp}/x.html", "--from", "5h"], "did you mean '+5h'"),
    (["--html", "{tmp}/x.html", "--from", "+3h", "--to", "+1h"], "window is empty"),
    (["--html", "{tmp}/no/such/dir/x.html"], "does not exist"),
])
def test_cli_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(timeline_app, [str(TOUR), *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert res.exit_code == 2 and message in res.output, res.output


def test_cli_bad_scenario_exits_2_with_a_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: mailsim/1\nname: x\nstart: 2026-11-02T09:00:00Z\nsettings: {queue_pol: 1m}\n")
    res = runner.invoke(timeline_app, [str(bad), "--html", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "bad.yaml:4:" in res.output and "queue_poll" in res.output, res.output
    assert not (tmp_path / "x.html").exists()


def test_timeline_of_a_stepped_session_shows_the_state_so_far() -> None:
    from simulator.engine.session import Session
    from simulator.replay.timeline import timeline_of_session

    s = Session(load_scenario(TOUR))
    s.until(lambda r: r["event"] == "email.stuck")
    tl = timeline_of_session(s)
    assert tl.end == 7200
    inv4 = lane(tl, "INV-1004")
    assert kinds(inv4) == [(0, 3600, "pending", "batch-draft"), (3600, 7200, "queue-blocked", "sync-token-expired")]
    assert [m.t for m in inv4.rows[0].marks if m.kind == "stuck"] == [7200]
    assert kinds(lane(tl, "user:nora")) == [(0, 7200, "token-expired", "sync-token-expired")]


def test_detail_lane_threshold_default() -> None:
    assert MAX_DETAIL_LANES == 300


def test_installed_entry_point_mounts_timeline(tmp_path: Path) -> None:
    mailsim = Path(sys.executable).with_name("mailsim")
    assert mailsim.exists()
    p = subprocess.run([str(mailsim), "timeline", str(TOUR), "--html", str(tmp_path / "t.html")],
                       capture_output=True, text=True, timeout=300)  # a safety bound, not an assertion
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "t.html").read_text().count('id="timeline-data"') == 1


def test_both_outputs_open_on_the_activity_span(tmp_path: Path) -> None:
    # the tour happens between 10:00 and 11:00 of a one-day run: 09:30–11:30 with the margin
    assert tour().view == (1800, 9000)
    html_out = tmp_path / "t.html"
    res = runner.invoke(timeline_app, [str(TOUR), "--html", str(html_out)])
    assert res.exit_code == 0, res.output
    page = html_out.read_text()
    assert embedded(page)["view"] == [1800, 9000]
    assert page.count("<noscript>") == 1 and 'src="data:image/png;base64,' in page  # the static picture
    assert embedded(page)["player"]["frames"][1][10].startswith("10:00 — the November batches")
