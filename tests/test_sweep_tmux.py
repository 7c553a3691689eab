"""``mailsim sweep`` in a real 100×30 terminal: the progress bar while it runs, Ctrl-C, then the summary."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from helpers import find_tool, wait_until

ROOT = Path(__file__).resolve().parents[1]
TMUX = find_tool("tmux")
MAILSIM = Path(sys.executable).with_name("mailsim")

pytestmark = pytest.mark.requires_tool("tmux")



def sweep_process(tmux: Callable[..., subprocess.CompletedProcess[str]]) -> psutil.Process:
    """The ``mailsim sweep`` the pane's shell is running (its children are the pool's workers)."""
    shell = psutil.Process(int(tmux("display-message", "-p", "-t", "sw", "#{pane_pid}").stdout))
    (sweep,) = [p for p in shell.children() if "sweep" in " ".join(p.cmdline())]
    return sweep


def test_sweep_shows_progress_keeps_rows_on_ctrl_c_and_resumes(tmp_path: Path) -> None:
    assert TMUX is not None
    sock = f"mailsim-sweep-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    env.pop("COLUMNS", None)
    out = tmp_path / "rows.csv"

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TMUX, "-L", sock, "-f", "/dev/null", *args], capture_output=True, text=True,
                              env=env, cwd=ROOT, check=False)

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "sw").stdout

    def rows() -> int:
        return out.read_text().count("\n") if out.exists() else 0

    cmd = (f"{MAILSIM} sweep scenarios/tour.yaml --vary 'users[nora].sync.last_login=-60d,-100d' "
           f"--seeds 200 --workers 2 --out {out}")
    started = tmux("new-session", "-d", "-s", "sw", "-x", "100", "-y", "30")
    assert started.returncode == 0, started.stderr
    try:
        tmux("send-keys", "-t", "sw", cmd, "Enter")
        assert wait_until(lambda: "sweeping" in screen() and "/400" in screen(), polls=1200), screen()
        assert wait_until(lambda: rows() > 20), screen()
        # event-driven, not a race: freeze the workers so no row can be added, check the sweep is
        # unfinished, Ctrl-C (pending in the frozen workers too), then let them go
        workers = sweep_process(tmux).children(recursive=True)
        assert workers, "no worker processes"
        for w in workers:
            w.suspend()
        try:
            assert rows() < 400, "the sweep finished before the interrupt: make it larger"
            tmux("send-keys", "-t", "sw", "C-c", "")
        finally:
            for w in workers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    w.resume()
        assert wait_until(lambda: "interrupted:" in screen(), polls=1200), screen()
        shown = screen()
        assert "--resume" in shown and "Traceback" not in shown
        assert all(len(line) <= 100 for line in shown.splitlines())
        tmux("send-keys", "-t", "sw", "clear", "Enter")
        tmux("send-keys", "-t", "sw", cmd + " --resume", "Enter")
        assert wait_until(lambda: "rows: " in screen(), polls=6000), screen()
        shown = screen()
        assert "already in" in shown and "-100d" in shown and "400 rows" in shown
        assert out.read_text().count("\n") == 401
    finally:
        tmux("kill-server")
