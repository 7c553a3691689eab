"""``mailsim chaos`` end to end: exit codes 0/1/2/130, the --json shape, --check on a written reproduction."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from simulator.chaos import report as chaos_report
from simulator.cli.chaos_cmd import app
from simulator.transport.memory import MemoryTransport

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "scenarios" / "tour.yaml"
TEMPFAIL = ROOT / "scenarios" / "after-sending-seeded-tempfail.yaml"


def chaos(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The command as its own process (independent of whether main.py has mounted it yet)."""
    return subprocess.run([sys.executable, "-m", "simulator.cli.chaos_cmd", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_exit_0_and_json_shape(tmp_path: Path) -> None:
    p = chaos(TEMPFAIL, "--runs", "8", "--seed", "4", "--workers", "2", "--recheck-every", "4", "--json",
              "--out", tmp_path, "--kinds", "outage,tempfail,permfail,disconnect", "--kinds", "dns_timeout,resync")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["ok"] is True and j["runs"] == 8 and j["runs_failed"] == 0 and j["rechecked"] == 2
    assert j["scenario"] == "after-sending-seeded-tempfail" and j["chaos_seed"] == 4
    assert j["emails_checked"] == 64 and j["recipients_checked"] == 64
    assert j["failures"] == {} and j["violations"] == [] and j["reproductions"] == []
    assert sum(j["injected"].values()) >= 8 and set(j["injected"]) <= {"outage", "tempfail", "permfail",
                                                                      "disconnect", "dns_timeout", "resync"}
    assert not list(tmp_path.iterdir())


def test_human_summary() -> None:
    p = chaos(TOUR, "--runs", "5", "--workers", "1", "--kinds", "outage,permfail,change_password")
    assert p.returncode == 0, p.stderr
    assert "chaos tour" in p.stdout and "5 runs" in p.stdout and "every one held" in p.stdout
    assert "emails checked: 35" in p.stdout


def test_exit_2_on_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEMPFAIL.read_text().replace("kind: tempfail", "kind: tempfial"))
    p = chaos(bad, "--runs", "3")
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {bad}:") and "did you mean" in p.stderr and "Traceback" not in p.stderr
    for args in (("--kinds", "outage,nope"), ("--max-faults", "0"), ("--workers", "0"), ("--runs", "-1"),
                 ("--dask", "nowhere")):
        p = chaos(TEMPFAIL, *args)
        assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr, args
    p = chaos(tmp_path / "missing.yaml")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_exit_1_writes_a_reproduction_that_check_confirms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = MemoryTransport.deliver_dsn

    def deliver_dsn(self: MemoryTransport, dsn: Any) -> None:  # the planted bug: permfail loses the DSN
        if not any(f.kind == "permfail" for f in self.server.faults):
            real(self, dsn)

    monkeypatch.setattr(MemoryTransport, "deliver_dsn", deliver_dsn)
    r = CliRunner().invoke(app, [str(TOUR), "--runs", "12", "--seed", "1", "--workers", "1", "--out", str(tmp_path),
                                 "--json"])
    assert r.exit_code == 1, r.output
    j = json.loads(r.stdout)
    assert j["failures"].get("bounce-dsn") and not j["ok"]
    (rep,) = j["reproductions"]
    assert rep["reproduced"] and rep["minimal"] and len(rep["items"]) <= 2
    path = Path(rep["path"])
    assert path.exists() and path.parent == tmp_path
    r = CliRunner().invoke(app, [str(path), "--check", "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["violations"][0]["invariant"] == "bounce-dsn"
    monkeypatch.setattr(MemoryTransport, "deliver_dsn", real)
    r = CliRunner().invoke(app, [str(path), "--check"])
    assert r.exit_code == 0 and "every invariant held" in r.stdout


def test_interrupt_exits_130_with_what_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    real = chaos_report.run_all

    def run_all(tasks: Any, cfg: Any) -> Iterator[Any]:
        for k, outcome in enumerate(real(tasks, cfg)):
            if k == 3:
                raise KeyboardInterrupt
            yield outcome

    monkeypatch.setattr(chaos_report, "run_all", run_all)
    r = CliRunner().invoke(app, [str(TEMPFAIL), "--runs", "10", "--workers", "1", "--json"])
    assert r.exit_code == 130
    j = json.loads(r.stdout)
    assert j["interrupted"] is True and j["runs"] == 3 and j["runs_requested"] == 10
