"""The fault kinds table (issue 10 item 3): one entry per kind, and every part acts on each kind.

Adding a fault kind is a one-place change in ``domain/faults.py``'s ``FAULT_SPECS``; these
tests fail when a kind lacks its entry, its receiver reply or DNS answer, or when the
memory transport's one-transaction shortcut would share what the table says it must not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from simulator.chaos.generate import DNS_KINDS, SMTP_KINDS
from simulator.domain.dns import DnsRecord
from simulator.domain.entities import MailboxDomain
from simulator.domain.faults import (
    DNS_FAULT_KINDS,
    FAULT_KINDS,
    FAULT_SPECS,
    SMTP_FAULT_KINDS,
    SMTP_STAGES,
    Fault,
    FaultSpec,
    spec_of,
)
from simulator.net.receiver import FAULT_REPLY, ReceivingServer
from simulator.net.zone import DNS_FAULT_RCODE, Zone
from simulator.scenario.errors import ScenarioError
from simulator.scenario.loader import load_scenario_text
from simulator.transport.base import Attempt, run_transaction
from simulator.transport.memory import MemoryTransport

DOMAIN = "client.example"


def _server(*faults: Fault, mailboxes: tuple[MailboxDomain, ...] = ()) -> ReceivingServer:
    return ReceivingServer(mailboxes, faults, seed=3, spf=lambda now, ip, mf, helo: ("pass", "ok"))


def _attempt(mid: str = "<m1@x>") -> Attempt:
    return Attempt(now=60, message_id=mid, attempt=1, client_ip="198.51.100.10", helo="out.example",
                   mail_from="ar@acme.example", domain=DOMAIN, mx_host="mx." + DOMAIN, mx_ip="192.0.2.25",
                   rcpts=("jane@" + DOMAIN,), render=lambda: b"")


def test_every_kind_has_one_consistent_entry() -> None:
    assert tuple(FAULT_SPECS) == FAULT_KINDS
    assert set(FAULT_KINDS) == SMTP_FAULT_KINDS | DNS_FAULT_KINDS
    assert not SMTP_FAULT_KINDS & DNS_FAULT_KINDS
    for kind, spec in FAULT_SPECS.items():
        assert spec.kind == kind and spec_of(kind) is spec
        if spec.protocol == "smtp":
            assert spec.stage in SMTP_STAGES and spec.effect in ("reply", "delay") and spec.dns_answer is None
            assert (spec.reply is not None) == (spec.effect == "reply")
        else:
            assert spec.stage is None and spec.effect == "dns" and spec.dns_answer in DNS_FAULT_RCODE
    with pytest.raises(KeyError):
        spec_of("meteor")


@pytest.mark.parametrize("kind", sorted(SMTP_FAULT_KINDS))
def test_the_receiver_plays_every_smtp_kind(kind: str) -> None:
    spec = FAULT_SPECS[kind]
    res = run_transaction(_server(Fault(0, kind, delay=90)), _attempt())
    if spec.effect == "delay":
        assert res.delay == 90 and res.replies[0].code == 250
        return
    assert spec.reply is not None
    reply = FAULT_REPLY[kind]
    assert (reply.code, reply.enhanced, reply.text) == spec.reply
    assert res.replies == (reply,) and res.folder is None


@pytest.mark.parametrize("kind", sorted(DNS_FAULT_KINDS))
def test_the_zone_answers_every_dns_kind(kind: str) -> None:
    zone = Zone([DnsRecord(name=DOMAIN, type="TXT", value="v=spf1 -all")])
    assert zone.lookup(DOMAIN, "TXT").rcode == "NOERROR"
    got = zone.lookup(DOMAIN, "TXT", now=5, faults=(Fault(0, kind, target=DOMAIN),))
    assert got.rcode == DNS_FAULT_RCODE[FAULT_SPECS[kind].dns_answer or ""]


def test_the_loader_and_chaos_take_their_kinds_from_the_table() -> None:
    assert (*SMTP_KINDS, *DNS_KINDS) == FAULT_KINDS
    base = "schema: mailsim/1\nname: k\nstart: 2026-11-02T09:00:00Z\nfaults:\n  - {kind: %s}\n"
    for kind in FAULT_KINDS:
        (fault,) = load_scenario_text(base % kind, "<k>").faults
        assert fault.kind == kind
    with pytest.raises(ScenarioError, match="fault kind"):
        load_scenario_text(base % "meteor", "<k>")


@pytest.fixture
def counting_kind() -> Iterator[str]:
    """A kind that keeps counts (a rate limit, say), added to the table for one test."""
    FAULT_SPECS["counted"] = FaultSpec("counted", "smtp", "rcpt", "delay", counts=True)
    try:
        yield "counted"
    finally:
        del FAULT_SPECS["counted"]


def test_a_kind_without_receiver_behaviour_is_refused() -> None:
    with pytest.raises(KeyError):
        _server(Fault(0, "meteor"))
    FAULT_SPECS["ghost"] = FaultSpec("ghost", "smtp", "rcpt", "reply", None)  # a reply kind with no reply
    try:
        with pytest.raises(ValueError, match="no behaviour"):
            _server(Fault(0, "ghost"))
    finally:
        del FAULT_SPECS["ghost"]


def test_shareable_follows_the_table(counting_kind: str) -> None:
    """Probability 1 and no counts: one transaction for a cohort; otherwise one per message."""
    sure = Fault(0, "slow", delay=30)
    assert _server(sure).shareable(DOMAIN, 60)
    assert not _server(replace(sure, probability=0.5)).shareable(DOMAIN, 60)
    assert _server(replace(sure, target="other.example", probability=0.5)).shareable(DOMAIN, 60)
    assert not _server(Fault(0, counting_kind, delay=5)).shareable(DOMAIN, 60)
    assert not _server(mailboxes=(MailboxDomain(DOMAIN, quota=3),)).shareable(DOMAIN, 60)
    # the memory transport neither shares nor memoises a transaction a counting fault could tell apart
    mem = MemoryTransport(_server(Fault(0, counting_kind, delay=5)), state_key=lambda: 0)
    assert mem._key(_attempt()) is None
    results = mem.attempt_many(_attempt(), ["<m1@x>", "<m2@x>"])
    assert len(results) == 2 and not hasattr(results, "result")
    shared = MemoryTransport(_server(sure), state_key=lambda: 0)
    assert shared._key(_attempt()) is not None
    assert hasattr(shared.attempt_many(_attempt(), ["<m1@x>", "<m2@x>"]), "result")  # a Repeated
