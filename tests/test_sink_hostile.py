"""Hostile input and load against the sink's plain listener (loopback, bounded in count and time).

Whatever a client does, the sink keeps serving, answers with the right code,
and stores exactly the messages it accepted with 250: none lost, none twice.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.net.sink import Sink
from simulator.scenario.loader import load_scenario_text

SCENARIO = """
schema: mailsim/1
name: hostile
start: 2026-11-02T09:00:00Z
seed: 9
mailboxes:
  - {domain: client.example, users: [jane, bob, u0, u1, u2, u3, u4, u5, u6, u7, u8, u9]}
  - {domain: small.example, size_limit: 4000}
faults:
  - {kind: tempfail, stage: data, probability: 0.1, target: client.example}
"""
IO_TIMEOUT = 30.0  # socket timeout: a bound on a hung test, never an assertion
# the server's idle timeout: generous where only a result is checked (a client starved of CPU on a
# loaded machine must not be hung up on), short only where the hang-up itself is the subject
SERVER_TIMEOUT = 300.0
STALL_TIMEOUT = 1.0


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    scn = load_scenario_text(SCENARIO, "hostile.yaml")
    with Sink(scn, tmp_path / "mail", clock=lambda: 0, timeout=SERVER_TIMEOUT) as s:
        yield s


@pytest.fixture
def impatient_sink(tmp_path: Path) -> Iterator[Sink]:
    """A sink of its own with a short idle timeout, for the stalled-client test only."""
    scn = load_scenario_text(SCENARIO, "hostile.yaml")
    with Sink(scn, tmp_path / "mail-impatient", clock=lambda: 0, timeout=STALL_TIMEOUT) as s:
        yield s


class Raw:
    """A line-level SMTP client that sends whatever it is told."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), IO_TIMEOUT)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One full (possibly multi-line) reply; its last line."""
        while True:
            line = self.f.readline()
            if not line:
                return b""
            if line[3:4] != b"-":
                return line.rstrip(b"\r\n")

    def cmd(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def works(s: Sink, rcpt: str = "bob@client.example", mid: str = "<ok@t>") -> bool:
    """The sink still serves a clean transaction after whatever came before."""
    c = smtplib.SMTP("127.0.0.1", s.port, timeout=IO_TIMEOUT)
    try:
        c.ehlo("ok.test")
        c.mail("a@x.example")
        c.rcpt(rcpt)
        code, _ = c.data(f"Message-ID: {mid}\r\nSubject: ok\r\n\r\nfine\r\n".encode())
        return code in (250, 451)
    finally:
        c.quit()


def test_garbage_and_unknown_commands(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        assert r.greeting.startswith(b"220 ")
        assert r.cmd(b"\x00\xff\xfe garbage \x80").startswith(b"500 5.5.")
        assert r.cmd(b"FROBNICATE now") == b'500 5.5.1 Error: command "FROBNICATE" not recognized'
        assert r.cmd(b"").startswith(b"500 5.5.2")
        assert r.cmd(b"EHLO").startswith(b"501 5.5.4")
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        assert r.cmd(b"MAIL FROM:<<<>>>").startswith(b"553 5.1.3")
        assert r.cmd(b"MAIL TO:<a@b>").startswith(b"501 5.5.4")
        assert r.cmd(b"MAIL FROM:<a@x.example> FOO=BAR").startswith(b"555 5.5.4")
        assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 2.1.0")
        assert r.cmd(b"RCPT TO:<jane@client.example> NOTIFY=").startswith(b"501 5.5.4")
    finally:
        r.close()
    assert works(sink)


def test_commands_out_of_order(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        assert r.cmd(b"MAIL FROM:<a@x.example>") == b"503 5.5.1 Error: send HELO first"
        assert r.cmd(b"DATA").startswith(b"503 5.5.1")
        assert r.cmd(b"HELO h.test").startswith(b"250 ")
        assert r.cmd(b"RCPT TO:<jane@client.example>") == b"503 5.5.1 Error: need MAIL command"
        assert r.cmd(b"DATA") == b"503 5.5.1 Error: need RCPT command"
        assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
        assert r.cmd(b"MAIL FROM:<b@x.example>") == b"503 5.5.1 Error: nested MAIL command"
        assert r.cmd(b"DATA").startswith(b"503 5.5.1")
        assert r.cmd(b"RSET") == b"250 2.0.0 OK"
        assert r.cmd(b"QUIT").startswith(b"221 2.0.0")
    finally:
        r.close()
    assert sink.messages() == []
    assert works(sink)


def test_one_megabyte_lines(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        assert r.cmd(b"NOOP " + b"x" * 1_000_000).startswith(b"500 5.5.")
        # the connection survives; a 1 MB line inside DATA rejects that message only
        assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
        assert r.cmd(b"RCPT TO:<jane@client.example>").startswith(b"250 ")
        assert r.cmd(b"DATA").startswith(b"354")
        r.send(b"Subject: long\r\n\r\n" + b"y" * 1_000_000 + b"\r\n.\r\n")
        assert r.reply().startswith(b"500 5.5.")
        assert r.cmd(b"NOOP").startswith(b"250 2.0.0")
    finally:
        r.close()
    assert sink.messages() == []
    assert works(sink)


def test_message_over_size(sink: Sink) -> None:
    c = smtplib.SMTP("127.0.0.1", sink.port, timeout=IO_TIMEOUT)
    try:
        c.ehlo("h.test")
        # over the domain's limit, undeclared: refused at the end of DATA
        c.mail("a@x.example")
        c.rcpt("u@small.example")
        code, msg = c.data(b"Subject: big\r\n\r\n" + (b"z" * 76 + b"\r\n") * 100)
        assert (code, msg[:5]) == (552, b"5.3.4")
        # over the server's SIZE: aiosmtpd stops storing, answers 552 5.3.4 at the end
        c.mail("a@x.example")
        c.rcpt("jane@client.example")
        code, msg = c.data(b"Subject: huge\r\n\r\n" + (b"z" * 998 + b"\r\n") * (sink.size_limit // 1000 + 10))
        assert (code, msg[:5]) == (552, b"5.3.4")
    finally:
        c.quit()
    assert sink.messages() == []
    assert works(sink)


def test_data_cut_midway(sink: Sink) -> None:
    r = Raw(sink.port)
    assert r.cmd(b"EHLO h.test").startswith(b"250 ")
    assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
    assert r.cmd(b"RCPT TO:<jane@client.example>").startswith(b"250 ")
    assert r.cmd(b"DATA").startswith(b"354")
    r.send(b"Message-ID: <cut@t>\r\nSubject: cut\r\n\r\nhalf a mess")
    r.close()
    assert works(sink, "jane@client.example", "<after-cut@t>")
    ids = [m.message_id for m in sink.messages()]
    assert "<cut@t>" not in ids


def test_stalled_client_is_timed_out(impatient_sink: Sink) -> None:
    # this sink's idle timeout is 1 s: a client that never speaks is hung up on
    sink = impatient_sink
    r = Raw(sink.port)
    try:
        assert r.greeting.startswith(b"220 ")
        assert r.f.readline() == b""  # EOF from the server (bounded by IO_TIMEOUT, never measured)
    finally:
        r.close()
    half = Raw(sink.port)  # stalls mid-command this time
    try:
        half.send(b"EHLO h.te")
        assert half.reply() == b""
    finally:
        half.close()
    assert works(sink)


def test_ten_concurrent_clients_two_hundred_messages_each_beside_a_thousand_idle(sink: Sink) -> None:
    """The load test has the generous-timeout sink to itself; a thousand idle connections stay open
    the whole time (issue 13: 1,000 idle connections at once) and the sink serves the others."""
    clients, per_client = 10, 200
    idle = [socket.create_connection(("127.0.0.1", sink.port), IO_TIMEOUT) for _ in range(1000)]
    accepted: list[set[tuple[str, str]]] = [set() for _ in range(clients)]
    refused: list[int] = [0] * clients
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            c = smtplib.SMTP("127.0.0.1", sink.port, timeout=IO_TIMEOUT)
            c.ehlo(f"c{k}.test")
            for i in range(per_client):
                if i and i % 50 == 0:  # reconnect now and then
                    c.quit()
                    c = smtplib.SMTP("127.0.0.1", sink.port, timeout=IO_TIMEOUT)
                    c.ehlo(f"c{k}.test")
                mid = f"<m{k}-{i}@load>"
                rcpt = f"u{k}@client.example" if i % 13 else "nobody@client.example"
                code, _ = c.mail(f"s{k}@x.example")
                assert code == 250
                rc, _ = c.rcpt(rcpt)
                if rc != 250:
                    assert rc == 550
                    c.rset()
                    refused[k] += 1
                    continue
                code, msg = c.data(f"Message-ID: {mid}\r\nSubject: {i}\r\n\r\nbody {k} {i}\r\n".encode())
                if code == 250:
                    accepted[k].add((rcpt, mid))
                else:
                    assert (code, msg[:5]) == (451, b"4.3.0")  # the seeded DATA tempfail
                    refused[k] += 1
            c.quit()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads)
    for sock in idle:  # every idle connection was greeted and is still open
        assert sock.recv(4).startswith(b"220 ")
        sock.close()
    assert errors == []
    want = set().union(*accepted)
    assert sum(len(a) for a in accepted) + sum(refused) == clients * per_client
    stored = [(m.recipient, m.message_id) for m in sink.messages()]
    assert len(stored) == len(set(stored))  # none twice
    assert set(stored) == want  # none lost, nothing unaccepted
    on_disk = sum(1 for p in sink.maildir.glob("*/new/*"))
    assert on_disk == len(want)
    assert sum(b["inbox"] for b in sink.summary()["mailboxes"].values()) == len(want)
    assert sum(refused) > 0


def test_pipelined_client_gets_every_reply_in_order(sink: Sink) -> None:
    """A client that pipelines (RFC 2920) gets one reply per command, in order, none lost when
    the sink writes them together; a QUIT behind them still gets its 221."""
    r = Raw(sink.port)
    try:
        assert r.cmd(b"EHLO p.test").startswith(b"250 ")
        batch = (b"MAIL FROM:<p@x.example>\r\nRCPT TO:<jane@client.example>\r\nRCPT TO:<nobody@client.example>\r\n"
                 b"RSET\r\n") * 20
        r.send(batch + b"MAIL FROM:<p@x.example>\r\nRCPT TO:<bob@client.example>\r\nDATA\r\n")
        got = [r.reply()[:9] for _ in range(20 * 4 + 3)]
        assert got[:4] == [b"250 2.1.0", b"250 2.1.5", b"550 5.1.1", b"250 2.0.0"]
        assert got[:80] == got[:4] * 20
        assert got[80:] == [b"250 2.1.0", b"250 2.1.5", b"354 End d"]
        r.send(b"Message-ID: <pipe@t>\r\nSubject: p\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        final = r.reply()
        assert final[:3] in (b"250", b"451")  # the scenario's seeded DATA tempfail may answer
        assert r.reply().startswith(b"250 2.0.0")  # NOOP
        assert r.reply().startswith(b"221 2.0.0")
        assert r.f.readline() == b""
    finally:
        r.close()
    stored = [m.message_id for m in sink.messages()]
    assert stored == (["<pipe@t>"] if final.startswith(b"250") else [])
    assert works(sink)


def test_xmailsim_is_refused_on_the_plain_listener(sink: Sink) -> None:
    from simulator.net.sink import MailContext, xmailsim_value

    r = Raw(sink.port)
    try:
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        ctx = xmailsim_value(MailContext("<forged@x>", 1, 0, "client.example"))
        assert r.cmd(b"MAIL FROM:<a@x.example> XMAILSIM=" + ctx.encode()).startswith(b"555 5.5.4")
        assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 2.1.0")
        assert r.cmd(b"RCPT TO:<jane@client.example> XMAILSIM=00").startswith(b"555 5.5.4")
    finally:
        r.close()
    assert works(sink)
