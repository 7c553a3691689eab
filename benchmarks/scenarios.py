"""Scenario generators for the DESIGN §6 performance workload.

The workload: ``n`` invoice emails as ``batches`` compact batches of ``n / batches``
invoices each; 30 properties (round-robin inside a batch), each with one
``email_invoice`` contact at one of 3 recipient domains that have mailboxes for them;
batches completed one a minute by the timeline; and one sender token that expires
mid-run and is resynced later, so the emails of that sender's batches block
(``sync-token-expired``) in between and then drain.

Senders:

- branches ``north-1`` and ``north-2`` are in region ``north`` whose Invoicing Email From
  (``ar@acme.example``) belongs to user ``nora``, synced with Microsoft 365; her token
  expires at the middle batch's completion and she resyncs ``BLOCK_FOR`` later;
- branch ``south-1`` has no Invoicing Email From and no region sender, so it uses the
  Configuration's ``billing@acme.example`` (user ``bill``, no sync: SMTP path, SPF pass).

Everything else is at its default (``queue_poll`` 1m, ``stuck_after`` 1h, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

DOMAINS = ("client-a.example", "client-b.example", "client-c.example")
BRANCHES = ("north-1", "north-2", "south-1")
PROPERTIES_PER_BRANCH = 10
BATCH_EVERY_MIN = 1  # one batch completes a minute
BLOCK_FOR_MIN = 120  # at 1,000 batches the region sender is blocked for two hours before the resync


def block_for(batches: int) -> int:
    """The blocked window scales with the run (12 % of its batches), so every size has one shape."""
    return max(1, -(-BLOCK_FOR_MIN * batches // 1000)) * BATCH_EVERY_MIN
TOKEN_LIFETIME_MIN = 90 * 24 * 60


@dataclass(frozen=True, slots=True)
class Workload:
    """What a generated scenario contains, for the benchmark report and the smoke tests."""

    emails: int
    batches: int
    per_batch: int
    expiry_min: int  # minutes after start when the region sender's token expires
    resync_min: int  # minutes after start when the region sender resyncs
    blocked_batches: tuple[str, ...]  # batches of the region sender completed while the token is dead
    last_batch_min: int

    @property
    def blocked_emails(self) -> int:
        return len(self.blocked_batches) * self.per_batch


def batch_id(k: int) -> str:
    return f"B{k:04d}"


def property_id(branch: int, j: int) -> str:
    return f"p-{BRANCHES[branch]}-{j:02d}"


def contact_index(branch: int, j: int) -> int:
    return branch * PROPERTIES_PER_BRANCH + j


def _dur(minutes: int) -> str:
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m")) if v) or "0m"


def workload(emails: int, batches: int = 1000) -> Workload:
    if emails <= 0 or batches <= 0 or emails % batches:
        raise ValueError(f"emails ({emails}) must be a positive multiple of batches ({batches})")
    mid = (batches // 2) * BATCH_EVERY_MIN
    blocked = tuple(
        batch_id(k) for k in range(batches)
        if k % len(BRANCHES) != 2 and mid <= k * BATCH_EVERY_MIN < mid + block_for(batches)
    )
    return Workload(emails, batches, emails // batches, mid, mid + block_for(batches), blocked,
                    (batches - 1) * BATCH_EVERY_MIN)


def scenario_text(emails: int, batches: int = 1000) -> str:
    """The §6 workload as a ``mailsim/1`` YAML document (compact batches)."""
    w = workload(emails, batches)
    # token expires at max(synced, last_login) + 90d = start + expiry_min
    synced = f"-{_dur(TOKEN_LIFETIME_MIN - w.expiry_min)}"
    out: list[str] = [
        "schema: mailsim/1",
        f"name: bench-{emails}",
        f"description: DESIGN §6 workload, {emails} invoice emails in {batches} batches, one token expiry mid-run.",
        "start: 2026-11-02T00:00:00Z",
        "seed: 6",
        "tags: [benchmark]",
        "platform: {sending_ips: [198.51.100.10], helo: out.platform.example}",
        "organization:",
        "  configuration: {invoice_email_from: billing@acme.example}",
        "  regions:",
        "    - {id: north, invoicing_email_from: ar@acme.example}",
        "    - {id: south}",
        "  branches:",
        "    - {id: north-1, region: north}",
        "    - {id: north-2, region: north}",
        "    - {id: south-1, region: south}",
        "users:",
        f"  - {{id: nora, email: ar@acme.example, sync: {{provider: microsoft365, synced: {synced}, "
        f"last_login: -100d}}}}",
        "  - {id: bill, email: billing@acme.example}",
        "contacts:",
    ]
    for b in range(len(BRANCHES)):
        for j in range(PROPERTIES_PER_BRANCH):
            c = contact_index(b, j)
            out.append(f"  - {{id: c{c:02d}, email: user{c:02d}@{DOMAINS[c % len(DOMAINS)]}}}")
    out.append("properties:")
    for b, branch in enumerate(BRANCHES):
        for j in range(PROPERTIES_PER_BRANCH):
            c = contact_index(b, j)
            out.append(f"  - {{id: {property_id(b, j)}, branch: {branch}, "
                       f"contacts: [{{contact: c{c:02d}, email_invoice: true}}]}}")
    out.append("batches:")
    for k in range(batches):
        b = k % len(BRANCHES)
        props = ", ".join(property_id(b, j) for j in range(PROPERTIES_PER_BRANCH))
        out.append(f"  - {{id: {batch_id(k)}, invoices: {{count: {w.per_batch}, properties: [{props}]}}}}")
    out += [
        "dns:",
        "  records:",
        '    - {name: acme.example, type: TXT, value: "v=spf1 include:spf.protection.outlook.com '
        'ip4:198.51.100.10 -all"}',
    ]
    for i, d in enumerate(DOMAINS):
        out.append(f'    - {{name: {d}, type: MX, value: "10 mx.{d}"}}')
        out.append(f"    - {{name: mx.{d}, type: A, value: 192.0.2.{20 + i}}}")
    out.append("mailboxes:")
    for i, d in enumerate(DOMAINS):
        users = ", ".join(f"user{c:02d}" for c in range(len(BRANCHES) * PROPERTIES_PER_BRANCH)
                          if c % len(DOMAINS) == i)
        out.append(f"  - {{domain: {d}, users: [{users}]}}")
    out.append("timeline:")
    for k in range(batches):
        out.append(f"  - {{at: +{_dur(k * BATCH_EVERY_MIN)}, complete_batch: {batch_id(k)}}}")
    out.append(f"  - {{at: +{_dur(w.resync_min)}, resync: nora}}")
    out += [
        "expect:",
        "  - {count: {email_status: In Queue}, equals: 0, at: end}",
    ]
    if w.blocked_batches:
        first = f"{w.blocked_batches[0]}-{1:0{len(str(w.per_batch))}d}"
        out.append(f"  - {{invoice: {first}, email_status: In Queue, reason: sync-token-expired, "
                   f"at: +{_dur(w.resync_min - 1)}}}")
        out.append(f"  - {{invoice: {first}, email_status: Sent, at: +{_dur(w.resync_min)}}}")
    return "\n".join(out) + "\n"


def build(emails: int, batches: int = 1000) -> Scenario:
    return load_scenario_text(scenario_text(emails, batches), f"<bench-{emails}>")
