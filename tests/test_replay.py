"""``mailsim replay``: every scenario replays byte for byte; edits are found at the right line; bad input is exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from simulator.engine.run import simulate
from simulator.replay.replay import TraceInputError, key_diff, read_header, replay
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MAILSIM = Path(sys.executable).with_name("mailsim")
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "tests" / "data").glob("login-day-85-*.yaml"))
TOUR = ROOT / "scenarios" / "tour.yaml"


def mailsim(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MAILSIM), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def write_trace(scenario: Path, out: Path) -> list[bytes]:
    simulate(load_scenario(scenario), trace=out)
    return out.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def tour_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "tour.jsonl"
    write_trace(TOUR, out)
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_replays_identically(path: Path, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    lines = write_trace(path, trace)
    res = replay(trace)
    assert res.identical and res.divergence is None, res.to_json()
    assert res.events == res.replayed_events == len(lines) - 1
    assert res.exit_code == 0 and res.notes == []


def test_header_records_the_scenario_path(tour_trace: Path) -> None:
    header = read_header(tour_trace)
    assert header["scenario_path"] == str(TOUR)
    assert {"schema", "scenario", "scenario_sha256", "seed", "start", "version"} <= set(header)


def _edit(src: Path, dst: Path, line_no: int, fn: object) -> tuple[dict[str, object], dict[str, object]]:
    lines = src.read_bytes().splitlines(keepends=True)
    before = orjson.loads(lines[line_no - 1])
    after = fn(dict(before))  # type: ignore[operator]
    lines[line_no - 1] = orjson.dumps(after) + b"\n"
    dst.write_bytes(b"".join(lines))
    return before, after


def _line_of(trace: Path, pred: object) -> int:
    for n, line in enumerate(trace.read_bytes().splitlines(), start=1):
        rec = orjson.loads(line)
        if n > 1 and pred(rec):  # type: ignore[operator]
            return n
    raise AssertionError("no such event")


def test_hand_edited_trace_diverges_at_the_edited_event(tour_trace: Path, tmp_path: Path) -> None:
    n = _line_of(tour_trace, lambda r: r["event"] == "email.delivered" and r["invoice"] == "INV-1001")
    edited = tmp_path / "edited.jsonl"
    before, _ = _edit(tour_trace, edited, n, lambda r: {**r, "folder": "junk"})
    res = replay(edited)
    assert not res.identical and res.exit_code == 1
    d = res.divergence
    assert d is not None and d.line == n and d.seq == before["seq"] == n - 1
    assert d.recorded_obj["folder"] == "junk" and d.replayed_obj == before
    assert [(c.key, c.kind, c.a, c.b) for c in d.changes] == [("folder", "changed", "junk", "inbox")]


def test_cli_reports_both_versions_and_exit_one(tour_trace: Path, tmp_path: Path) -> None:
    n = _line_of(tour_trace, lambda r: r["event"] == "email.stuck")
    edited = tmp_path / "edited.jsonl"
    before, _ = _edit(tour_trace, edited, n, lambda r: {**r, "reason": "sender-not-a-user", "t": r["t"] + 60})
    p = mailsim("replay", edited)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"DIVERGED at line {n} (seq {before['seq']})" in p.stdout
    assert '"reason": "sender-not-a-user"' in p.stdout and '"reason": "sync-token-expired"' in p.stdout
    assert '~ reason: "sender-not-a-user" → "sync-token-expired"' in p.stdout
    assert f'~ t: {before["t"] + 60} → {before["t"]}' in p.stdout  # type: ignore[operator]
    assert "Traceback" not in p.stderr
    j = mailsim("replay", edited, "--json")
    assert j.returncode == 1
    data = json.loads(j.stdout)
    assert data["identical"] is False and data["divergence"]["line"] == n
    assert {c["key"] for c in data["divergence"]["changes"]} == {"reason", "t"}


def test_cli_identical_exit_zero(tour_trace: Path, tmp_path: Path) -> None:
    p = mailsim("replay", tour_trace, "--out", tmp_path / "again.jsonl")
    assert p.returncode == 0, p.stderr
    assert "identical" in p.stdout and "byte for byte" in p.stdout
    assert (tmp_path / "again.jsonl").read_bytes() == tour_trace.read_bytes()


def test_deleted_and_added_lines(tour_trace: Path, tmp_path: Path) -> None:
    lines = tour_trace.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:5] + lines[6:]))
    d = replay(cut).divergence
    assert d is not None and d.line == 6 and d.replayed == lines[5] and d.recorded == lines[6]
    short = tmp_path / "short.jsonl"
    short.write_bytes(b"".join(lines[:-1]))
    res = replay(short)
    d = res.divergence
    assert d is not None and d.line == len(lines) and d.recorded is None and d.replayed == lines[-1]
    assert "recorded trace ends" in d.explanation and res.events == len(lines) - 2
    longer = tmp_path / "long.jsonl"
    longer.write_bytes(b"".join([*lines, lines[-1]]))
    d = replay(longer).divergence
    assert d is not None and d.line == len(lines) + 1 and d.replayed is None


def test_line_ending_change_is_a_divergence(tour_trace: Path, tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.jsonl"
    lines = tour_trace.read_bytes().splitlines(keepends=True)
    crlf.write_bytes(b"".join([*lines[:3], lines[3].replace(b"\n", b"\r\n"), *lines[4:]]))
    d = replay(crlf).divergence
    assert d is not None and d.line == 4 and "line ending" in d.explanation


def test_seed_override_is_replayed_with_the_header_seed(tmp_path: Path) -> None:
    trace = tmp_path / "s.jsonl"
    p = mailsim("run", TOUR, "--seed", "4242", "--trace", trace)
    assert p.returncode in (0, 1), p.stderr
    assert read_header(trace)["seed"] == 4242
    res = replay(trace)
    assert res.identical and res.scenario.seed == 4242
    assert any("--seed 4242" in n for n in res.notes)


def test_scenario_option_reads_a_copy_under_the_recorded_path(tour_trace: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere.yaml"
    copy.write_bytes(TOUR.read_bytes())
    res = replay(tour_trace, copy)
    assert res.identical  # timeline events carry line: <recorded path>:L:C, kept by loading under that name
    assert any("elsewhere.yaml" in n for n in res.notes)
    p = mailsim("replay", tour_trace, "--scenario", copy, cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_relative_scenario_path_from_another_directory(tmp_path: Path) -> None:
    trace = tmp_path / "rel.jsonl"
    assert mailsim("run", "scenarios/step3-token-expired.yaml", "--trace", trace).returncode == 0
    assert read_header(trace)["scenario_path"] == "scenarios/step3-token-expired.yaml"
    assert mailsim("replay", trace).returncode == 0
    p = mailsim("replay", trace, cwd=tmp_path)
    assert p.returncode == 2 and "cannot find the scenario file" in p.stderr and "--scenario" in p.stderr
    p = mailsim("replay", trace, "--scenario", ROOT / "scenarios" / "step3-token-expired.yaml", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


def test_version_only_header_difference_is_a_note(tour_trace: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    _edit(tour_trace, old, 1, lambda h: {**h, "version": "0.0.1"})
    res = replay(old)
    assert res.identical and any("mailsim 0.0.1" in n for n in res.notes)


def test_header_start_edit_diverges_at_line_one(tour_trace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "start.jsonl"
    _edit(tour_trace, bad, 1, lambda h: {**h, "start": "2030-01-01T00:00:00Z"})
    d = replay(bad).divergence
    assert d is not None and d.line == 1 and [c.key for c in d.changes] == ["start"]


def test_changed_scenario_is_bad_input(tmp_path: Path) -> None:
    scn = tmp_path / "s.yaml"
    scn.write_bytes(TOUR.read_bytes())
    trace = tmp_path / "s.jsonl"
    write_trace(scn, trace)
    scn.write_bytes(TOUR.read_bytes().replace(b"seed: 1", b"seed: 2"))
    with pytest.raises(TraceInputError, match="has changed since the trace was written"):
        replay(trace)
    p = mailsim("replay", trace)
    assert p.returncode == 2 and "has changed since the trace was written" in p.stderr
    assert "Traceback" not in p.stderr
    scn.unlink()
    p = mailsim("replay", trace)
    assert p.returncode == 2 and "cannot find the scenario file" in p.stderr


def test_header_without_scenario_path_needs_the_option(tour_trace: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    _edit(tour_trace, old, 1, lambda h: {k: v for k, v in h.items() if k != "scenario_path"})
    p = mailsim("replay", old)
    assert p.returncode == 2 and "names no scenario file" in p.stderr and "--scenario" in p.stderr
    res = replay(old, TOUR)
    assert res.identical and any("scenario_path" in n for n in res.notes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"schema: mailsim/1\n", "line 1 is not JSON"),
        (b"[1, 2]\n", "not a header"),
        (b'{"schema": "mailsim-trace/9", "scenario": "x"}\n', "unsupported trace schema"),
        (b'{"schema": "other/1"}\n', "not a mailsim trace"),
        (b'{"schema": "mailsim-trace/1", "scenario": "x"}\n', "lacks"),
        (b'{"schema": "mailsim-trace/1", "scenario": "x", "scenario_sha256": "ab", "seed": 1, "start": "",'
         b' "version": "0"}\n', "not a sha256"),
        (b'{"schema": "mailsim-trace/1", "scenario": "x", "scenario_sha256": "' + b"0" * 64 + b'", "seed": "1",'
         b' "start": "", "version": "0"}\n', "seed is not an integer"),
        (b"\xff\xfe\x00garbage", "not JSON"),
    ],
)
def test_bad_traces_exit_two(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content)
    p = mailsim("replay", f)
    assert p.returncode == 2, p.stdout
    assert message in p.stderr and "Traceback" not in p.stderr


def test_missing_and_directory_inputs_exit_two(tmp_path: Path) -> None:
    for target, message in ((tmp_path / "nope.jsonl", "No such file"), (tmp_path, "directory")):
        p = mailsim("replay", target)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def test_key_diff_nested() -> None:
    a = {"x": 1, "acc": {"inbox": 2, "junk": 0}, "gone": True}
    b = {"x": 1, "acc": {"inbox": 3, "junk": 0, "new": 1}}
    got = [(c.key, c.kind, c.a, c.b) for c in key_diff(a, b)]
    assert got == [("acc.inbox", "changed", 2, 3), ("acc.new", "only-b", None, 1), ("gone", "only-a", True, None)]
    assert [c.kind for c in key_diff({"n": 1}, {"n": 1.0})] == ["changed"]  # bytes differ: so does the value
    assert key_diff([1, {"a": 1}], [1, {"a": 1}]) == []
