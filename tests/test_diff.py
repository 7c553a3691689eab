"""``mailsim diff``: the known pair gives the known first divergence and invoice table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.engine.run import simulate
from simulator.replay.diff import diff, first_divergence, load_run, outcomes_from_records, run_scenario
from simulator.replay.replay import TraceInputError
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MAILSIM = Path(sys.executable).with_name("mailsim")
DATA = ROOT / "tests" / "data"
A = DATA / "login-day-85-a.yaml"
B = DATA / "login-day-85-b.yaml"
TOUR = ROOT / "scenarios" / "tour.yaml"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def mailsim(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "220"}  # wide enough that no table cell wraps
    return subprocess.run([str(MAILSIM), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


def _login_position() -> int:
    """1-based position of B's login in B's trace: everything before it (drafts, Hillside sent) is common."""
    records = run_scenario(load_scenario(B)).records
    return next(i for i, r in enumerate(records, start=1) if r["event"] == "user.login")


def test_known_pair_first_divergence_is_the_day_85_login() -> None:
    res = diff(A, B)
    d = res.divergence
    assert d is not None
    pos = _login_position()
    assert pos > 3  # the runs share their first events
    assert d.position == pos and d.first_side == "B" and d.kind == "different"
    assert (d.t, d.at) == (86400, "2026-11-03T09:00:00Z")
    assert d.first["event"] == "user.login" and d.first["user"] == "lee" and d.first["refreshed"] is True
    assert d.a is not None and d.a["event"] == "sync.expired" and d.a["at"] == "2026-11-08T09:00:00Z"
    assert not d.first_in_other and not d.other_in_first
    assert d.summary().startswith("B has user.login lee at 2026-11-03T09:00:00Z; A does not")


def test_known_pair_invoice_table() -> None:
    res = diff(A, B)
    assert res.compared == 3 and not res.identical and res.exit_code == 1
    by_id = {d.invoice: d for d in res.invoices}
    assert sorted(by_id) == ["INV-3201", "INV-3202"]  # INV-3301 (Hillside) ends the same
    inv = by_id["INV-3201"]
    assert inv.changes == (
        ("email_status", "In Queue", "Sent"),
        ("reason", "sync-token-expired", None),
        ("recipient ann@maple.example", {"outcome": "none", "reason": None, "at": None},
         {"outcome": "inbox", "reason": None, "at": "2026-11-10T09:00:00Z"}),
        ("recipient raj@maple.example", {"outcome": "none", "reason": None, "at": None},
         {"outcome": "inbox", "reason": None, "at": "2026-11-10T09:00:00Z"}),
    )
    assert inv.a is not None and inv.a.since == "2026-11-10T09:00:00Z" and inv.a.stuck_at == "2026-11-10T10:00:00Z"
    assert inv.b is not None and inv.b.since == "2026-11-10T09:00:00Z" and inv.b.stuck_at is None


def test_swapped_pair_dates_the_divergence_the_same() -> None:
    d = diff(B, A).divergence
    assert d is not None and d.position == _login_position() and d.first_side == "A"
    assert d.first["event"] == "user.login"
    assert d.at == "2026-11-03T09:00:00Z"


def test_cli_table_and_exit_one() -> None:
    p = mailsim("diff", A, B)
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert f"First divergence: event {_login_position()}, 2026-11-03T09:00:00Z" in out
    assert "B has user.login lee at 2026-11-03T09:00:00Z" in out
    assert "Invoices whose outcome differs: 2 of 3" in out
    for needle in ("INV-3201", "INV-3202", "sync-token-expired", "inbox · 2026-11-10T09:00:00Z", "raj@maple.example"):
        assert needle in out
    assert "INV-3301" not in out


def test_cli_json() -> None:
    p = mailsim("diff", A, B, "--json")
    assert p.returncode == 1, p.stderr
    data = json.loads(p.stdout)
    assert data["identical"] is False and data["invoices_compared"] == 3
    fd = data["first_divergence"]
    assert (fd["position"], fd["at"], fd["first"], fd["b"]["event"], fd["a"]["event"]) == (
        _login_position(), "2026-11-03T09:00:00Z", "B", "user.login", "sync.expired")
    assert [i["invoice"] for i in data["invoices"]] == ["INV-3201", "INV-3202"]
    assert data["invoices"][0]["changes"][0] == {"field": "email_status", "a": "In Queue", "b": "Sent"}
    assert data["a"]["kind"] == "scenario" and data["a"]["scenario"] == "login-day-85-a"


def test_scenario_and_its_own_trace_are_identical(tmp_path: Path) -> None:
    trace = tmp_path / "a.jsonl"
    simulate(load_scenario(A), trace=trace)
    res = diff(A, trace)
    assert res.identical and res.divergence is None and res.invoices == []
    assert res.b.kind == "trace" and res.b.complete  # re-running its scenario reproduced it
    p = mailsim("diff", trace, A)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "do not diverge" in p.stdout


def test_trace_against_trace_with_the_known_pair(tmp_path: Path) -> None:
    ta, tb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    simulate(load_scenario(A), trace=ta)
    simulate(load_scenario(B), trace=tb)
    res = diff(ta, tb)
    assert res.divergence is not None and res.divergence.position == _login_position()
    assert res.divergence.first_side == "B" and res.divergence.first["event"] == "user.login"
    assert [d.invoice for d in res.invoices] == ["INV-3201", "INV-3202"]


def test_edited_trace_changed_event_key_diff(tmp_path: Path) -> None:
    trace = tmp_path / "tour.jsonl"
    simulate(load_scenario(TOUR), trace=trace)
    lines = trace.read_text().splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if '"email.delivered"' in ln and '"INV-1001"' in ln)
    lines[n] = lines[n].replace('"folder":"inbox"', '"folder":"junk"')
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(lines))
    res = diff(TOUR, edited)
    d = res.divergence
    assert d is not None and d.kind == "changed" and d.position == n
    assert [(c.key, c.a, c.b) for c in d.changes] == [("folder", "inbox", "junk")]
    assert not res.b.complete and "events" in res.b.notes[0]  # the edit means the re-run does not reproduce it
    [inv] = res.invoices
    assert inv.invoice == "INV-1001"
    at = "2026-11-02T10:00:00Z"
    assert inv.changes == (("recipient ann@maple.example", {"outcome": "inbox", "reason": None, "at": at},
                            {"outcome": "junk", "reason": None, "at": at}),)


def _ev(seq: int, t: int, event: str, **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "t": t, "at": f"T{t}", "event": event, **kw}


def test_inserted_event_is_reported_as_only_in_b() -> None:
    ra = [_ev(1, 0, "batch.draft", batch="X"), _ev(2, 60, "batch.completed", batch="X"),
          _ev(3, 60, "email.sent", invoice="I")]
    rb = [_ev(1, 0, "batch.draft", batch="X"), _ev(2, 30, "user.login", user="u", line="b.yaml:9:5"),
          _ev(3, 60, "batch.completed", batch="X"), _ev(4, 60, "email.sent", invoice="I")]
    d = first_divergence(ra, rb)
    assert d is not None and d.kind == "only-in-b" and d.position == 2 and d.first_side == "B" and d.t == 30
    assert d.only_b == (rb[1],) and d.only_a == ()
    assert d.summary() == "B has user.login u at T30; A does not"
    d2 = first_divergence(rb, ra)
    assert d2 is not None and d2.kind == "only-in-a" and d2.first_side == "A" and d2.first["event"] == "user.login"


def test_seq_and_source_lines_are_ignored() -> None:
    ra = [_ev(1, 0, "user.login", user="u", line="a.yaml:3:5"), _ev(2, 5, "run.end", expectations_ok=True)]
    rb = [_ev(7, 0, "user.login", user="u", line="b.yaml:9:5"), _ev(9, 5, "run.end", expectations_ok=False)]
    assert first_divergence(ra, rb) is None
    d = first_divergence(ra, rb[:1])
    assert d is not None and d.kind == "only-in-a" and d.b is None and d.position == 2


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_outcomes_from_events_agree_with_the_run(path: Path) -> None:
    run = run_scenario(load_scenario(path))
    derived = outcomes_from_records(run.records)
    for inv, d in derived.items():
        f = run.outcomes[inv]
        assert (d.batch_status, d.email_status, d.reason, d.since, d.stuck_at) == (
            f.batch_status, f.email_status, f.reason, f.since, f.stuck_at), inv
        for r in d.recipients:
            fr = f.recipient(r.email)
            assert fr is not None and (r.outcome, r.reason, r.at, r.attempts) == (
                fr.outcome, fr.reason, fr.at, fr.attempts or None), (inv, r.email)
    # an invoice the trace never mentions is one whose batch never completed
    assert all(o.batch_status == "Draft" for inv, o in run.outcomes.items() if inv not in derived)


def test_scenario_against_itself() -> None:
    res = diff(TOUR, TOUR)
    assert res.identical and res.compared == 7


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"schema: mailsim/1\nname: x\nbogus: 1\n", "bad.yaml", "unknown key"),
        (b'{"schema": "mailsim-trace/9"}\n', "t.jsonl", "unsupported trace schema"),
        (b"not json\n", "t.jsonl", "not a mailsim trace"),
        (b'{"schema": "mailsim-trace/1", "scenario": "x"}\n', "t.jsonl", "lacks"),
    ],
)
def test_bad_input_exit_two(tmp_path: Path, content: bytes, name: str, message: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(TraceInputError, match=message):
        load_run(f)
    p = mailsim("diff", A, f)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def test_missing_file_and_bad_event_line(tmp_path: Path) -> None:
    p = mailsim("diff", A, tmp_path / "nope.yaml")
    assert p.returncode == 2 and "no such file" in p.stderr
    trace = tmp_path / "t.jsonl"
    simulate(load_scenario(A), trace=trace)
    trace.write_bytes(trace.read_bytes() + b"{oops\n")
    p = mailsim("diff", A, trace)
    assert p.returncode == 2 and f"{trace}:" in p.stderr and "not a JSON trace event" in p.stderr
