"""When a token's ``sync.expired`` marker fires after the lifetime changes, and a run with no invoices.

``set_token_lifetime`` changes the World's lifetime, not the users' sync states: a marker scheduled for
the old expiry found the same sync state object then and used to fire anyway (a token said to expire on
day 90 of a lifetime lengthened to 120 days). Found while triaging the engine's mutation survivors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario_text

MAILSIM = Path(sys.executable).with_name("mailsim")

SCENARIO = """\
schema: mailsim/1
name: lifetime-changed
start: 2026-11-02T09:00:00Z
seed: 1
until: +10d
organization:
  configuration: {{invoice_email_from: nora@greenacre.example}}
users:
  - {{id: nora, email: nora@greenacre.example, sync: {{provider: microsoft365, synced: -85d}}}}
  - {{id: max, email: max@greenacre.example, sync: {{provider: microsoft365, synced: -86d}}}}
timeline:
  - {{at: +1h, set_token_lifetime: {{lifetime: {lifetime}}}}}
  - {{at: +2h, change_password: max}}
"""


def expiries(tmp_path: Path, lifetime: str) -> list[tuple[str, str]]:
    trace = tmp_path / f"{lifetime}.jsonl"
    simulate(load_scenario_text(SCENARIO.format(lifetime=lifetime), "lifetime.yaml"), trace=trace)
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    return [(e["at"], e["user"]) for e in events if e.get("event") == "sync.expired"]


def test_a_lengthened_lifetime_silences_the_old_markers(tmp_path: Path) -> None:
    # 120 days: both tokens now die after the run (+34 d, +35 d); the 90-day markers (+4 d, +5 d) stay silent
    assert expiries(tmp_path, "120d") == []


def test_a_lengthened_lifetime_marks_the_new_expiry_once(tmp_path: Path) -> None:
    # 92 days: max (synced 86 days ago, password changed since: same token) at +6 d, nora at +7 d, once each
    assert expiries(tmp_path, "92d") == [("2026-11-08T09:00:00Z", "max"), ("2026-11-09T09:00:00Z", "nora")]


def test_an_unchanged_lifetime_marks_the_old_expiry(tmp_path: Path) -> None:
    assert expiries(tmp_path, "90d") == [("2026-11-06T09:00:00Z", "max"), ("2026-11-07T09:00:00Z", "nora")]


def test_a_run_without_invoices_prints_its_table_and_accounting(tmp_path: Path) -> None:
    path = tmp_path / "no-invoices.yaml"
    path.write_text(SCENARIO.format(lifetime="90d"))
    out = subprocess.run([str(MAILSIM), "run", str(path)], capture_output=True, text=True, timeout=60,
                         check=False, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "internal error" not in out.stderr and out.stderr == ""
    assert "accounted: invoices=0, lost=0" in out.stdout
