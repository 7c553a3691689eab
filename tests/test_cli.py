"""End-to-end: the installed ``mailsim`` entry point, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAILSIM = Path(sys.executable).with_name("mailsim")
TOUR = ROOT / "scenarios" / "tour.yaml"


def mailsim(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert MAILSIM.exists(), f"console script missing at {MAILSIM}"
    return subprocess.run([str(MAILSIM), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_tour_table_and_exit_zero() -> None:
    p = mailsim("run", TOUR)
    assert p.returncode == 0, p.stderr
    for needle in ("INV-1004", "sync-token-expired", "In Queue", "inbox", "expectations"):
        assert needle in p.stdout
    assert "Traceback" not in p.stderr


def test_run_json_contract(tmp_path: Path) -> None:
    p = mailsim("run", TOUR, "--json", "--trace", tmp_path / "t.jsonl", "--junit", tmp_path / "j.xml")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert {"scenario", "seed", "end", "invoices", "mailboxes", "expectations"} <= set(data)
    inv = {i["id"]: i for i in data["invoices"]}
    assert inv["INV-1004"]["email_status"] == "In Queue" and inv["INV-1004"]["reason"] == "sync-token-expired"
    r = inv["INV-1001"]["recipients"][0]
    assert set(r) >= {"email", "outcome", "reason", "smtp_code", "enhanced_code", "folder", "at", "attempts"}
    assert (r["outcome"], r["smtp_code"], r["enhanced_code"], r["folder"]) == ("inbox", 250, "2.0.0", "inbox")
    assert {"completed_at", "queued_at", "sent_at", "notes"} <= set(inv["INV-1001"])
    header = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert header["schema"] == "mailsim-trace/1" and len(header["scenario_sha256"]) == 64
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert int(suite.get("tests") or 0) == len(data["expectations"])


def test_failed_expectation_exits_one(tmp_path: Path) -> None:
    text = TOUR.read_text().replace("outcome: inbox, within: +2h", "outcome: junk, within: +2h")
    f = tmp_path / "tour-wrong.yaml"
    f.write_text(text)
    p = mailsim("run", f, "--junit", tmp_path / "j.xml")
    assert p.returncode == 1
    assert "✗" in p.stdout
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda t: t.replace("schema: mailsim/1", "schema: mailsim/9"), "mailsim/1"),
        (lambda t: t.replace("complete_batch: NOV-LAKE", "complete_batch: NOV-LAKX"), "NOV-LAKE"),
        (lambda t: t.replace("organization:", "organisation:"), "organization"),
        (lambda t: t + "\n  - {at: +1h, complete_batch: [\n", "tour.yaml:"),
    ],
)
def test_bad_input_exits_two_with_location(tmp_path: Path, mutate: object, fragment: str) -> None:
    f = tmp_path / "tour.yaml"
    f.write_text(mutate(TOUR.read_text()))  # type: ignore[operator]
    for cmd in (("run", f), ("validate", f), ("explain", f)):
        p = mailsim(*cmd)
        assert p.returncode == 2, (cmd, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
        assert f"{f}:" in p.stderr and fragment in p.stderr


def test_missing_file_exits_two() -> None:
    p = mailsim("run", "no/such/file.yaml")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_explain_names_guide_step_and_dates() -> None:
    p = mailsim("explain", TOUR, "--invoice", "INV-1004", "--json")
    assert p.returncode == 0, p.stderr
    [e] = json.loads(p.stdout)
    assert e["reason"] == "sync-token-expired" and e["guide_steps"] == [3]
    assert any("expired 2026-10-28" in c for c in e["chain"])
    p = mailsim("explain", TOUR, "--invoice", "INV-1004", "--at", "+30m")
    assert p.returncode == 0 and "Pending" in p.stdout


def test_explain_unknown_invoice_exits_two() -> None:
    p = mailsim("explain", TOUR, "--invoice", "INV-9999")
    assert p.returncode == 2 and "INV-9999" in p.stderr


def test_validate_reports_counts() -> None:
    from simulator.scenario.loader import load_scenario

    n = sum(b.count for b in load_scenario(TOUR).batches)
    p = mailsim("validate", TOUR)
    assert p.returncode == 0 and f"{n} invoices" in p.stdout
