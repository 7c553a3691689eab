"""Memory and wire transports give the same run: outcomes, reasons, simulated times, mailboxes.

Every scenario in ``scenarios/`` (globbed at test time) plus the DESIGN example
runs twice — in memory, and over real SMTP to the loopback sink with DNS from
the loopback server — and the ``--json`` results must be identical.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import json
import smtplib
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from simulator.domain.entities import Batch, CompactInvoices
from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.engine.sim import Engine
from simulator.net.receiver import DROPPED
from simulator.net.sink import proxy_header
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.model import Scenario
from simulator.transport.base import Attempt
from simulator.transport.smtp_client import parse_reply
from simulator.transport.wire import WireTransport

ROOT = Path(__file__).resolve().parent.parent
MAX_INVOICES = 2000
#: Seconds a loopback DNS question may take before it is a timeout (temperror) in these comparisons:
#: the product's 1 s (DNS_TIMEOUT) is for real runs; on a loaded test machine a slow loopback reply
#: must not turn into a different result. Only ``unreachable``/``dns_timeout`` questions wait it out
#: (two in the whole corpus).
GENEROUS_DNS_TIMEOUT = 5.0


def generous(engine: Engine, **kw: Any) -> WireTransport:
    """The wire transport with a DNS deadline no load can reach (the results are compared, not timed)."""
    return WireTransport(engine, dns_timeout=GENEROUS_DNS_TIMEOUT, **kw)
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "scenarios").glob("*.yml"))


def _invoices(scn: Scenario) -> int:
    return sum(b.count for b in scn.batches)


def _shrunk(scn: Scenario, per_batch: int = 50) -> Scenario:
    """The scenario with each compact batch cut to ``per_batch`` invoices (same rules, less volume)."""

    def cut(b: Batch) -> Batch:
        if b.compact is None or b.compact.count <= per_batch:
            return b
        return dataclasses.replace(b, compact=CompactInvoices(per_batch, b.compact.properties))

    return dataclasses.replace(scn, batches=tuple(cut(b) for b in scn.batches))


def _compare(scn: Scenario) -> None:
    mem = simulate(scn).to_json()
    wire = simulate(scn, transport=generous).to_json()
    assert wire["invoices"] == mem["invoices"]
    assert wire["mailboxes"] == mem["mailboxes"]
    assert wire == mem


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenario_same_in_memory_and_on_the_wire(path: Path) -> None:
    scn = load_scenario(path)
    if _invoices(scn) > MAX_INVOICES:
        pytest.skip(f"{_invoices(scn)} invoices (> {MAX_INVOICES})")
    _compare(scn)


def test_design_example_same_in_memory_and_on_the_wire() -> None:
    scn = load_scenario(ROOT / "tests" / "data" / "design_example.yaml")
    _compare(_shrunk(scn))


FAULTY = """
schema: mailsim/1
name: wire-faults
start: 2026-11-02T09:00:00Z
seed: 11
until: +6d
platform: {sending_ips: [198.51.100.10], helo: out.platform.example}
organization:
  configuration: {invoice_email_from: billing@acme.example}
  branches: [{id: b1}]
users:
  - {id: u1, email: billing@acme.example}
contacts:
  - {id: c1, email: jane@client.example}
  - {id: c2, email: bob@client.example}
  - {id: c3, email: nobody@client.example}
  - {id: c4, email: amy@grey.example}
  - {id: c5, email: tom@soft.example}
  - {id: c6, email: kim@full.example}
properties:
  - id: p1
    branch: b1
    contacts:
      - {contact: c1, email_invoice: true}
      - {contact: c2, email_invoice: true}
      - {contact: c3, email_invoice: true}
      - {contact: c4, email_invoice: true}
      - {contact: c5, email_invoice: true}
      - {contact: c6, email_invoice: true}
batches:
  - {id: B1, invoices: {count: 20, properties: [p1]}}
dns:
  records:
    - {name: acme.example, type: TXT, value: "v=spf1 ip4:198.51.100.10 -all"}
    - {name: client.example, type: MX, value: "10 mx.client.example"}
    - {name: mx.client.example, type: A, value: 192.0.2.25}
    - {name: grey.example, type: MX, value: "10 mx.grey.example"}
    - {name: mx.grey.example, type: A, value: 192.0.2.26}
    - {name: soft.example, type: A, value: 192.0.2.27}
    - {name: full.example, type: MX, value: "10 mx.full.example"}
    - {name: mx.full.example, type: A, value: 192.0.2.28}
mailboxes:
  - {domain: client.example, users: [jane, bob]}
  - {domain: grey.example, greylist: 15m}
  - {domain: soft.example, spf_policy: {pass: junk}}
  - {domain: full.example, quota: 3}
timeline:
  - {at: +1h, complete_batch: B1}
  - {at: +3h, dns_set: {name: acme.example, type: TXT, value: "v=spf1 ~all"}}
faults:
  - {kind: tempfail, stage: rcpt, probability: 0.3, target: client.example}
  - {kind: disconnect, stage: data, probability: 0.2}
  - {kind: slow, stage: helo, probability: 0.5, delay: 90s}
  - {kind: permfail, stage: mail, probability: 0.05}
  - {at: +1h, for: 20m, kind: outage, target: grey.example}
  - {kind: tempfail, stage: connect, probability: 0.1, target: soft.example}
expect:
  - {mailbox: kim@full.example, inbox: 3}
"""


def test_faults_policies_and_dns_changes_same_on_the_wire() -> None:
    """Seeded faults at every stage, slow replies, greylisting, quota, junk, a DNS change mid-run."""
    scn = load_scenario_text(FAULTY, "wire-faults.yaml")
    mem = simulate(scn).to_json()
    wire = simulate(scn, transport=generous).to_json()
    assert wire == mem
    reasons = {r["reason"] for inv in mem["invoices"] for r in inv["recipients"]}
    # the scenario exercises what it claims to
    want = {"unknown-recipient", "retries-exhausted", "remote-permfail", "spf-pass-junk", "spf-softfail-junk"}
    assert want <= reasons
    assert mem["mailboxes"]["billing@acme.example"]["bounces"] > 0


def test_wire_attempt_replies_and_maildir(tmp_path: Path) -> None:
    scn = dataclasses.replace(load_scenario_text(FAULTY, "wire-faults.yaml"), faults=())
    eng = Engine(scn, transport=lambda e: generous(e, maildir=tmp_path))
    wt = eng.transport
    assert isinstance(wt, WireTransport)
    try:
        body = b"From: billing@acme.example\nTo: jane@client.example\nMessage-ID: <t1@x>\nSubject: t\n\nhello\n"
        att = Attempt(now=7200, message_id="<t1@x>", attempt=1, client_ip="198.51.100.10",
                      helo="out.platform.example", mail_from="billing@acme.example", domain="soft.example",
                      mx_host="soft.example", mx_ip="192.0.2.27", rcpts=("tom@soft.example",),
                      render=lambda: body)
        res = wt.attempt(att)
        assert res.replies[0].code == 250 and res.replies[0].enhanced == "2.0.0"
        assert res.folder == "junk" and res.spf_result == "pass"
        assert wt.sink is not None
        wt.sink.flush()  # the Maildir is written behind the SMTP replies
        files = list((tmp_path / "tom@soft.example" / ".Junk" / "new").iterdir())
        assert len(files) == 1
        msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert str(msg["Received-SPF"]).startswith("pass ")
        assert "client-ip=198.51.100.10" in str(msg["Received-SPF"])
        assert eng.store.box("tom@soft.example").junk == 1
        # unknown user
        att2 = dataclasses.replace(att, message_id="<t2@x>", domain="client.example", mx_host="mx.client.example",
                                   mx_ip="192.0.2.25", rcpts=("nobody@client.example",))
        res2 = wt.attempt(att2)
        assert (res2.replies[0].code, res2.replies[0].enhanced) == (550, "5.1.1")
    finally:
        wt.close()


def test_parse_reply() -> None:
    r = parse_reply(451, b"4.7.1 Greylisted, please try again later")
    assert (r.code, r.enhanced, r.text) == (451, "4.7.1", "Greylisted, please try again later")
    assert parse_reply(220, b"mx ready").enhanced == ""
    assert parse_reply(-1, b"") == DROPPED


def test_proxy_header_is_required_on_the_proxy_listener() -> None:
    from simulator.net.sink import Sink

    with Sink(proxy_timeout=3.0) as s:
        # no PROXY header (an ordinary client's first command): the sink hangs up without a greeting
        bare = socket.create_connection(("127.0.0.1", s.proxy_port), 10)
        bare.sendall(b"EHLO x.example\r\n")
        assert bare.makefile("rb").read() == b""
        bare.close()
        # with a header the same listener serves, and the simulated client IP is what the sink sees
        sock = socket.create_connection(("127.0.0.1", s.proxy_port), 10)
        sock.sendall(proxy_header("203.0.113.9", "192.0.2.1", message_id="<p@x>", now=5, domain="a.example",
                                  secret=s.proxy_secret))
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220 ")
        sock.sendall(b"EHLO h.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@a.example>\r\nDATA\r\n")
        lines = [f.readline()]
        while not lines[-1].startswith(b"354") and len(lines) < 20 and lines[-1]:
            lines.append(f.readline())
        assert lines[-1].startswith(b"354")
        assert b"250-XMAILSIM\r\n" in lines  # the per-transaction context parameter, PROXY listener only
        sock.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert f.readline().startswith(b"250 2.0.0")
        f.close()
        sock.close()
        (m,) = s.wait_for("u@a.example", 1, 10)
        assert m.client_ip == "203.0.113.9" and m.now == 5 and m.message_id == "<p@x>"


def test_wire_dsn_is_a_real_rfc3464_report_in_the_senders_maildir(tmp_path: Path) -> None:
    scn = load_scenario_text(FAULTY, "wire-faults.yaml")
    scn = dataclasses.replace(scn, faults=(), batches=(dataclasses.replace(scn.batches[0], compact=CompactInvoices(
        1, ("p1",))),))
    res = simulate(scn, transport=lambda e: generous(e, maildir=tmp_path))
    assert res.to_json()["mailboxes"]["billing@acme.example"]["bounces"] == 1
    (path,) = (tmp_path / "billing@acme.example" / "new").iterdir()
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Received-SPF"] is None  # §8: no SPF filing for a DSN
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = path.read_text()
    assert "Final-Recipient: rfc822; nobody@client.example" in status and "Status: 5.1.1" in status


REUSE = """
schema: mailsim/1
name: wire-reuse
start: 2026-11-02T09:00:00Z
seed: 23
until: +6d
platform: {sending_ips: [198.51.100.10, 198.51.100.11], helo: out.platform.example}
organization:
  configuration: {invoice_email_from: billing@acme.example}
  branches: [{id: b1}]
users:
  - {id: u1, email: billing@acme.example}
contacts:
  - {id: c1, email: jane@client.example}
  - {id: c2, email: bob@client.example}
  - {id: c3, email: amy@grey.example}
  - {id: c4, email: kim@full.example}
  - {id: c5, email: sam@down.example}
properties:
  - {id: p1, branch: b1, contacts: [{contact: c1, email_invoice: true}, {contact: c2, email_invoice: true}]}
  - {id: p2, branch: b1, contacts: [{contact: c3, email_invoice: true}, {contact: c1, email_invoice: true}]}
  - {id: p3, branch: b1, contacts: [{contact: c4, email_invoice: true}]}
  - {id: p4, branch: b1, contacts: [{contact: c5, email_invoice: true}]}
batches:
  - {id: B1, invoices: {count: 160, properties: [p1, p2, p3, p4]}}
  - {id: B2, invoices: {count: 40, properties: [p1, p2]}}
dns:
  records:
    - {name: acme.example, type: TXT, value: "v=spf1 ip4:198.51.100.0/24 -all"}
    - {name: client.example, type: MX, value: "10 mx.client.example"}
    - {name: mx.client.example, type: A, value: 192.0.2.25}
    - {name: grey.example, type: MX, value: "10 mx.grey.example"}
    - {name: mx.grey.example, type: A, value: 192.0.2.26}
    - {name: full.example, type: MX, value: "10 mx.full.example"}
    - {name: mx.full.example, type: A, value: 192.0.2.28}
    - {name: down.example, type: MX, value: "10 mx.down.example"}
    - {name: mx.down.example, type: A, value: 192.0.2.29}
mailboxes:
  - {domain: client.example, users: [jane, bob]}
  - {domain: grey.example, greylist: 10m}
  - {domain: full.example, quota: 25}
timeline:
  - {at: +1h, complete_batch: B1}
  - {at: +2h, complete_batch: B2}
faults:
  - {kind: tempfail, stage: rcpt, probability: 0.25, target: client.example}
  - {kind: disconnect, stage: rcpt, probability: 0.05}
  - {kind: tempfail, stage: data, probability: 0.15}
  - {kind: disconnect, stage: data, probability: 0.1}
  - {kind: permfail, stage: mail, probability: 0.03}
  - {kind: slow, stage: rcpt, probability: 0.2, delay: 2m}
  - {kind: tempfail, stage: helo, probability: 0.3, target: down.example}
  - {at: +2h, for: 30m, kind: outage, target: client.example}
"""


def test_reused_connections_draw_the_same_faults_as_memory(tmp_path: Path) -> None:
    """Hundreds of messages over pooled connections, probabilistic MAIL/RCPT/DATA faults, drops
    mid-stream: every per-message draw (and greylist/quota state) matches memory mode."""
    scn = load_scenario_text(REUSE, "wire-reuse.yaml")
    made: list[WireTransport] = []

    def factory(e: Engine) -> WireTransport:
        made.append(generous(e))
        return made[0]

    mem = simulate(scn, trace=tmp_path / "mem.jsonl").to_json()
    wire = simulate(scn, transport=factory, trace=tmp_path / "wire.jsonl").to_json()
    assert wire == mem
    events = [json.loads(line) for line in (tmp_path / "mem.jsonl").read_text().splitlines()[1:]]
    wire_events = [json.loads(line) for line in (tmp_path / "wire.jsonl").read_text().splitlines()[1:]]
    # every refusal and every delivery of every attempt, in order, at the same virtual times
    for kind in ("smtp.reply", "email.delivered", "email.deferred", "email.bounced"):
        assert [e for e in wire_events if e["event"] == kind] == [e for e in events if e["event"] == kind], kind
    reasons = {r["reason"] for inv in mem["invoices"] for r in inv["recipients"]}
    reasons |= {e["reason"] for e in events if e["event"] == "email.deferred"}
    # the draws fired at every stage, and both connection kinds were used
    assert {"remote-disconnect", "remote-tempfail", "remote-permfail", "greylisted", "mailbox-full",
            "remote-outage"} <= reasons
    stats = made[0].stats
    assert stats["fresh"] > 0  # down.example (HELO faults) and the outage window: a connection each
    assert stats["transactions"] - stats["fresh"] > 10 * (stats["connections"] - stats["fresh"])  # reuse


def test_a_pipelined_command_after_a_drop_never_reaches_the_receiver() -> None:
    """A RCPT-stage disconnect: the second RCPT (pipelined behind) must not touch greylisting."""
    scn = load_scenario_text(REUSE, "wire-reuse.yaml")
    scn = dataclasses.replace(scn, faults=tuple(
        dataclasses.replace(f, probability=1.0, target="grey.example", stage="rcpt", kind="disconnect", at=None,
                            for_=None) for f in scn.faults[:1]))
    eng = Engine(scn, transport=WireTransport)
    wt = eng.transport
    assert isinstance(wt, WireTransport)
    try:
        att = Attempt(now=60, message_id="<d1@x>", attempt=1, client_ip="198.51.100.10",
                      helo="out.platform.example", mail_from="billing@acme.example", domain="grey.example",
                      mx_host="mx.grey.example", mx_ip="192.0.2.26", rcpts=("amy@grey.example", "ann@grey.example"),
                      render=lambda: b"Subject: x\n\nbody\n")
        res = wt.attempt(att)
        assert res.replies == (DROPPED, DROPPED)
        assert wt.sink is not None
        assert wt.sink.receiver._greylist == {}
    finally:
        wt.close()


def test_a_stale_pooled_connection_is_retried_not_reported_as_a_drop(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.transport import wire

    monkeypatch.setattr(wire.SmtpClient, "alive", property(lambda self: True))  # do not notice the hang-up early
    scn = dataclasses.replace(load_scenario_text(FAULTY, "wire-faults.yaml"), faults=())
    eng = Engine(scn, transport=lambda e: generous(e, maildir=tmp_path))
    wt = eng.transport
    assert isinstance(wt, WireTransport) and wt.sink is not None and wt.sink.loop is not None
    try:
        att = Attempt(now=60, message_id="<s1@x>", attempt=1, client_ip="198.51.100.10",
                      helo="out.platform.example", mail_from="billing@acme.example", domain="client.example",
                      mx_host="mx.client.example", mx_ip="192.0.2.25", rcpts=("jane@client.example",),
                      render=lambda: b"Subject: x\n\nbody\n")
        assert wt.attempt(att).replies[0].code == 250
        # the sink hangs up on every connection (as an idle timeout would)
        sink = wt.sink
        loop = sink.loop
        assert loop is not None

        def hang_up() -> None:
            for conn in list(sink.handler.connections):
                assert conn.transport is not None
                conn.transport.close()

        loop.call_soon_threadsafe(hang_up)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(30)
        res = wt.attempt(dataclasses.replace(att, message_id="<s2@x>"))
        assert res.replies[0].code == 250
        assert wt.stats["stale_retries"] >= 1
        assert eng.store.box("jane@client.example").inbox == 2
    finally:
        wt.close()
    assert len(list((tmp_path / "jane@client.example" / "new").iterdir())) == 2


def test_attempt_many_sends_each_message_once_over_one_connection(tmp_path: Path) -> None:
    scn = dataclasses.replace(load_scenario_text(FAULTY, "wire-faults.yaml"), faults=())
    eng = Engine(scn, transport=lambda e: generous(e, maildir=tmp_path))
    wt = eng.transport
    assert isinstance(wt, WireTransport)
    try:
        bodies = {f"<m{i}@x>": f"Message-ID: <m{i}@x>\nSubject: {i}\n\n.leading dot {i}\n".encode() for i in range(5)}
        att = Attempt(now=60, message_id="<m0@x>", attempt=1, client_ip="198.51.100.10",
                      helo="out.platform.example", mail_from="billing@acme.example", domain="client.example",
                      mx_host="mx.client.example", mx_ip="192.0.2.25",
                      rcpts=("jane@client.example", "nobody@client.example"), render=lambda: bodies["<m0@x>"])
        # message ids that are not the engine's cannot be rendered except the first one's
        with pytest.raises(RuntimeError):
            wt.attempt_many(att, list(bodies))
        res = wt.attempt_many(att, ["<m0@x>"])
        assert [(r.code, r.enhanced) for r in res[0].replies] == [(250, "2.0.0"), (550, "5.1.1")]
    finally:
        wt.close()
    # m0 twice (once per call; the failed call stopped at m1), each file as sent
    paths = list((tmp_path / "jane@client.example" / "new").iterdir())
    assert len(paths) == 2
    for path in paths:
        assert path.read_bytes().endswith(b"\n.leading dot 0\n")  # dot-stuffed on the wire, unstuffed on disk


@pytest.mark.parametrize("invoice,sender,rcpts,now", [
    ("INV-1", "billing@acme.example", ("jane@client.example",), 0),
    ("B2-000001", "ar@acme.example", ("a@x.example", "b.c+d@y-z.example"), 86400 * 40 + 61),
    ("X.Y_Z-9", "A.B@C.EXAMPLE", ("Jane.Doe@Client.Example",), 3600),
    ("INV-" + "9" * 50, "billing@acme.example", ("jane@client.example",), 0),  # long: folded → slow path
    ("INV 1", "billing@acme.example", ("jane@client.example",), 0),  # space: slow path
    ("INV-1", "", ("jane@client.example",), 0),  # null sender: slow path
    ("INV-ü", "billing@acme.example", ("jane@client.example",), 0),
    ("INV-1", "billing@acme.example", tuple(f"user{i}@client.example" for i in range(4)), 0),  # long To:
])
def test_fast_invoice_is_render_invoice(invoice: str, sender: str, rcpts: tuple[str, ...], now: int) -> None:
    from datetime import UTC, datetime

    from simulator.net.messages import render_invoice
    from simulator.transport.smtp_client import fast_invoice

    kw = {"message_id": f"<{invoice}@mailsim.invalid>", "sender": sender, "rcpts": rcpts, "invoice": invoice,
          "start": datetime(2026, 11, 2, 9, tzinfo=UTC), "now": now}
    fast = fast_invoice(**kw)  # type: ignore[arg-type]
    if fast is not None:
        assert fast == render_invoice(**kw)  # type: ignore[arg-type]
    else:
        assert not invoice.startswith("INV-1") or sender == "" or len(rcpts) > 1 or " " in invoice


def test_xmailsim_round_trip_and_refusals() -> None:
    from simulator.net.sink import MailContext, Sink, parse_xmailsim, xmailsim_value

    ctx = MailContext("<Mixed.Case-ü@x>", 3, 86400, "client.example", "dsn", "a17")
    assert parse_xmailsim(xmailsim_value(ctx)) == ctx
    assert parse_xmailsim(xmailsim_value(ctx).lower()) == ctx  # aiosmtpd upper-cases parameters
    for bad in ("zz", "", "5B5D", xmailsim_value(ctx)[:-2]):
        with pytest.raises(ValueError):
            parse_xmailsim(bad)
    with Sink(proxy_timeout=3.0) as s:
        # the plain listener neither advertises nor accepts it
        c = smtplib.SMTP("127.0.0.1", s.port, timeout=30)
        try:
            c.ehlo("h.example")
            assert not c.has_extn("xmailsim")
            assert c.docmd("MAIL FROM:<a@b.example> XMAILSIM=" + xmailsim_value(ctx))[0] == 555
        finally:
            c.close()
        sock = socket.create_connection(("127.0.0.1", s.proxy_port), 30)
        sock.sendall(proxy_header("203.0.113.9", "192.0.2.1", secret=s.proxy_secret))
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220 ")
        sock.sendall(b"EHLO h.example\r\nMAIL FROM:<a@b.example> XMAILSIM=ZZ\r\n"
                     b"MAIL FROM:<a@b.example> XMAILSIM=" + xmailsim_value(ctx).encode() + b"\r\n"
                     b"RCPT TO:<u@a.example> XMAILSIM=00\r\nQUIT\r\n")
        lines = f.read().splitlines()
        f.close()
        sock.close()
        tail = [ln[:9] for ln in lines if not ln.startswith(b"250-") and not ln.startswith(b"220")]
        assert tail[1:] == [b"501 5.5.4", b"250 2.1.0", b"555 5.5.4", b"221 2.0.0"], lines


def test_network_benchmark_pieces_are_correct_at_tiny_sizes() -> None:
    """Smoke test of benchmarks/network.py: each measurement stores/answers everything (no timing)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks.network import bench_bare, bench_dns, bench_sink_clients, bench_wire

    w = bench_wire(7)
    assert w["ok"] and w["stored"] == 7 and w["stats"]["transactions"] == 7
    assert w["stats"]["connections"] == 1  # one pooled connection carried every message
    assert bench_bare(5)["ok"]
    s = bench_sink_clients(3, 4)
    assert s["ok"] and s["distinct_stored"] == s["on_disk"] == 12
    assert bench_dns(20)["ok"]


def test_network_benchmark_keeps_its_files_until_the_end_and_probes_the_disk(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Deletions slow this VM's file creation for minutes, so a whole network run removes its directories
    only after the last measurement, and the smtp-source comparison first waits for a settled disk."""
    import sys

    sys.path.insert(0, str(ROOT))
    import benchmarks.network as net

    monkeypatch.setattr(net, "_LATER", [])
    kept = tmp_path / "kept"
    kept.mkdir()
    net._remove(kept)
    later = net._LATER
    assert kept.exists() and later == [kept]
    monkeypatch.setattr(net, "_LATER", None)
    net._remove(kept)
    assert not kept.exists()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    keep: list[Path] = []
    probe = net.settle_disk(keep, wait=0.0, files=5)  # one probe, then out of time: never "settled" on one probe
    assert len(probe["file_us"]) == 1 and probe["file_us"][0] > 0 and probe["settled"] is False
    (probe_dir,) = keep
    assert len(list((probe_dir / "new").iterdir())) == 5  # created and renamed, not deleted
    monkeypatch.setattr(net, "SETTLED_US", 1e9)
    monkeypatch.setattr(net, "PROBE_EVERY", 0.0)
    settled = net.settle_disk(keep, wait=60.0, files=2)
    assert settled["settled"] is True and len(settled["file_us"]) == net.SETTLED_PROBES


SLOW_SCENARIOS = sorted((ROOT / "tests" / "data" / "chaos").glob("*.yaml"))


@pytest.mark.parametrize("until", ["+1d", "+1h5m"], ids=["after-the-delay", "inside-the-delay"])
def test_a_slow_reply_is_stored_on_the_wire_when_its_250_is_applied(tmp_path: Path, until: str) -> None:
    """A 10m slow fault: the sink's file has the ``email.delivered`` time (as the memory store does),
    and a run ending inside the delay stores no file and counts nothing, as in memory."""
    text = (ROOT / "tests" / "data" / "chaos" / "slow-reply-stored-before-delivered.yaml").read_text()
    scn = load_scenario_text(text.replace("until: +1d", f"until: {until}"), "slow.yaml")
    sinks = []

    def factory(e: Engine) -> WireTransport:
        wt = generous(e, maildir=tmp_path / "md")
        sinks.append(wt.sink)
        return wt

    mem = simulate(scn, trace=tmp_path / "mem.jsonl")
    wire = simulate(scn, transport=factory, trace=tmp_path / "wire.jsonl")
    assert wire.to_json() == mem.to_json()
    assert (tmp_path / "wire.jsonl").read_bytes().split(b"\n")[1:] == (tmp_path / "mem.jsonl").read_bytes().split(
        b"\n")[1:]
    (sink,) = sinks
    assert sink is not None
    stored = [(m.recipient, m.message_id, m.now) for m in sink.messages()]
    files = list((tmp_path / "md").rglob("new/*"))

    def held(res: RunResult) -> dict[str, list[tuple[str, int]]]:
        return {a: [(mid, t) for mid, _f, t in b.messages] for a, b in res.engine.store.boxes.items() if b.messages}

    boxes = held(wire)
    assert boxes == held(mem)
    if until == "+1d":
        delivered = [json.loads(ln) for ln in (tmp_path / "wire.jsonl").read_text().splitlines()[1:]]
        (d,) = [r for r in delivered if r["event"] == "email.delivered"]
        assert d["t"] == 3600 + 600
        assert stored == [("c1@maple.example", "<INV-1@mailsim.invalid>", d["t"])]
        assert boxes == {"c1@maple.example": [("<INV-1@mailsim.invalid>", d["t"])]}
        assert len(files) == 1
    else:
        assert wire.invoice("INV-1").recipients[0].outcome == "none"  # type: ignore[union-attr]
        assert stored == [] and files == [] and boxes == {}


@pytest.mark.parametrize("path", SLOW_SCENARIOS, ids=[p.name for p in SLOW_SCENARIOS])
def test_chaos_slow_findings_same_in_memory_and_on_the_wire(path: Path) -> None:
    _compare(load_scenario(path))


def test_the_plain_listener_stores_a_slow_message_after_its_real_wait(tmp_path: Path) -> None:
    """A standalone sink (wall clock) with a 1s DATA-stage slow fault stores the message as the 250
    goes out, after the wait, not when DATA arrived."""
    from simulator.net.sink import Sink

    text = """
schema: mailsim/1
name: plain-slow
start: 2026-11-02T09:00:00Z
faults:
  - {kind: slow, stage: data, delay: 1s}
"""
    with Sink(load_scenario_text(text, "plain-slow.yaml"), tmp_path) as s:
        c = smtplib.SMTP("127.0.0.1", s.port, local_hostname="client.test", timeout=30)
        try:
            c.ehlo()
            assert c.mail("a@good.example")[0] == 250 and c.rcpt("jane@client.example")[0] == 250
            before = s.clock()
            code, _ = c.data(b"Subject: hi\r\nMessage-ID: <slow@t>\r\n\r\nhello\r\n")
            assert code == 250
        finally:
            c.quit()
        (m,) = s.wait_for("jane@client.example", 1, 30)
        assert m.now >= before + 1
        assert s.store.box("jane@client.example").messages == [("<slow@t>", "inbox", m.now)]
