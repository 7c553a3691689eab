"""The cached sender decision must not come back after a token expiry (a gap the mutation run showed).

A queue group keeps its last sender decision under the key (engine version, zone version, DNS
epoch); a decision on the SMTP path has no expiry of its own (``valid_until`` None), so only the
key retires it. A token's expiry bumps the version like any sender change. Were it to *reset* the
counter instead (the surviving mutant ``version = 1``), a later key could equal an old one and the
old decision would be reused: here the Configuration's sender changes between two batches of one
branch, with a token dying before each, and the second batch must go out from the new sender.
"""

from __future__ import annotations

import json

from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario_text

SCENARIO = """\
schema: mailsim/1
name: decision-cache-after-expiry
start: 2026-11-02T09:00:00Z
seed: 1
until: +6h
organization:
  configuration: {invoice_email_from: smtp@greenacre.example}
  branches: [{id: lakeside}]
users:
  - {id: smtp, email: smtp@greenacre.example}
  - {id: billing, email: billing@greenacre.example}
  - {id: x, email: x@greenacre.example, sync: {provider: google, synced: -89d23h30m}}
  - {id: y, email: y@greenacre.example, sync: {provider: google, synced: -89d21h30m}}
contacts: [{id: c1, email: c1@maple.example}]
properties: [{id: p1, branch: lakeside, contacts: [{contact: c1, email_invoice: true}]}]
batches:
  - {id: NOV1, invoices: {count: 1, properties: [p1]}}
  - {id: NOV2, invoices: {count: 1, properties: [p1]}}
dns:
  records:
    - {name: greenacre.example, type: TXT, value: "v=spf1 ip4:198.51.100.0/24 include:_spf.google.com -all"}
    - {name: maple.example, type: MX, value: "10 mx.maple.example"}
    - {name: mx.maple.example, type: A, value: 192.0.2.10}
timeline:
  - {at: +1h, complete_batch: NOV1}
  - {at: +2h, set_invoicing_email_from: {configuration: true, email: billing@greenacre.example}}
  - {at: +3h, complete_batch: NOV2}
"""


def test_a_token_expiry_never_brings_back_an_old_sender_decision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.jsonl"
    res = simulate(load_scenario_text(SCENARIO, "decision.yaml"), trace=trace)
    expired = [(e["at"], e["user"]) for e in map(json.loads, trace.read_text().splitlines())
               if e.get("event") == "sync.expired"]
    # the two expiries the case is built around: one before each decision
    assert expired == [("2026-11-02T09:30:00Z", "x"), ("2026-11-02T11:30:00Z", "y")]
    sent = [(v["id"], v["sender"], v["email_status"], v["sent_at"]) for v in res.to_json()["invoices"]]
    assert sent == [
        ("NOV1-1", "smtp@greenacre.example", "Sent", "2026-11-02T10:00:00Z"),
        ("NOV2-1", "billing@greenacre.example", "Sent", "2026-11-02T12:00:00Z"),
    ]
