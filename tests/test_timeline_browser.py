"""The timeline HTML in a real browser: headless Chromium renders it offline without script errors,
the lanes and reasons of the tour are in the DOM, the address's filters work, and a screenshot is kept
in ``test-artifacts/`` for people to look at."""

from __future__ import annotations

import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import find_tool
from test_timeline import BIG, ROOT, TOUR

from simulator.replay.timeline import timeline_of
from simulator.replay.timeline_html import write_html
from simulator.scenario.loader import load_scenario, load_scenario_text

CHROMIUM = find_tool("chromium")
pytestmark = pytest.mark.requires_tool("chromium")
ARTIFACTS = ROOT / "test-artifacts"
TEXT_IDS = {"errors", "window", "shown"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium(profile: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", "--window-size=1600,900",
            *extra, url]
    # the timeout is a safety bound against a wedged browser, not a performance assertion
    p = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    # a second net besides #errors: the browser's own log of uncaught exceptions
    assert "Uncaught" not in p.stderr, [ln for ln in p.stderr.splitlines() if "Uncaught" in ln]
    return p


class Dom(HTMLParser):
    """The dumped DOM: every element's attributes, which lane it sits in, and the <title> texts per lane."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self.titles: dict[str | None, list[str]] = {}
        self.stack: list[tuple[str, str | None]] = []  # (tag, lane id)
        self.texts: dict[str, str] = {}  # text of the elements with an id in TEXT_IDS
        self._in: str | None = None
        self.feed(text)

    def lane(self) -> str | None:
        return self.stack[-1][1] if self.stack else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        lane = a.get("data-lane") or self.lane()
        self.elements.append((tag, a, lane))
        if tag in VOID:
            return
        self.stack.append((tag, lane))
        if tag == "title":
            self._in = "title"
            self.titles.setdefault(lane, []).append("")
        elif a.get("id") in TEXT_IDS:
            self._in = a["id"]
            self.texts[a["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.titles[self.lane()][-1] += data
        elif self._in is not None:
            self.texts[self._in] += data

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, str]]:
        out = []
        for t, a, _ in self.elements:
            if tag is not None and t != tag:
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(a)
        return out

    def in_lane(self, lane: str, **attrs: str) -> list[dict[str, str]]:
        return [a for _t, a, ln in self.elements
                if ln == lane and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def dump(tmp_path: Path, html_file: Path, fragment: str = "") -> Dom:
    p = chromium(tmp_path / "profile", html_file.resolve().as_uri() + fragment, "--dump-dom")
    dom = Dom(p.stdout)
    assert dom.texts.get("errors") == "", f"script errors in the page: {dom.texts.get('errors')}"
    assert dom.find("body", data_rendered="1"), "the page's script did not finish"
    return dom


@pytest.fixture(scope="module")
def tour_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("timeline") / "tour.html"
    tl = timeline_of(load_scenario(TOUR))
    tl.view = (0, 3 * 3600)  # the part of the day where the tour happens
    return write_html(tl, out)


def test_tour_renders_lanes_and_reasons(tmp_path: Path, tour_html: Path) -> None:
    dom = dump(tmp_path, tour_html)
    invoices = [a["data-invoice"] for _t, a, _ in dom.elements if "data-invoice" in a]
    assert invoices == ["INV-1001", "INV-1002", "INV-1003", "INV-1005", "INV-1004", "INV-1007", "INV-1006"]

    lane = dom.find("g", data_invoice="INV-1004")[0]
    assert (lane["data-status"], lane["data-reason"], lane["data-batch"]) == (
        "In Queue", "sync-token-expired", "NOV-DOWN")
    assert dom.in_lane("INV-1004", data_kind="queue-stuck", data_reason="sync-token-expired")
    assert dom.in_lane("INV-1004", data_mark="stuck")  # the stuck threshold
    hover = "\n".join(dom.titles["INV-1004"])
    assert "sync-token-expired: The sender's mailbox-sync token expired" in hover
    assert "stuck threshold" in hover and "2026-11-02 10:00Z" in hover

    nora = dom.find("g", data_user="nora")[0]
    assert (nora["data-status"], nora["data-reason"]) == ("token expired", "sync-token-expired")
    assert dom.in_lane("user:nora", data_kind="token-expired")
    assert "expired 2026-10-28 09:00Z" in "\n".join(dom.titles["user:nora"])
    assert dom.find("g", data_user="lee")[0]["data-status"] == "sync valid"

    # delivery per recipient, with its reason on hover
    assert dom.in_lane("INV-1003", data_kind="bounced", data_reason="unknown-recipient")
    assert dom.in_lane("INV-1007", data_kind="junk", data_reason="spf-softfail-junk")
    assert dom.in_lane("INV-1002", data_kind="skipped", data_reason="recipient-email-invalid")
    assert dom.in_lane("INV-1001", data_kind="inbox")
    assert "unknown-recipient" in "\n".join(dom.titles["INV-1003"])
    # markers, filters and zoom controls are there
    assert dom.find("text", data_marker="batch")
    for control in ("f-batch", "f-status", "f-reason", "f-q", "z-in", "z-out", "r-from", "r-to"):
        assert dom.find(id=control), control
    assert {a["value"] for a in dom.find("option")} >= {"NOV-LAKE", "In Queue", "sync-token-expired"}


@pytest.mark.parametrize("fragment, expect", [
    ("#reason=sync-token-expired", ["INV-1004"]),
    ("#batch=NOV-LAKE", ["INV-1001", "INV-1002", "INV-1003", "INV-1005"]),
    ("#status=Sent&batch=NOV-LAKE", ["INV-1001", "INV-1002", "INV-1003"]),
    ("#q=gum.example", ["INV-1007"]),
])
def test_filters(tmp_path: Path, tour_html: Path, fragment: str, expect: list[str]) -> None:
    dom = dump(tmp_path, tour_html, fragment)
    assert [a["data-invoice"] for _t, a, _ in dom.elements if "data-invoice" in a] == expect
    assert len(dom.find("g", data_user="nora")) == 1  # sender lanes stay


def test_zoom_window_from_the_address(tmp_path: Path, tour_html: Path) -> None:
    dom = dump(tmp_path, tour_html, "#view=3000,9000")
    assert dom.texts["window"].startswith("2026-11-02 09:50Z → 2026-11-02 11:30Z")
    # the axis is labelled with dates and offsets inside that window only
    labels = [a for a in dom.find("text") if a.get("class") == "tlabel"]
    assert labels
    assert dom.texts["shown"] == "showing 7 of 7 invoices"
    full = dump(tmp_path, tour_html, "")
    assert full.texts["window"].startswith("2026-11-02 09:00Z → 2026-11-02 12:00Z")  # the file's own window


def test_screenshot_is_kept_as_an_artefact(tmp_path: Path, tour_html: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "timeline-tour.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path / "profile", tour_html.resolve().as_uri(), f"--screenshot={shot}")
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1600, 900)
    assert shot.stat().st_size > 30_000  # a drawn page, not a blank one


def test_ten_thousand_invoices_render_as_aggregate_lanes(tmp_path: Path) -> None:
    html_file = write_html(timeline_of(load_scenario_text(BIG, "timeline-10k.yaml")), tmp_path / "big.html")
    assert html_file.stat().st_size < 5_000_000
    dom = dump(tmp_path, html_file)
    groups = dom.find("g", **{"class": "lane group"})
    assert 1 < len(groups) < 40
    assert sum(int(g["data-count"]) for g in groups) == 10_000
    assert not [a for _t, a, _ in dom.elements if "data-invoice" in a]
    assert any(g["data-reason"] == "unknown-recipient" for g in groups)
    assert dom.in_lane("user:nora", data_kind="token-expired")
    ARTIFACTS.mkdir(exist_ok=True)
    chromium(tmp_path / "profile", html_file.resolve().as_uri(), f"--screenshot={ARTIFACTS / 'timeline-10k.png'}")
