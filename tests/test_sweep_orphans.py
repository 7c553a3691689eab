"""A sweep's pool workers end with it (issue 13 item 9): SIGTERM or SIGKILL leaves no orphan.

Each case starts a small parent process running ``imap_unordered`` over two workers that sleep,
signals the parent and waits (bounded) for both workers to be gone. Linux only: the SIGKILL
case rests on the kernel's parent-death signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARENT = """
import multiprocessing, sys, time
from simulator.sweep.executor import imap_unordered

it = imap_unordered(time.sleep, [60.0] * 4, workers=2)
pids = sorted(p.pid for p in multiprocessing.active_children())
print(" ".join(map(str, pids)), flush=True)
for _ in it:
    pass
"""
DEADLINE = 60.0  # generous: only bounds a hung test, never measured


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's reaping is left


def _workers_of(sig: signal.Signals) -> tuple[list[int], subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    pids = [int(x) for x in line.split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    proc.send_signal(sig)
    return pids, proc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_the_sweep(sig: signal.Signals) -> None:
    pids, proc = _workers_of(sig)
    try:
        proc.wait(DEADLINE)
        end = time.monotonic() + DEADLINE
        while any(_alive(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert [p for p in pids if _alive(p)] == []
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE)


def test_a_worker_whose_parent_died_before_it_started_ends_at_once() -> None:
    """A forked worker that starts after its parent was killed (re-parented already) must not live on."""
    code = ("import os; from simulator.sweep.executor import _worker_init; "
            "_worker_init(os.getppid() + 1); print('still running')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=DEADLINE)
    assert res.returncode == 1 and "still running" not in res.stdout
    ok = subprocess.run([sys.executable, "-c", code.replace("os.getppid() + 1", "os.getppid()")],
                        capture_output=True, text=True, env=env, timeout=DEADLINE)
    assert ok.returncode == 0 and "still running" in ok.stdout
