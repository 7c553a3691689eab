"""The SMTP sink with ordinary clients (smtplib, swaks) on its plain listener."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from helpers import need_tool

from simulator.net.sink import Sink, with_enhanced
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

BASE = """
schema: mailsim/1
name: sink-test
start: 2026-11-02T09:00:00Z
seed: {seed}
dns:
  records:
    - {{name: good.example, type: TXT, value: "v=spf1 ip4:127.0.0.1 -all"}}
    - {{name: soft.example, type: TXT, value: "v=spf1 ~all"}}
    - {{name: bad.example, type: TXT, value: "v=spf1 -all"}}
mailboxes:
  - {{domain: client.example, users: [jane, bob]}}
  - {{domain: grey.example, greylist: 5m}}
  - {{domain: full.example, quota: 2}}
  - {{domain: small.example, size_limit: 2000}}
faults: {faults}
"""

MSG = b"From: a@good.example\r\nTo: jane@client.example\r\nSubject: hi\r\nMessage-ID: <{mid}@t>\r\n\r\nhello\r\n"


def scenario(seed: int = 5, faults: str = "[]") -> Scenario:
    return load_scenario_text(BASE.format(seed=seed, faults=faults), "sink-test.yaml")


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink(tmp_path: Path, clock: Clock) -> Iterator[Sink]:
    with Sink(scenario(), tmp_path / "mail", clock=clock) as s:
        yield s


def client(s: Sink) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", s.port, local_hostname="client.test", timeout=30)
    code, _ = c.ehlo()
    assert code == 250
    return c


def send(s: Sink, sender: str, rcpts: list[str], mid: str, body: bytes | None = None) -> list[tuple[int, bytes]]:
    """One transaction; the replies to MAIL, each RCPT and (if any RCPT passed) DATA."""
    c = client(s)
    try:
        out = [c.mail(sender)]
        ok = False
        for r in rcpts:
            rep = c.rcpt(r)
            out.append(rep)
            ok = ok or rep[0] == 250
        if out[0][0] == 250 and ok:
            out.append(c.data(body if body is not None else MSG.replace(b"{mid}", mid.encode())))
        return out
    finally:
        c.quit()


def test_accepted_message_is_stored_once_in_maildir(sink: Sink, tmp_path: Path) -> None:
    replies = send(sink, "a@good.example", ["jane@client.example"], "m1")
    assert replies[-1][0] == 250 and replies[-1][1].startswith(b"2.0.0 ")
    (m,) = sink.wait_for("jane@client.example", 1, 30)
    assert m.folder == "inbox" and m.spf == "pass" and m.message_id == "<m1@t>"
    new = tmp_path / "mail" / "jane@client.example" / "new"
    assert [p.name for p in new.iterdir()] == [m.path.name]
    assert not list((tmp_path / "mail" / "jane@client.example" / "tmp").iterdir())
    parsed = email.message_from_bytes(m.read(), policy=email.policy.default)
    assert str(parsed["Received-SPF"]).startswith("pass ")
    assert parsed["Subject"] == "hi"
    summary = sink.summary()
    assert summary["mailboxes"]["jane@client.example"]["inbox"] == 1
    assert summary["mailboxes"]["jane@client.example"]["files"] == [f"jane@client.example/new/{m.path.name}"]
    assert sink.store.box("jane@client.example").inbox == 1


def test_every_reply_has_an_enhanced_code(sink: Sink) -> None:
    c = client(sink)
    try:
        for cmd in ("NOOP", "RSET", "VRFY jane@client.example", "MAIL FROM:<a@good.example>",
                    "RCPT TO:<jane@client.example>", "RSET", "HELP"):
            code, msg = c.docmd(cmd)
            assert msg[:1] == str(code)[:1].encode() and msg[1:2] == b".", (cmd, code, msg)
    finally:
        c.quit()
    assert with_enhanced("250 OK") == "250 2.0.0 OK"
    assert with_enhanced("451 4.7.1 x") == "451 4.7.1 x"


def test_unknown_user_550_511(sink: Sink) -> None:
    replies = send(sink, "a@good.example", ["nobody@client.example"], "m2")
    assert replies[1] == (550, b"5.1.1 Recipient address rejected: user unknown")
    assert sink.messages() == []


def test_greylisting_then_pass(sink: Sink, clock: Clock) -> None:
    first = send(sink, "a@good.example", ["amy@grey.example"], "g1")
    assert first[1][0] == 451 and first[1][1].startswith(b"4.7.1 ")
    clock.t = 120
    assert send(sink, "a@good.example", ["amy@grey.example"], "g1")[1][0] == 451
    # another sender is another triplet
    assert send(sink, "b@good.example", ["amy@grey.example"], "g2")[1][0] == 451
    clock.t = 300
    again = send(sink, "a@good.example", ["amy@grey.example"], "g1")
    assert again[1][0] == 250 and again[-1][0] == 250
    assert len(sink.messages("amy@grey.example")) == 1


def test_quota_452_422(sink: Sink) -> None:
    for i in range(2):
        assert send(sink, "a@good.example", ["kim@full.example"], f"q{i}")[-1][0] == 250
    over = send(sink, "a@good.example", ["kim@full.example"], "q3")
    assert over[1] == (452, b"4.2.2 Mailbox full, try again later")
    assert len(sink.messages("kim@full.example")) == 2


def test_outage_421_at_greeting(tmp_path: Path) -> None:
    scn = scenario(faults="[{kind: outage}]")
    with Sink(scn, tmp_path) as s:
        with pytest.raises(smtplib.SMTPConnectError) as ei:
            smtplib.SMTP("127.0.0.1", s.port, timeout=30)
        assert ei.value.smtp_code == 421
        err = ei.value.smtp_error
        assert (err if isinstance(err, bytes) else err.encode()).startswith(b"4.3.2 ")


def _replies_for_seed(seed: int, tmp_path: Path) -> list[tuple[int, bytes]]:
    faults = ("[{kind: tempfail, stage: rcpt, probability: 0.4, target: client.example},"
              " {kind: permfail, stage: mail, probability: 0.2}]")
    with Sink(scenario(seed, faults), tmp_path / f"seed{seed}", clock=Clock()) as s:
        out: list[tuple[int, bytes]] = []
        c = client(s)
        try:
            for _ in range(30):
                out.append(c.mail("a@good.example"))
                if out[-1][0] == 250:
                    out.append(c.rcpt("jane@client.example"))
                c.rset()
        finally:
            c.quit()
        return out


def test_seeded_faults_same_seed_same_replies(tmp_path: Path) -> None:
    a = _replies_for_seed(3, tmp_path / "a")
    b = _replies_for_seed(3, tmp_path / "b")
    assert a == b
    codes = {code for code, _ in a}
    assert {250, 451, 550} <= codes
    assert (451, b"4.3.0 Requested action aborted: local error in processing") in a
    assert _replies_for_seed(4, tmp_path / "c") != a


def test_spf_softfail_goes_to_junk_with_received_spf(sink: Sink, tmp_path: Path) -> None:
    replies = send(sink, "a@soft.example", ["jane@client.example"], "j1")
    assert replies[-1][0] == 250
    (m,) = sink.wait_for("jane@client.example", 1, 30)
    assert m.folder == "junk" and m.spf == "softfail"
    assert m.path.parent == tmp_path / "mail" / "jane@client.example" / ".Junk" / "new"
    header = str(m.message()["Received-SPF"])
    assert header.startswith("softfail ") and "client-ip=127.0.0.1" in header and "helo=client.test" in header
    assert sink.summary()["mailboxes"]["jane@client.example"]["junk"] == 1


def test_spf_fail_rejected_550_5723(sink: Sink) -> None:
    replies = send(sink, "a@bad.example", ["jane@client.example"], "r1")
    assert replies[-1] == (550, b"5.7.23 SPF validation failed")
    assert sink.messages() == []


def test_size_limit_552_534(sink: Sink) -> None:
    c = client(sink)
    try:
        assert b"SIZE" in (c.ehlo_resp or b"")
        code, msg = c.mail("a@good.example", [f"SIZE={sink.size_limit + 1}"])
        assert (code, msg[:5]) == (552, b"5.3.4")
        c.rset()
        # a domain with a smaller limit refuses at RCPT when the declared size is over it
        assert c.mail("a@good.example", ["SIZE=5000"])[0] == 250
        assert c.rcpt("u@small.example") == (552, b"5.3.4 Message size exceeds fixed maximum message size")
        c.rset()
        # ... and at the end of DATA when the message turns out bigger than declared
        assert c.mail("a@good.example")[0] == 250
        assert c.rcpt("u@small.example")[0] == 250
        big = MSG.replace(b"{mid}", b"s1") + b"x" * 70 + (b"\r\n" + b"y" * 70) * 40 + b"\r\n"
        assert c.data(big)[0:1] == (552,)
    finally:
        c.quit()
    assert sink.messages() == []


def test_dsn_and_8bitmime_parameters_accepted(sink: Sink) -> None:
    c = client(sink)
    try:
        ext = (c.ehlo_resp or b"").upper()
        assert b"DSN" in ext and b"ENHANCEDSTATUSCODES" in ext and b"8BITMIME" in ext
        assert c.mail("a@good.example", ["RET=HDRS", "ENVID=QQ314159", "BODY=8BITMIME", "SIZE=200"])[0] == 250
        assert c.rcpt("jane@client.example", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;jane@client.example"])[0] == 250
        assert c.rcpt("bob@client.example", ["NOTIFY=NEVER"])[0] == 250
        code, _ = c.data(MSG.replace(b"{mid}", b"d1"))
        assert code == 250
        assert c.mail("a@good.example", ["RET=BOGUS"])[0] == 501
        assert c.mail("a@good.example")[0] == 250
        assert c.rcpt("jane@client.example", ["NOTIFY=SOMETIMES"])[0] == 501
        assert c.rcpt("jane@client.example", ["RET=FULL"])[0] == 555
    finally:
        c.quit()
    assert len(sink.messages("jane@client.example")) == 1
    assert len(sink.messages("bob@client.example")) == 1


def test_null_sender_report_is_filed_as_bounce(sink: Sink) -> None:
    body = (b"From: MAILER-DAEMON@good.example\r\nTo: jane@client.example\r\nMessage-ID: <b1@t>\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--XX--\r\n")
    c = client(sink)
    try:
        assert c.mail("")[0] == 250
        assert c.rcpt("jane@client.example")[0] == 250
        assert c.data(body)[0] == 250
    finally:
        c.quit()
    (m,) = sink.wait_for("jane@client.example", 1, 30)
    assert m.folder == "bounce" and m.spf is None
    assert m.read().startswith(b"Return-Path: <>\nFrom: MAILER-DAEMON@good.example\n")  # one file for all recipients
    assert sink.summary()["mailboxes"]["jane@client.example"]["bounces"] == 1
    assert sink.store.box("jane@client.example").bounces == 1


def test_maildir_names_are_deterministic(tmp_path: Path) -> None:
    names = []
    for run in ("a", "b"):
        with Sink(scenario(), tmp_path / run, clock=Clock()) as s:
            send(s, "a@good.example", ["jane@client.example", "bob@client.example"], "same")
            names.append(sorted(str(m.path.relative_to(tmp_path / run)) for m in s.messages()))
    assert names[0] == names[1] and len(names[0]) == 2


def test_swaks(sink: Sink) -> None:
    swaks = need_tool("swaks")
    proc = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(sink.port), "--from", "a@good.example",
         "--to", "jane@client.example", "--helo", "swaks.test", "--header", "Subject: from swaks",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (m,) = sink.wait_for("jane@client.example", 1, 30)
    assert m.message()["Subject"] == "from swaks" and m.helo == "swaks.test"
    bad = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(sink.port), "--from", "a@good.example",
         "--to", "nobody@client.example", "--timeout", "30"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode != 0 and "550 5.1.1" in bad.stdout


def test_cli_serves_until_interrupted_and_prints_summary(tmp_path: Path) -> None:
    import json
    import re
    import signal
    import sys

    box = tmp_path / "cli-mail"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli.main", "sink", "--maildir", str(box)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        head = [proc.stdout.readline()]
        while head[-1] and "Ctrl-C" not in head[-1]:  # the banner, whatever its length
            head.append(proc.stdout.readline())
        m = re.search(r"SMTP\s+127\.0\.0\.1:(\d+)", head[0])
        assert m is not None, head
        c = smtplib.SMTP("127.0.0.1", int(m.group(1)), timeout=30)
        c.sendmail("a@x.example", ["jane@client.example"], MSG.replace(b"{mid}", b"cli"))
        c.quit()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["mailboxes"]["jane@client.example"]["inbox"] == 1
    assert (box / summary["mailboxes"]["jane@client.example"]["files"][0]).is_file()


def test_cli_bad_scenario_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from simulator.cli.sink_cmd import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: mailsim/1\nname: x\nstart: 2026-11-02T09:00:00Z\nmailboxes: [{domian: a.example}]\n")
    res = CliRunner().invoke(app, ["--scenario", str(bad)])
    assert res.exit_code == 2
    assert "bad.yaml:4:" in (res.stderr if hasattr(res, "stderr") else res.output)


@pytest.mark.parametrize("no_uvloop", ["", "1"])
def test_the_sink_runs_on_uvloop_when_installed_and_on_asyncio_without_it(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, no_uvloop: str) -> None:
    """uvloop (the ``fast`` extra) is the sink's loop; MAILSIM_NO_UVLOOP=1 keeps asyncio's, which must work alike."""
    monkeypatch.setenv("MAILSIM_NO_UVLOOP", no_uvloop)
    with Sink(scenario(), tmp_path / "mail", clock=clock) as s:
        assert isinstance(s._loop, uvloop.Loop) != bool(no_uvloop)  # `make` installs uvloop (.[dev] has `fast`)
        assert isinstance(s._loop, asyncio.AbstractEventLoop)
        replies = send(s, "a@good.example", ["jane@client.example", "nobody@client.example"], "m1")
        assert [code for code, _ in replies] == [250, 250, 550, 250]
        (m,) = s.wait_for("jane@client.example", 1, 30)
        assert m.folder == "inbox" and m.message_id == "<m1@t>"


def _writer_threads(s: Sink, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where each message's Maildir write runs (thread names), recorded as the sink writes."""
    import threading

    seen: list[str] = []
    deliver = s._maildir.deliver_all

    def recording(*args: object, **kw: object) -> object:
        seen.append(threading.current_thread().name)
        return deliver(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(s._maildir, "deliver_all", recording)
    return seen


def test_messages_are_written_on_the_event_loop_while_that_is_cheap(
        sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small message on a quick disk is written on the loop (no thread hand-off), before its 250."""
    seen = _writer_threads(sink, monkeypatch)
    for i in range(3):
        assert send(sink, "a@good.example", ["jane@client.example"], f"m{i}")[-1][0] == 250
        assert len(sink.messages()) == i + 1  # stored when the 250 came back, nothing waited for
    assert seen == ["mailsim-sink"] * 3
    assert (sink.writes_on_loop, sink.writes_on_workers) == (3, 0)


def test_after_a_slow_write_and_for_large_messages_writes_go_to_worker_threads(
        sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow disk must not hold up every connection: after one slow write the next ones leave the loop
    for ``slow_disk_pause`` seconds; a message over 1 MiB is written on a worker thread always."""
    seen = _writer_threads(sink, monkeypatch)
    sink.slow_write = 0.0  # every write counts as slow
    sink.slow_disk_pause = 3600.0
    for i in range(3):
        assert send(sink, "a@good.example", ["jane@client.example"], f"m{i}")[-1][0] == 250
    assert seen[0] == "mailsim-sink" and all(t.startswith("mailsim-sink-write") for t in seen[1:]), seen
    sink._workers_until = 0.0  # the pause is over: the loop tries again
    sink.slow_write, sink.slow_disk_pause = 60.0, 0.0
    assert send(sink, "a@good.example", ["jane@client.example"], "m3")[-1][0] == 250
    big = MSG.replace(b"{mid}", b"big") + (b"y" * 998 + b"\r\n") * 1100  # ≈1.1 MB
    assert send(sink, "a@good.example", ["jane@client.example"], "big", big)[-1][0] == 250
    assert seen[3] == "mailsim-sink" and seen[4].startswith("mailsim-sink-write"), seen
    assert len(sink.messages()) == 5 and (sink.writes_on_loop, sink.writes_on_workers) == (2, 3)
