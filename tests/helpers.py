"""Small scenario builders shared by the engine and CLI tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from textwrap import dedent, indent

from simulator.engine.result import RunResult
from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

BASE = """\
schema: mailsim/1
name: {name}
start: 2026-11-02T09:00:00Z
seed: 3
{extra}
organization:
  configuration: {{invoice_email_from: ar@acme.example}}
  branches: [{{id: b1}}, {{id: b2}}]
users:
{users}
contacts:
  - {{id: c1, email: jane@client.example}}
  - {{id: c2, email: bob@client.example}}
properties:
  - {{id: p1, branch: b1, contacts: [{{contact: c1, email_invoice: true}}]}}
  - {{id: p2, branch: b2, contacts: [{{contact: c2, email_invoice: true}}]}}
batches:
{batches}
dns:
  records:
    - {{name: acme.example, type: TXT, value: "{spf}"}}
    - {{name: client.example, type: MX, value: "10 mx.client.example"}}
    - {{name: mx.client.example, type: A, value: 192.0.2.25}}
mailboxes:
{mailboxes}
timeline:
{timeline}
"""

SYNCED_USER = "  - {id: u1, email: ar@acme.example, sync: {provider: microsoft365, synced: -10d}}"


def scenario(
    *,
    name: str = "t",
    users: str = SYNCED_USER,
    batches: str = "  - {id: B1, invoices: [{id: INV-1, property: p1}]}",
    timeline: str = "  - {at: +1h, complete_batch: B1}",
    mailboxes: str = "  - {domain: client.example}",
    spf: str = "v=spf1 include:spf.protection.outlook.com ip4:198.51.100.10 -all",
    extra: str = "",
) -> Scenario:
    text = BASE.format(name=name, users=users, batches=batches, timeline=timeline, mailboxes=mailboxes, spf=spf,
                       extra=dedent(extra).strip())
    return load_scenario_text(text, path=f"<{name}>")


def run(**kw: str) -> RunResult:
    return simulate(scenario(**kw))


def block(text: str, spaces: int = 2) -> str:
    return indent(dedent(text).strip("\n"), " " * spaces)


def wait_until(check: Callable[[], bool], polls: int = 600, pause: float = 0.05) -> bool:
    """Poll a bounded number of times (no wall-clock assertion): for tests that watch another process."""
    for _ in range(polls):
        if check():
            return True
        time.sleep(pause)
    return check()
