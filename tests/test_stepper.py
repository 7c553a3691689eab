"""``mailsim step`` driven by scripts (--commands / stdin) and through the Stepper API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.domain.events import Resync
from simulator.engine.session import Session
from simulator.replay.stepper import Stepper, _allocate, _flow, parse_status
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "scenarios" / "tour.yaml"
MAILSIM = [sys.executable, "-m", "simulator.cli.main"]


def _mailsim(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILSIM, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, check=False)


def _blocks(transcript: str) -> dict[str, list[str]]:
    """Command echo -> its output lines, in order (repeated commands get a #n suffix)."""
    out: dict[str, list[str]] = {}
    cur = "(start)"
    out[cur] = []
    for line in transcript.splitlines():
        if line.startswith("> "):
            cur = line[2:]
            n = 2
            while cur in out:
                cur = f"{line[2:]} #{n}"
                n += 1
            out[cur] = []
        elif line:
            out[cur].append(line)
    return out


def _state(lines: list[str]) -> list[str]:
    """The state view within a block (from the header line on)."""
    for i, line in enumerate(lines):
        if line.startswith("tour 2026-"):
            return lines[i:]
    raise AssertionError(f"no state view in {lines}")


def _view(s: Session) -> tuple[object, ...]:
    return (s.cursor, s.now, [(v.id, v.email_status, v.reason, v.stuck_at, v.sent_at,
                               tuple((r.outcome, r.reason, r.at) for r in v.recipients))
                              for v in s.result().invoices()], s.result().mailboxes())


# -- the script interface -------------------------------------------------------------------------------


def test_commands_file_gives_a_plain_transcript(tmp_path: Path) -> None:
    cmds = tmp_path / "lesson.txt"
    cmds.write_text("# a comment\nnext 5\n\nuntil email.stuck\nshow user nora\nwhy INV-1004\nquit\nnext\n")
    p = _mailsim("step", str(TOUR), "--commands", str(cmds))
    assert p.returncode == 0, p.stderr
    assert "\x1b[" not in p.stdout  # no ANSI
    b = _blocks(p.stdout)
    assert list(b) == ["(start)", "next 5", "until email.stuck", "show user nora", "why INV-1004", "quit"]
    assert all(len(line) <= 80 for line in _state(b["next 5"]))
    assert _state(b["next 5"])[0].startswith("tour 2026-11-02 10:00:00Z (+1h) · event #5")
    stuck = b["until email.stuck"]
    assert re.match(r"reached email.stuck: #\d+ 11:00:00 email.stuck INV-1004", stuck[0])
    assert any("In Queue sync-token-expired · STUCK" in line for line in stuck)
    assert any("downtown: 1 · oldest 1h STUCK" in line for line in stuck)
    assert any("nora" in line and "EXPIRED 5.1d ago" in line for line in stuck)
    assert any("550 5.1.1 cat@pine.example" in line for line in stuck)
    assert "EXPIRED 2026-10-28 09:00:00Z" in "\n".join(b["show user nora"])
    why = "\n".join(b["why INV-1004"])
    assert "token expired" in why and "guide: Step 3" in why and "stuck since 2026-11-02 11:00Z" in why


def test_stdin_commands_and_bad_commands_get_one_line_hints() -> None:
    bad = ["bogus", "next x", "next -2", "until email.stuk", "until yesterday", "goto", "back zz",
           "break on invoice INV-9999", "break on reason sync-token-expird", "break on colour red",
           "show invoice INV-100", "show user nroa", "show widgets", "why", "why INV-1", "inject",
           "inject resync: nrao", "inject resyncc: nora", "inject {at: +1h, resync: nora}", "inject resync: [",
           "inject set_invoicing_email_from: {branch: uptown, email: a@b.example}", "save",
           "until 2026-11-01T00:00:00Z"]
    p = _mailsim("step", str(TOUR), stdin="next 30\n" + "\n".join(bad) + "\n")
    assert p.returncode == 0 and not p.stderr, p.stderr
    assert "Traceback" not in p.stdout
    b = _blocks(p.stdout)
    for cmd in bad:
        lines = b[cmd]
        assert len(lines) == 1 and lines[0].startswith("hint: "), (cmd, lines)
    assert "did you mean 'email.stuck'" in b["until email.stuk"][0]
    assert "did you mean 'nora'" in b["inject resync: nrao"][0]
    assert "did you mean 'resync'" in b["inject resyncc: nora"][0]
    assert "unknown branch 'uptown'" in b["inject set_invoicing_email_from: {branch: uptown, email: a@b.example}"][0]
    assert "did you mean 'sync-token-expired'" in b["break on reason sync-token-expird"][0]


def test_bad_scenario_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: mailsim/1\nstart: 2026-11-02T09:00:00Z\nqueue_pol: 1m\n")
    p = _mailsim("step", str(bad), stdin="next\n")
    assert p.returncode == 2 and "bad.yaml:3:1" in p.stderr


def test_back_after_n_steps_shows_exactly_the_state_seen_before(tmp_path: Path) -> None:
    cmds = tmp_path / "c.txt"
    cmds.write_text("next 3\nshow events 3\nnext 14\nback 14\nshow events 3\n"
                    "until +1h30m\nnext 1\nback 1\n"
                    "goto 12\nuntil email.stuck\ngoto 12\n")
    p = _mailsim("step", str(TOUR), "--commands", str(cmds))
    assert p.returncode == 0, p.stderr
    b = _blocks(p.stdout)
    assert _state(b["back 14"]) == _state(b["next 3"])
    assert b["show events 3 #2"] == b["show events 3"]
    # the clock had been moved on by `until` with no event at 10:30: back restores it too
    assert _state(b["back 1"]) == _state(b["until +1h30m"])
    assert "(+1h30m)" in _state(b["back 1"])[0] and "(+2h)" in _state(b["next 1"])[0]
    assert _state(b["goto 12 #2"]) == _state(b["goto 12"])
    assert _state(b["until email.stuck"])[0].startswith("tour 2026-11-02 11:00:00Z")


def test_back_is_exact_on_the_model_state() -> None:
    st = Stepper(TOUR)
    seen = []
    for _ in range(len(Stepper(TOUR).sess.goto(10**6).records)):
        st.execute("next")
        seen.append(_view(st.sess))
    for n in (1, 7, 20, len(seen) - 1):
        st.execute(f"back {n}")
        assert _view(st.sess) == seen[-1 - n]
        st.execute(f"goto {len(seen)}")
        assert _view(st.sess) == seen[-1]


def test_breakpoints_stop_next_and_until() -> None:
    st = Stepper(TOUR)
    assert "breakpoint 1: event email.stuck" in st.execute("break on event email.stuck").lines[0].plain
    r = st.execute("next 100")
    assert "stopped at breakpoint 1" in r.lines[-1].plain and st.sess.current()["event"] == "email.stuck"  # type: ignore[index]
    st.execute("goto 0")
    st.execute("break clear")
    st.execute("break on invoice INV-1003")
    st.execute("break on status Sent")
    r = st.execute("until +1d")
    assert st.sess.current() == st.sess.records[7]  # invoice.status INV-1003 In Queue (#8)
    r = st.execute("until end")
    assert st.sess.current()["event"] == "email.sent"  # type: ignore[index]
    assert "break list" and [x.plain for x in st.execute("break list").lines] == [
        "1. invoice INV-1003", "2. status Sent"]
    st.execute("break clear 1")
    st.execute("break clear")
    st.execute("until end")
    assert st.sess.done and st.sess.now == 86400  # the clock shows the run's end (until: +1d)


@pytest.mark.parametrize(("word", "status"), [("sent", "Sent"), ("In Queue", "In Queue"), ("in-queue", "In Queue"),
                                              ("n/a", "N/A"), ("NA", "N/A"), ("Pending", "Pending"),
                                              ("bounced", "bounced"), ("queue", None)])
def test_status_words(word: str, status: str | None) -> None:
    assert parse_status(word) == status


def test_until_status_and_time() -> None:
    st = Stepper(TOUR)
    st.execute("until In Queue")
    assert st.sess.current()["email_status"] == "In Queue"  # type: ignore[index]
    st.execute("until bounced")
    assert st.sess.current()["event"] == "email.bounced"  # type: ignore[index]
    st.execute("until 2026-11-02T12:00:00Z")
    assert st.sess.now == 3 * 3600
    st.execute("until +30m")
    assert st.sess.now == 3 * 3600 + 1800


# -- what-if injections and save --------------------------------------------------------------------------


def test_inject_branches_and_back_undoes_it() -> None:
    st = Stepper(TOUR)
    st.execute("until email.stuck")
    before = _view(st.sess)
    r = st.execute("inject resync: nora")
    assert not r.error and "injected resync: nora at 2026-11-02 11:00:01Z" in r.lines[0].plain
    st.execute("until Sent")
    assert st.sess.result().invoice("INV-1004").email_status == "Sent"  # type: ignore[union-attr]
    st.execute("back 2")
    assert _view(st.sess) == before and st.sess.injections == []


def test_injection_replays_exactly_after_silent_steps() -> None:
    """An injection made after model steps that emitted nothing is re-applied at the same point."""
    scn = load_scenario(TOUR)
    s = Session(scn)
    s.until_time(3 * 3600)  # an hour of silent queue polls after the last event (#25 at 11:00)
    s.inject(Resync(at=0, user="nora"))
    s.until(lambda r: r["event"] == "email.delivered" and r["invoice"] == "INV-1004")
    want = _view(s)
    again = Session(scn, tuple(s.injections)).goto(s.cursor)
    assert _view(again) == want
    assert again.result().invoice("INV-1004").sent_at == 3 * 3600 + 60  # type: ignore[union-attr]


@pytest.mark.parametrize(("what_if", "until", "inv_1004"), [
    ("inject resync: nora", "+2h1m", "Sent"),
    ("inject set_invoicing_email_from: {branch: downtown, email: lakeside@greenacre.example}", "+2h1m", "Sent"),
    ('inject dns_set: {name: greenacre.example, type: TXT, value: "v=spf1 include:_spf.google.com'
     ' include:spf.protection.outlook.com -all"}', "+1d", "In Queue"),  # SPF does not revive a token
])
def test_save_reproduces_the_run_and_mailsim_run_passes(tmp_path: Path, what_if: str, until: str,
                                                        inv_1004: str) -> None:
    out = tmp_path / "what-if.yaml"
    cmds = tmp_path / "c.txt"
    cmds.write_text(f"until email.stuck\n{what_if}\nnext 2\nsave {out}\n")
    p = _mailsim("step", str(TOUR), "--commands", str(cmds))
    assert p.returncode == 0, p.stderr
    block = _blocks(p.stdout)[f"save {out}"]
    assert any(line.startswith(f"saved {out}: until {until}, 1 injected event") for line in block), block
    assert any("→" in line and "hold" in line for line in block), block
    text = out.read_text()
    assert text.startswith("# saved by `mailsim step")
    assert "description: >\n  A small landscaping company" in text  # the rest of the file kept as written
    assert f"until: {until}\n" in text and "- {at: +2h1s, " in text
    run = _mailsim("run", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"INV-1004 email_status={inv_1004}" in run.stdout


def test_save_without_injection_pins_the_current_state(tmp_path: Path) -> None:
    st = Stepper(TOUR)
    st.execute("next 5")  # mid-instant: save finishes 10:00 first
    out = tmp_path / "at-ten.yaml"
    r = st.execute(f"save {out}")
    assert not r.error, [x.plain for x in r.lines]
    assert r.lines[0].plain.startswith("finished 10:00:00 first")
    assert _mailsim("run", str(out)).returncode == 0
    scn = load_scenario(out)
    assert scn.until == 3600 and not [e for e in scn.timeline if e.index >= 3]
    pinned = {(x.invoice, x.email_status) for x in scn.expect if x.email_status}
    assert ("INV-1004", "In Queue") in pinned and ("INV-1001", "Sent") in pinned
    assert "save: that is the scenario" in st.execute(f"save {TOUR}").lines[0].plain


def test_save_falls_back_to_round_trip_yaml_for_flow_timelines(tmp_path: Path) -> None:
    src = tmp_path / "flow.yaml"
    text = re.sub(  # the block-style timeline (its items and their captions) as one flow-style list
        r"timeline:\n(?:  .*\n)+",
        "timeline: [{at: +1h, complete_batch: NOV-LAKE}, {at: +1h, complete_batch: NOV-DOWN},"
        " {at: +1h, complete_batch: NOV-HILL}]  # flow style\n", TOUR.read_text(), count=1)
    assert text != TOUR.read_text()
    src.write_text(text)
    st = Stepper(src)
    st.execute("until +2h")
    st.execute("inject complete_batch: NOV-LATE")
    st.execute("until +3h")
    out = tmp_path / "saved.yaml"
    r = st.execute(f"save {out}")
    assert not r.error, [x.plain for x in r.lines]
    assert _mailsim("run", str(out)).returncode == 0
    assert load_scenario(out).timeline[-1].kind == "complete_batch"


def test_flow_and_row_allocation_helpers() -> None:
    assert _flow({"branch": "b1", "email": "ar@acme.example"}) == "{branch: b1, email: ar@acme.example}"
    assert _flow({"value": "v=spf1 -all", "on": True, "x": None}) == '{value: "v=spf1 -all", "on": true, x: null}'
    assert _flow("yes") == '"yes"'
    caps = _allocate(13, {"inv": 7, "queue": 1, "users": 4, "smtp": 3})
    assert sum(caps.values()) == 13 and caps["inv"] == 7
    assert _allocate(100, {"inv": 2, "queue": 0, "users": 1, "smtp": 1}) == {"inv": 2, "queue": 0, "users": 1,
                                                                               "smtp": 1}


def test_show_commands() -> None:
    st = Stepper(TOUR)
    st.execute("until email.stuck")
    inv = "\n".join(x.plain for x in st.execute("show invoice INV-1003").lines)
    assert "bounced [unknown-recipient] 550 5.1.1" in inv
    q = "\n".join(x.plain for x in st.execute("show queue").lines)
    assert "blocked: sync-token-expired" in q and "INV-1004" in q
    mb = "\n".join(x.plain for x in st.execute("show mailbox lakeside@greenacre.example").lines)
    assert "bounces 1" in mb and "<dsn-1-INV-1003@" in mb
    ev = [x.plain for x in st.execute("show events 2").lines]
    assert re.match(r"#\d+ 11:00:00 email.stuck INV-1004", ev[-1])
    assert st.execute("help").lines and st.execute("quit").quit
    assert st.execute("").state and not st.execute("# comment").state


def test_the_training_lesson_runs_as_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "training.md").read_text()
    block = doc.split("<!-- lesson-commands", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    cmds = tmp_path / "lesson.txt"
    cmds.write_text(block)
    p = subprocess.run([*MAILSIM, "step", str(TOUR), "--commands", str(cmds)], capture_output=True, text=True,
                       cwd=tmp_path, check=False)
    assert p.returncode == 0, p.stderr
    assert "hint:" not in p.stdout and "warning" not in p.stdout
    assert (tmp_path / "tour-fixed.yaml").exists()
    assert _mailsim("run", str(tmp_path / "tour-fixed.yaml")).returncode == 0
    # every screen header and reply line the lesson plan quotes is what the stepper prints
    out = set(p.stdout.splitlines())
    quoted = [line for line in doc.splitlines()
              if line.startswith(("tour 2026-", "moved ", "back 3 events", "reached ", "stopped at ", "injected ",
                                  "  #2"))
              and "…" not in line]
    assert quoted and [q for q in quoted if q not in out] == []


def test_a_caption_is_printed_when_its_event_is_reached_and_not_again() -> None:
    st = Stepper(TOUR)
    before = [str(line) for line in st.execute("next 4").lines]
    assert not [line for line in before if line.startswith("caption:")]
    reached = [str(line) for line in st.execute("until batch.completed").lines]
    assert [line for line in reached if line.startswith("caption:")] == [
        "caption: 10:00 — the November batches are completed: every Pending email goes In Queue (guide Step 1)",
        "caption: Downtown sends as the north region's address: Nora's, whose token expired five days ago "
        "(Steps 2, 3)"]
    later = [str(line) for line in st.execute("next 3").lines]
    assert not [line for line in later if line.startswith("caption:")]
    assert st.sess.caption_at(st.sess.cursor) is not None
    assert st.sess.caption_at(st.sess.cursor).text.startswith("Downtown")  # type: ignore[union-attr]
    st.execute("back 4")  # before the completions again: no caption yet; forward once more prints it again
    assert st.sess.caption_at(st.sess.cursor) is None
    again = [str(line) for line in st.execute("next 1").lines]
    assert len([line for line in again if line.startswith("caption:")]) == 2


def test_a_fault_on_all_the_run_shows_its_caption_at_the_start(tmp_path: Path) -> None:
    f = tmp_path / "noted.yaml"
    f.write_text(TOUR.read_text(encoding="utf-8") + "faults:\n  - {kind: tempfail, stage: rcpt, probability: 0.0,"
                 " target: oak.example, note: \"oak.example's server is flaky all day\"}\n", encoding="utf-8")
    p = _mailsim("step", str(f), stdin="next 1\n")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[1] == "caption: oak.example's server is flaky all day"
    assert lines.count("caption: oak.example's server is flaky all day") == 1  # once, not at every move
