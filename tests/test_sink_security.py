"""Hostile clients against the sink (issue 13): memory, disk and the sink's word hold.

Loopback only; every transfer is bounded (a few MB at most) and every wait has a
generous socket timeout that only bounds a hung test, never a measured one.
"""

from __future__ import annotations

import os
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import simulator.net.sink as sink_module
from simulator.net.maildir import Maildir, mailbox_dirname, stored_head
from simulator.net.proxy import proxy_header
from simulator.net.sink import MailContext, Sink, xmailsim_value
from simulator.scenario.loader import load_scenario_text

IO_TIMEOUT = 30.0
SCENARIO = """
schema: mailsim/1
name: security
start: 2026-11-02T09:00:00Z
seed: 3
mailboxes:
  - {domain: client.example, users: [jane, bob]}
"""


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    scn = load_scenario_text(SCENARIO, "security.yaml")
    with Sink(scn, tmp_path / "mail", clock=lambda: 0, timeout=60.0) as s:
        yield s


class Raw:
    """A line-level client that sends whatever it is told."""

    def __init__(self, port: int, first: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), IO_TIMEOUT)
        if first:
            self.sock.sendall(first)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        while True:
            line = self.f.readline()
            if not line:
                return b""
            if line[3:4] != b"-":
                return line.rstrip(b"\r\n")

    def cmd(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def _send(r: Raw, rcpts: list[bytes], body: bytes) -> bytes:
    assert r.cmd(b"EHLO h.test").startswith(b"250 ")
    assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
    for rc in rcpts:
        assert r.cmd(b"RCPT TO:<" + rc + b">").startswith(b"250 ")
    assert r.cmd(b"DATA").startswith(b"354")
    r.sock.sendall(body + b"\r\n.\r\n")
    return r.reply()


# -- 1. recipients: a limit, one copy in memory, one file on disk ------------------------------


def test_recipient_limit_is_452_past_one_hundred(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
        codes = [r.cmd(f"RCPT TO:<r{i}@other.example>".encode())[:9] for i in range(101)]
        assert codes[:100] == [b"250 2.1.5"] * 100
        assert codes[100] == b"452 4.5.3"
    finally:
        r.close()


def test_many_recipients_share_one_file_and_one_copy_in_memory(sink: Sink) -> None:
    body = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 1000  # 1 MB
    rcpts = [f"r{i}@other.example".encode() for i in range(100)]
    r = Raw(sink.port)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert _send(r, rcpts, body).startswith(b"250 2.0.0")
        sink.wait_for("r99@other.example", 1, IO_TIMEOUT)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        r.close()
    msgs = sink.messages()
    assert len(msgs) == 100
    inodes = {os.stat(m.path).st_ino for m in msgs}
    assert len(inodes) == 1  # hard links: stored once
    assert os.stat(msgs[0].path).st_nlink == 100
    # a copy per recipient would be >= 100 MB; the received lines, their join and the stored body are a few
    assert peak < 12 * len(body)


# -- 2. the PROXY listener has the same size limit --------------------------------------------------


def test_proxy_listener_refuses_a_body_over_the_size_limit(sink: Sink) -> None:
    header = proxy_header("203.0.113.30", "192.0.2.25", message_id="<big@x>", domain="client.example",
                          secret=sink.proxy_secret)
    r = Raw(sink.proxy_port, header)
    try:
        assert r.greeting.startswith(b"220 ")
        big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * (sink.size_limit // 1000 + 10)
        assert _send(r, [b"jane@client.example"], big)[:9] == b"552 5.3.4"
    finally:
        r.close()
    assert sink.messages() == []


# -- 3. the PROXY listener trusts only the simulator's MTA --------------------------------------


def _refused(port: int, first: bytes) -> bool:
    """The sink hangs up without a greeting."""
    sock = socket.create_connection(("127.0.0.1", port), IO_TIMEOUT)
    try:
        sock.sendall(first)
        return sock.makefile("rb").read() == b""
    finally:
        sock.close()


def test_proxy_header_must_be_signed_with_the_sinks_secret(sink: Sink) -> None:
    args = ("203.0.113.30", "192.0.2.25")
    kw = {"message_id": "<m@x>", "domain": "client.example", "kind": "dsn"}
    assert _refused(sink.proxy_port, proxy_header(*args, **kw))  # unsigned
    assert _refused(sink.proxy_port, proxy_header(*args, **kw, secret=b"x" * 32))  # another secret
    signed = proxy_header(*args, **kw, secret=sink.proxy_secret)
    forged = signed.replace(bytes([203, 0, 113, 30]), bytes([203, 0, 113, 31]), 1)  # another client IP
    assert forged != signed and _refused(sink.proxy_port, forged)
    assert _refused(sink.proxy_port, b"PROXY TCP4 203.0.113.30 127.0.0.1 5000 25\r\n")  # v1 text
    r = Raw(sink.proxy_port, signed)
    try:
        assert r.greeting.startswith(b"220 ")
    finally:
        r.close()
    assert sink.messages() == []


def test_session_records_nobody_reads_stay_bounded(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sink_module, "MAX_RECORDS", 20)
    r = Raw(sink.proxy_port, proxy_header("203.0.113.30", secret=sink.proxy_secret))
    try:
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        for i in range(60):
            ctx = xmailsim_value(MailContext(f"<m{i}@x>", 1, 0, "client.example", "msg", f"t{i}"))
            assert r.cmd(b"MAIL FROM:<a@x.example> XMAILSIM=" + ctx.encode()).startswith(b"250 ")
            assert r.cmd(b"RSET").startswith(b"250 ")
    finally:
        r.close()
    assert sink.records_waiting == 20
    assert sink.pop_record("t59") is not None and sink.pop_record("t0") is None


def test_session_records_are_freed_with_their_connection(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.net.sink_handler as handler_module

    monkeypatch.setattr(handler_module, "RECORD_GRACE", 0.05)
    r = Raw(sink.proxy_port, proxy_header("203.0.113.30", secret=sink.proxy_secret))
    try:
        assert r.cmd(b"EHLO h.test").startswith(b"250 ")
        for i in range(5):
            ctx = xmailsim_value(MailContext(f"<m{i}@x>", 1, 0, "client.example", "msg", f"t{i}"))
            assert r.cmd(b"MAIL FROM:<a@x.example> XMAILSIM=" + ctx.encode()).startswith(b"250 ")
            assert r.cmd(b"RSET").startswith(b"250 ")
        assert sink.records_waiting == 5  # kept while the connection lives (the wire transport reads them)
    finally:
        r.close()
    end = time.monotonic() + IO_TIMEOUT
    while sink.records_waiting and time.monotonic() < end:
        time.sleep(0.02)
    assert sink.records_waiting == 0


# -- 4. header injection -------------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"HELO evil\rReceived-SPF: pass", b"EHLO a\x00b",
                                  b"MAIL FROM:<a\rReceived-SPF: pass@x.example>",
                                  b"RCPT TO:<jane\r@client.example>"])
def test_bare_cr_or_nul_in_a_command_is_501(sink: Sink, line: bytes) -> None:
    r = Raw(sink.port)
    try:
        if not line.startswith((b"HELO", b"EHLO")):
            assert r.cmd(b"EHLO h.test").startswith(b"250 ")
            if line.startswith(b"RCPT"):
                assert r.cmd(b"MAIL FROM:<a@x.example>").startswith(b"250 ")
        assert r.cmd(line)[:9] == b"501 5.5.2"
        assert r.cmd(b"NOOP").startswith(b"250 ")  # the conversation stays in step
    finally:
        r.close()


def test_client_values_are_escaped_in_the_stored_headers(tmp_path: Path) -> None:
    import email.parser

    head = stored_head("a\r\nReceived-SPF: pass@x.example", "none (mx: no data) helo=h\rReceived-SPF: pass;")
    msg = email.parser.BytesParser().parsebytes(head + b"Subject: s\n\nbody\n")
    assert msg.get_all("Received-SPF") == ["none (mx: no data) helo=h\\x0dReceived-SPF: pass;"]
    assert msg["Return-Path"] == "<a\\x0d\\x0aReceived-SPF: pass@x.example>"


# -- 5. reply injection -----------------------------------------------------------------------------


def test_folded_message_id_never_reaches_the_reply(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        body = b"Message-ID: <a@b>\r\n 550 5.0.0 injected\r\nSubject: s\r\n\r\nhi"
        reply = _send(r, [b"jane@client.example"], body)
        assert reply.startswith(b"250 2.0.0 OK queued as <sink-")
        assert b"injected" not in reply
        assert r.cmd(b"NOOP") == b"250 2.0.0 OK"  # not the injected line
    finally:
        r.close()


# -- 6. a non-UTF-8 recipient --------------------------------------------------------------------


def test_summary_holds_a_recipient_that_is_not_utf8(sink: Sink) -> None:
    r = Raw(sink.port)
    try:
        assert _send(r, [b"\xff@x.example"], b"Subject: s\r\n\r\nhi").startswith(b"250 ")
    finally:
        r.close()
    doc = orjson.loads(orjson.dumps(sink.summary()))
    assert list(doc["mailboxes"]) == ["\\xff@x.example"]


# -- 7. folder names; all recipients or none ----------------------------------------------------


def test_folder_names_are_bounded_and_collision_free() -> None:
    names = [mailbox_dirname(a) for a in ("a/b@x", "a\\b@x", "a\x00b@x", "a_b@x", "A_B@X")]
    assert len(set(names)) == 4 and names[3] == names[4] == "a_b@x"
    long_a, long_b = "x" * 200 + "a@x.example", "x" * 200 + "b@x.example"
    assert mailbox_dirname(long_a) != mailbox_dirname(long_b)
    for a in ("é" * 150 + "@x.example", long_a, "../../etc@x", ".hidden@x", ""):
        n = mailbox_dirname(a)
        assert 0 < len(n.encode()) <= 255 and "/" not in n and not n.startswith(".")


def test_an_overlong_address_is_stored_under_a_bounded_name(sink: Sink) -> None:
    rcpt = ("é" * 150 + "@other.example").encode()
    r = Raw(sink.port)
    try:
        assert _send(r, [rcpt], b"Subject: s\r\n\r\nhi").startswith(b"250 2.0.0")
    finally:
        r.close()
    (m,) = sink.messages()
    assert m.path.parent.parent.name == mailbox_dirname(rcpt.decode())


def test_a_message_is_stored_for_all_recipients_or_none(sink: Sink) -> None:
    (sink.maildir / "bob@client.example").write_bytes(b"a file where a folder belongs")
    r = Raw(sink.port)
    try:
        reply = _send(r, [b"jane@client.example", b"bob@client.example"], b"Subject: s\r\n\r\nhi")
        assert reply == b"451 4.3.0 Requested action aborted: local error in processing"
        assert r.cmd(b"NOOP") == b"250 2.0.0 OK"
    finally:
        r.close()
    assert sink.messages() == []
    assert list(sink.maildir.glob("*/new/*")) == [] and list(sink.maildir.glob("*/tmp/*")) == []
    assert sink.store.box("jane@client.example").inbox == 0
    assert sink.store.box("jane@client.example").messages == []


# -- 8. symlinks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["box", "new"])
def test_a_symlink_inside_the_maildir_is_never_followed(sink: Sink, tmp_path: Path, where: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    box = sink.maildir / "jane@client.example"
    if where == "box":
        box.symlink_to(outside)
    else:
        (box / "tmp").mkdir(parents=True)
        (box / "new").symlink_to(outside)
    r = Raw(sink.port)
    try:
        assert _send(r, [b"jane@client.example"], b"Subject: s\r\n\r\nhi")[:9] == b"451 4.3.0"
    finally:
        r.close()
    assert list(outside.rglob("*")) == []
    assert sink.messages() == []


# -- 11. stale tmp/ files ---------------------------------------------------------------------------


def test_stale_tmp_files_are_removed_at_start(tmp_path: Path) -> None:
    tmp = tmp_path / "mail" / "jane@client.example" / "tmp"
    junk_tmp = tmp_path / "mail" / "jane@client.example" / ".Junk" / "tmp"
    tmp.mkdir(parents=True)
    junk_tmp.mkdir(parents=True)
    own = tmp / "5.M0123456789abcdef.mx.mailsim.test"  # a killed sink's half-written file
    own_junk = junk_tmp / "7.Mfedcba9876543210.mx.mailsim.test"
    old = tmp / "1700000000.P1.other-host"
    fresh = tmp / "1700000001.P2.other-host"
    for p in (own, own_junk, old, fresh):
        p.write_bytes(b"partial")
    long_ago = time.time() - 40 * 3600
    os.utime(old, (long_ago, long_ago))
    with Sink(maildir=tmp_path / "mail") as s:
        assert s.stale_removed == 3
    assert sorted(p.name for p in tmp.iterdir()) == [fresh.name]
    assert list(junk_tmp.iterdir()) == []


def test_maildir_writer_is_reusable_on_its_own(tmp_path: Path) -> None:
    md = Maildir(tmp_path / "m")
    try:
        paths = md.deliver_all(["a@x.example", "b@x.example"], "junk", "<m@x>", 60, b"H: 1\n", b"\nbody\n")
    finally:
        md.close()
    assert [p.relative_to(tmp_path / "m").parts[:3] for p in paths] == [
        ("a@x.example", ".Junk", "new"), ("b@x.example", ".Junk", "new")]
    assert paths[0].read_bytes() == b"H: 1\n\nbody\n" and paths[0].name.startswith("60.M")


def test_remembered_hook_tables_are_what_aiosmtpd_would_build(sink: Sink) -> None:
    """The per-class cache of aiosmtpd's per-connection hook lookup (a speed-up) changes nothing."""
    import asyncio
    import inspect

    import aiosmtpd.smtp as aiosmtpd_smtp

    from simulator.net.sink_smtp import SinkSMTP

    assert not isinstance(aiosmtpd_smtp.inspect, type(inspect))  # the stand-in is in place
    loop = asyncio.new_event_loop()
    try:
        protos = [SinkSMTP(sink.handler, hostname="h.test", loop=loop) for _ in range(2)]
        want = {getattr(f, "__auth_mechanism_name__", n.replace("auth_", "").replace("__", "-"))
                for obj in (protos[1], sink.handler) for n, f in inspect.getmembers(obj) if n.startswith("auth_")}
        for p in protos:
            assert set(p._auth_methods) == want and want  # LOGIN, PLAIN: aiosmtpd's own
            assert all(m.method.__self__ is p for m in p._auth_methods.values() if m.is_builtin)
            assert p._ehlo_hook_ver == "new"
            assert p._handle_hooks["DATA"].__self__ is sink.handler
            # the dir() stand-in: the same smtp_*/handle_* tables as the builtin dir() gives
            assert p._smtp_methods == {m.replace("smtp_", ""): getattr(p, m) for m in dir(p) if m.startswith("smtp_")}
            assert p._handle_hooks == {m.replace("handle_", ""): getattr(sink.handler, m)
                                       for m in dir(sink.handler) if m.startswith("handle_")}
            assert {"DATA", "EHLO", "QUIT", "RSET"} <= set(p._smtp_methods)
        assert aiosmtpd_smtp.dir(protos[0]) is aiosmtpd_smtp.dir(protos[1])  # remembered per class
        protos[0].smtp_XTEST = protos[0].smtp_NOOP  # an instance's own attribute counts, as with dir()
        assert "smtp_XTEST" in aiosmtpd_smtp.dir(protos[0]) and "smtp_XTEST" not in aiosmtpd_smtp.dir(protos[1])
        assert aiosmtpd_smtp.dir(loop) == dir(loop)  # anything else: the builtin
    finally:
        loop.close()
