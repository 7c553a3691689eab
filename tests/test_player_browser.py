"""The timeline player in headless Chromium: keys pressed, ``#playhead-state`` read, held to ``explain --at``.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: file
descriptors 3 and 4, no port, no extra package): keys go in as real key events, the page's
state comes back through ``Runtime.evaluate``, and every console message, uncaught exception
and network request is collected — the page must make none but its own file.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import find_tool
from test_timeline import ROOT, TOUR

from simulator.explain.explain import explain_scenario
from simulator.replay.timeline import timeline_of
from simulator.replay.timeline_html import write_html
from simulator.scenario.loader import load_scenario

CHROMIUM = find_tool("chromium")
pytestmark = pytest.mark.requires_tool("chromium")
DOCS_SHOT = ROOT / "docs" / "img" / "timeline-player.png"
KEYS = {"ArrowRight": 39, "ArrowLeft": 37, " ": 32, "Home": 36, "End": 35}
STATE_JS = """(() => {
  const box = document.getElementById("playhead-state");
  const rows = [...box.querySelectorAll("tr[data-inv]")].map(r =>
      [r.dataset.inv, r.dataset.status, r.dataset.reason, r.dataset.stuck === "1"]);
  const q = box.querySelector(".ps-queue");
  const senders = Object.fromEntries([...box.querySelectorAll("tr[data-user]")].map(r =>
      [r.dataset.user, [r.dataset.sync, r.dataset.expires === "" ? null : Number(r.dataset.expires)]]));
  return JSON.stringify({t: Number(box.dataset.t), frame: Number(box.dataset.frame), invoices: rows,
      queue: Number(q.dataset.queue), stuck: Number(q.dataset.stuck),
      oldest: q.dataset.oldest === "" ? null : Number(q.dataset.oldest), senders,
      replies: [...box.querySelectorAll("li[data-code]")].map(li => Number(li.dataset.code)),
      caption: document.getElementById("caption").textContent, hash: location.hash,
      errors: document.getElementById("errors").textContent, player: document.body.dataset.player || ""});
})()"""


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path, width: int = 1600, height: int = 1000) -> None:
        assert CHROMIUM is not None
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # the child moves the pipe ends to 3 and 4 (dup2 makes them inheritable); Python's own
            # descriptors are not inheritable, so nothing else leaks with close_fds off
            close_fds=False,
            preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True, session=False)[
            "sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:  # a safety bound against a wedged browser, not a timing check
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return dict(json.loads(msg))

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 120
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                self.events.remove(ev)
                return ev
        deadline = time.monotonic() + 120
        while True:
            ev = self._read(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def eval(self, expr: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        assert "exceptionDetails" not in res, res
        return res["result"].get("value")

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.eval(STATE_JS)))

    def key(self, key: str, shift: bool = False) -> None:
        code = {" ": "Space"}.get(key, key)
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, modifiers=8 if shift else 0,
                      windowsVirtualKeyCode=KEYS[key], nativeVirtualKeyCode=KEYS[key])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and requests for anything but the page itself."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {p.get('args')}")
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')}")
            elif m == "Network.requestWillBeSent" and not p["request"]["url"].startswith("file://"):
                out.append(f"request: {p['request']['url']}")
        return out

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            self.call("Browser.close", session=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self._w)
        os.close(self._r)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def tour_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_html(timeline_of(load_scenario(TOUR)), tmp_path_factory.mktemp("player") / "tour.html")


def explained(t: int) -> dict[str, tuple[str, str]]:
    return {x.invoice: (x.status, x.reason or "") for x in explain_scenario(load_scenario(TOUR), until=t)}


def shown(state: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {inv: (status, reason) for inv, status, reason, _stuck in state["invoices"]}


def test_keys_step_forward_and_back_and_the_address_follows(browser: Browser, tour_page: Path) -> None:
    browser.open(tour_page.as_uri())
    st = browser.state()
    assert st["player"] == "1" and st["errors"] == ""
    # it opens on the activity span (09:30–11:30), the playhead at its left edge: the state of the start
    assert (st["t"], st["frame"], st["queue"], st["caption"]) == (1800, 0, 0, "")
    assert shown(st) == explained(1800) == explained(0)
    assert st["senders"]["nora"] == ["token-expired", -432000]  # expired five days before the start
    assert browser.eval('document.getElementById("window").textContent').startswith(
        "2026-11-02 09:30Z → 2026-11-02 11:30Z")
    browser.key("ArrowRight")  # the batches are completed: In Queue, and the captions of those events
    st = browser.state()
    assert (st["t"], st["frame"], st["queue"], st["hash"]) == (3600, 1, 5, "#t=3600")
    assert st["caption"] == ("10:00 — the November batches are completed: every Pending email goes In Queue "
                             "(guide Step 1)\nDowntown sends as the north region's address: Nora's, whose token "
                             "expired five days ago (Steps 2, 3)")
    browser.key("ArrowRight")  # the first poll sends four, one waits behind Nora's token
    st = browser.state()
    assert (st["frame"], st["queue"], st["stuck"], st["replies"]) == (2, 1, 0, [250, 550, 250])
    assert shown(st) == explained(3600)  # the instant complete: what explain --at +1h says
    browser.key("ArrowRight")
    st = browser.state()
    assert (st["t"], st["queue"], st["stuck"], st["oldest"]) == (7200, 1, 1, 3600)
    assert [r for r in st["invoices"] if r[0] == "INV-1004"] == [["INV-1004", "In Queue", "sync-token-expired", True]]
    assert shown(st) == explained(7200)
    browser.key("ArrowLeft")
    browser.key("ArrowLeft")
    st = browser.state()
    assert (st["t"], st["frame"], st["queue"]) == (3600, 1, 5)  # back: the deltas undone exactly
    assert shown(st) == {inv: ("In Queue", "") if inv in ("INV-1001", "INV-1002", "INV-1003", "INV-1004", "INV-1007")
                         else explained(0)[inv] if inv == "INV-1006" else ("N/A", "no-invoice-email-contact")
                         for inv in explained(0)}
    browser.key("Home")
    assert browser.state()["frame"] == 0 and browser.state()["caption"] == ""
    browser.key("ArrowRight", shift=True)  # the next notable event: the completions
    assert browser.state()["frame"] == 1
    browser.key("End")
    st = browser.state()
    assert (st["t"], st["frame"], st["hash"]) == (86400, 3, "#t=86400")
    assert st["caption"].startswith("10:00 — the November batches")  # a caption stays until the next one
    assert browser.problems() == []
    assert browser.requests() == [tour_page.as_uri()]


@pytest.mark.parametrize("t", [0, 1800, 3600, 5000, 7200, 43200])
def test_opening_at_a_moment_agrees_with_explain_at(browser: Browser, tour_page: Path, t: int) -> None:
    browser.open(tour_page.as_uri() + f"#t={t}")
    st = browser.state()
    assert st["t"] == t
    assert shown(st) == explained(t)
    in_queue = [x for x in explain_scenario(load_scenario(TOUR), until=t) if x.status == "In Queue"]
    assert st["queue"] == len(in_queue)
    assert st["stuck"] == sum(1 for x in in_queue if any("stuck since" in c for c in x.chain))
    assert browser.problems() == []


def test_space_plays_until_the_end(browser: Browser, tour_page: Path) -> None:
    browser.open(tour_page.as_uri() + "#t=7000")
    browser.eval('document.getElementById("speed").value = "86400"; 0')  # a virtual day per second
    browser.key(" ")
    deadline = time.monotonic() + 60  # a bound for a stuck page, not a speed check
    while browser.state()["t"] < 86400 and time.monotonic() < deadline:
        time.sleep(0.2)
    st = browser.state()
    assert (st["t"], st["frame"]) == (86400, 3)
    assert browser.eval('document.getElementById("p-play").textContent') == "▶ play"  # stopped at the end
    assert browser.problems() == []


def test_screenshot_of_the_player_for_the_docs(browser: Browser, tour_page: Path, tmp_path: Path) -> None:
    """The docs' picture, taken the way the docs show it; written into docs/ only when asked.

    ``MAILSIM_UPDATE_DOCS=1`` refreshes ``docs/img/timeline-player.png``; otherwise the shot goes to a
    temporary folder, so running the suite leaves the checkout as it was.
    """
    shot = DOCS_SHOT if os.environ.get("MAILSIM_UPDATE_DOCS") == "1" else tmp_path / DOCS_SHOT.name
    browser.open(tour_page.as_uri() + "#t=7200")
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.screenshot(shot)
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1600, 1000)
    assert browser.problems() == []


LABELS_JS = """(() => {
  const axis = document.getElementById("axis"), w = Number(axis.getAttribute("width"));
  const boxes = [...axis.querySelectorAll("text.mlabel")].map(t => { const b = t.getBBox();
    return [b.x, b.y, b.x + b.width, b.y + b.height, t.textContent]; });
  return JSON.stringify({w, boxes});
})()"""


def test_marker_labels_neither_collide_nor_get_cut_off(browser: Browser, tmp_path: Path) -> None:
    from simulator.scenario.loader import load_scenario_text

    busy = "".join(f"  - {{at: +{60 + 3 * i}m, login: {u}}}\n"
                   for i, u in enumerate(["nora", "lee", "hal", "bill", "nora", "lee", "hal", "nora", "lee"]))
    text = TOUR.read_text(encoding="utf-8").replace("timeline:\n", "timeline:\n" + busy, 1)
    page = write_html(timeline_of(load_scenario_text(text, "busy.yaml")), tmp_path / "busy.html",
                      static_picture=False)
    browser.open(page.as_uri())
    got = json.loads(browser.eval(LABELS_JS))
    boxes = got["boxes"]
    assert len(boxes) >= 9
    for i, a in enumerate(boxes):
        assert a[0] >= 0 and a[2] <= got["w"], a  # inside the picture
        for b in boxes[i + 1:]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)
    assert browser.problems() == []


def test_the_legend_gives_the_three_reds_a_second_cue(browser: Browser, tour_page: Path) -> None:
    browser.open(tour_page.as_uri())
    legend = json.loads(browser.eval("""JSON.stringify([...document.querySelectorAll('#legend [data-kind]')].map(
        s => [s.dataset.kind, s.querySelector('.sw').className, s.querySelector('.sw').style.backgroundColor,
              s.textContent]))"""))
    reds = ("queue-stuck", "bounced", "token-expired")
    cue = {k: (cls, colour, label) for k, cls, colour, label in legend if k in reds}
    assert cue == {
        "queue-stuck": ("sw pat-stripes", "rgb(198, 40, 40)", "⚠ In Queue, stuck (past the threshold)"),
        "bounced": ("sw pat-cross", "rgb(74, 25, 66)", "✕ bounced (DSN to sender)"),
        "token-expired": ("sw pat-dots", "rgb(214, 51, 138)", "⊘ token expired"),
    }
    # the lanes use the same patterns
    fills = json.loads(browser.eval("""JSON.stringify([...new Set([...document.querySelectorAll(
        '#lanes rect.span[data-kind="queue-stuck"], #lanes rect.span[data-kind="bounced"],'
        + ' #lanes rect.span[data-kind="token-expired"]')].map(
        r => r.dataset.kind + '=' + r.getAttribute('fill')))])"""))
    assert sorted(fills) == ["bounced=url(#pat-bounced)", "queue-stuck=url(#pat-queue-stuck)",
                             "token-expired=url(#pat-token-expired)"]


def test_a_large_run_plays_by_groups_that_match_the_frames(browser: Browser, tmp_path: Path) -> None:
    from test_timeline import BIG

    from simulator.replay.playhead import state_at
    from simulator.scenario.loader import load_scenario_text

    tl = timeline_of(load_scenario_text(BIG, "timeline-10k.yaml"), detail_limit=300)
    page = write_html(tl, tmp_path / "big.html", static_picture=False)
    assert tl.playback is not None
    t = 30 * 3600 - 60  # a minute before nora's re-sync: batch C waits, stuck, behind her expired token
    browser.open(page.as_uri() + f"#t={t}")
    groups = json.loads(browser.eval("""JSON.stringify([...document.querySelectorAll(
        '#playhead-state tr[data-group]')].map(r => [r.dataset.status, r.dataset.reason, r.dataset.stuck,
        Number(r.dataset.count)]))"""))
    want = state_at(tl.playback, t)
    assert sorted(groups) == sorted([key[1], key[2], "1" if key[3] else "0", n] for key, n in want.counts.items())
    assert sum(n for *_k, n in groups) == 10_000
    assert ["In Queue", "sync-token-expired", "1", 2000] in groups
    st = browser.state()
    assert (st["queue"], st["stuck"]) == (2000, 2000) and st["senders"]["nora"][0] == "token-expired"
    browser.key("ArrowRight")  # the re-sync, then the poll that drains the queue
    browser.key("ArrowRight")
    assert browser.state()["queue"] == 0
    assert browser.problems() == []
