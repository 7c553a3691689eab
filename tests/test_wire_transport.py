"""Memory and wire transports give the same run: outcomes, reasons, simulated times, mailboxes.

Every scenario in ``scenarios/`` (globbed at test time) plus the DESIGN example
runs twice — in memory, and over real SMTP to the loopback sink with DNS from
the loopback server — and the ``--json`` results must be identical.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import socket
from pathlib import Path

import pytest

from simulator.engine.run import simulate
from simulator.engine.sim import Engine
from simulator.net.receiver import DROPPED
from simulator.net.sink import proxy_header
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.model import Batch, CompactInvoices, Scenario
from simulator.transport.base import Attempt
from simulator.transport.wire import WireTransport, parse_reply, wire_transport

ROOT = Path(__file__).resolve().parent.parent
MAX_INVOICES = 2000
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
    wire = simulate(scn, transport=wire_transport).to_json()
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
    wire = simulate(scn, transport=wire_transport).to_json()
    assert wire == mem
    reasons = {r["reason"] for inv in mem["invoices"] for r in inv["recipients"]}
    # the scenario exercises what it claims to
    want = {"unknown-recipient", "retries-exhausted", "remote-permfail", "spf-pass-junk", "spf-softfail-junk"}
    assert want <= reasons
    assert mem["mailboxes"]["billing@acme.example"]["bounces"] > 0


def test_wire_attempt_replies_and_maildir(tmp_path: Path) -> None:
    scn = dataclasses.replace(load_scenario_text(FAULTY, "wire-faults.yaml"), faults=())
    eng = Engine(scn, transport=lambda e: WireTransport(e, maildir=tmp_path))
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
        sock.sendall(proxy_header("203.0.113.9", "192.0.2.1", message_id="<p@x>", now=5, domain="a.example"))
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
    res = simulate(scn, transport=lambda e: WireTransport(e, maildir=tmp_path))
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
