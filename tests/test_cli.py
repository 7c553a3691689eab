"""End-to-end: the installed ``mailsim`` entry point, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAILSIM = Path(sys.executable).with_name("mailsim")
TOUR = ROOT / "scenarios" / "tour.yaml"


def mailsim(*args: str | Path, cwd: Path = ROOT, env_columns: int | None = None) -> subprocess.CompletedProcess[str]:
    assert MAILSIM.exists(), f"console script missing at {MAILSIM}"
    env = None if env_columns is None else {**os.environ, "COLUMNS": str(env_columns)}
    return subprocess.run([str(MAILSIM), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


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


# -- explain: the moment, the invoice and the seed are checked like any input (issue 11 item 13) --------


@pytest.mark.parametrize(("at", "said"), [
    ("+30d", "error: --at +30d: 2026-12-02T09:00:00Z is after the run's end (until); choose a moment from"
             " 2026-11-02T09:00:00Z to 2026-11-03T09:00:00Z"),
    ("-1d", "error: --at -1d: 2026-11-01T09:00:00Z is before the run's start; choose a moment from"
            " 2026-11-02T09:00:00Z to 2026-11-03T09:00:00Z"),
])
def test_explain_at_outside_the_run_is_bad_input(at: str, said: str) -> None:
    p = mailsim("explain", TOUR, "--at", at)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", said + "\n")


def test_explain_at_the_runs_last_moment_is_fine() -> None:
    p = mailsim("explain", TOUR, "--at", "+1d", "--invoice", "INV-1004", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["reason"] == "sync-token-expired"


@pytest.mark.parametrize(("given", "hint"), [("inv-1004", "INV-1004"), (" INV-1004", "INV-1004"),
                                              ("INV-1O04", "INV-1004")])
def test_explain_unknown_invoice_gets_a_did_you_mean(given: str, hint: str) -> None:
    p = mailsim("explain", TOUR, "--invoice", given)
    assert p.returncode == 2
    assert p.stderr == f"error: --invoice: no invoice {given!r} in {TOUR}; did you mean {hint!r}?\n"


def test_explain_seed_explains_the_run_of_that_seed() -> None:
    seeded = ROOT / "scenarios" / "after-sending-seeded-tempfail.yaml"
    for seed, attempts in (("1", 1), ("2", 2)):
        run = json.loads(mailsim("run", seeded, "--seed", seed, "--json").stdout)
        (rcpt,) = next(i for i in run["invoices"] if i["id"] == "NOV-4")["recipients"]
        assert rcpt["attempts"] == attempts
        p = mailsim("explain", seeded, "--seed", seed, "--invoice", "NOV-4", "--json")
        assert p.returncode == 0, p.stderr
        assert f"c4@maple.example: inbox at {rcpt['at'][:10]}" in json.loads(p.stdout)[0]["chain"][-1]
        assert json.loads(p.stdout)[0]["chain"][-1].endswith(f"after {attempts} attempt(s)")


def test_step_takes_a_seed() -> None:
    seeded = ROOT / "scenarios" / "after-sending-seeded-tempfail.yaml"
    p = subprocess.run([str(MAILSIM), "step", str(seeded), "--seed", "2"], input="until +2h\nwhy NOV-4\nquit\n",
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "after 2 attempt(s)" in p.stdout


def test_failed_expectations_read_as_a_person_expects(tmp_path: Path) -> None:
    """Issue 11 item 14: no Python ``None`` in what a failed expectation says."""
    f = tmp_path / "tour-wrong.yaml"
    f.write_text(TOUR.read_text() + "  - {invoice: INV-1004, recipient: dan@birch.example, outcome: inbox}\n"
                 "  - {invoice: INV-1001, email_status: In Queue}\n")
    p = mailsim("run", f, env_columns=200)
    assert p.returncode == 1
    assert "None" not in p.stdout
    assert "at 2026-11-03T09:00:00Z: dan@birch.example outcome=none (not sent yet), no reason code" in p.stdout
    assert ("at 2026-11-03T09:00:00Z: INV-1001 batch=Sent email_status=Sent, no reason code (sent cleanly)"
            in p.stdout)


# -- the run table at 80 columns (issue 11 item 15) ------------------------------------------------------


def _tour_with(tmp_path: Path, address: str) -> Path:
    f = tmp_path / "tour.yaml"
    f.write_text(TOUR.read_text(encoding="utf-8").replace('"ben@oak.example "', f'"{address}"'), encoding="utf-8")
    return f


@pytest.mark.parametrize(("address", "shown"), [("ben@oak.example ", "ben@oak.example␠"),
                                                ("ben@oak.example\\u00a0", "ben@oak.example\\xa0")])
@pytest.mark.parametrize("columns", [80, 160])
def test_run_table_keeps_words_whole_and_invisible_characters_visible(tmp_path: Path, address: str, shown: str,
                                                                      columns: int) -> None:
    p = mailsim("run", _tour_with(tmp_path, address), env_columns=columns)
    assert p.returncode == 0, p.stdout + p.stderr
    table = p.stdout.split("\nexpectations")[0]
    assert max(len(line) for line in table.splitlines()) <= columns
    for word in ("no-deliverable-recipient", "no-invoice-email-contact", "sync-token-expired", "lakeside@greenacre"
                 ".example", "(recipient-email-invalid)", "(spf-softfail-junk)", "(unknown-recipient)", "INV-1004",
                 "NOV-LAKE"):
        assert word in table, f"{word!r} split or missing at {columns} columns:\n{table}"
    assert f"{shown} → skipped (recipient-email-invalid)" in table
    assert f"INV-1002 recipient={shown} outcome=skipped" in p.stdout


def test_explain_wraps_at_word_boundaries_on_a_terminal_and_keeps_lines_in_a_pipe() -> None:
    scenario = ROOT / "scenarios" / "step3-expired-sender-replaced.yaml"
    p = mailsim("explain", scenario, env_columns=80)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = {w for line in lines for w in line.split()}
    assert {"lakeside@greenacre.example", "ed@greenacre.example", "dora@greenacre.example"} <= words
    assert "    lakeside@greenacre.example (user lee, google): the token expired 2026-10-23" in p.stdout
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([str(MAILSIM), "explain", str(scenario)], capture_output=True, text=True, cwd=ROOT,
                           timeout=300, env=env)
    assert any(line.startswith("  • blocked from 2026-11-02 10:00Z by sync-token-expired: sender lakeside@")
               and line.endswith("the token expired 2026-11-01 09:00Z") for line in piped.stdout.splitlines())
