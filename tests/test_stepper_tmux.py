"""``mailsim step`` in a real 80×24 terminal: tmux send-keys / capture-pane."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import find_tool, wait_until

ROOT = Path(__file__).resolve().parents[1]
TMUX = find_tool("tmux")
MAILSIM = Path(sys.executable).with_name("mailsim")

pytestmark = pytest.mark.requires_tool("tmux")



def test_step_in_an_80x24_terminal() -> None:
    assert TMUX is not None
    sock = f"mailsim-step-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TMUX", None)

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TMUX, "-L", sock, "-f", "/dev/null", *args], capture_output=True, text=True,
                              env=env, cwd=ROOT, check=False)

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "step").stdout

    started = tmux("new-session", "-d", "-s", "step", "-x", "80", "-y", "24",
                   f"{MAILSIM} step scenarios/tour.yaml")
    assert started.returncode == 0, started.stderr
    try:
        assert wait_until(lambda: "step>" in screen()), screen()
        first = screen()
        assert "tour 2026-11-02 09:00:00Z (+0s)" in first and "event #0" in first
        tmux("send-keys", "-t", "step", "next 5", "Enter")
        # the state is drawn first and the prompt right after: wait for both
        assert wait_until(lambda: "event #5 " in screen()
                     and any(ln.startswith("step>") for ln in screen().splitlines())), screen()
        shown = screen()
        lines = shown.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert "tour 2026-11-02 10:00:00Z (+1h) · event #5 of" in shown
        assert "next: #6 10:00:00 invoice.status INV-1001" in shown
        assert "In Queue awaiting the next poll" in shown
        assert "nora" in shown and "EXPIRED 5.0d ago" in shown
        assert any(line.startswith("step>") for line in lines)

        tmux("send-keys", "-t", "step", "until email.stuck", "Enter")
        assert wait_until(lambda: "(+2h)" in screen()), screen()
        shown = screen()
        assert "In Queue sync-token-expired · STUCK" in shown and "downtown: 1 · oldest 1h STUCK" in shown
        assert len(shown.splitlines()) <= 24

        tmux("send-keys", "-t", "step", "back 3", "Enter")
        assert wait_until(lambda: "(+1h)" in screen() and "back 3 events" in screen()), screen()

        tmux("send-keys", "-t", "step", "frobnicate", "Enter")
        assert wait_until(lambda: "unknown command 'frobnicate'" in screen()), screen()
        assert "Traceback" not in screen()

        tmux("send-keys", "-t", "step", "quit", "Enter")
        assert wait_until(lambda: tmux("has-session", "-t", "step").returncode != 0), screen()
    finally:
        tmux("kill-server")
