"""The varied workload of DESIGN §6 / issue 12: a million invoice emails that differ.

The uniform workload (:mod:`benchmarks.scenarios`) lets the engine share one SMTP
transaction among a whole cohort. Real invoicing runs do not look like that; this one
is shaped after one:

- ``n`` invoices in ``n / 1,000`` compact batches of 1,000, completed every
  ``BATCH_EVERY_S`` seconds (1,000 batches ≈ two days); each batch belongs to one branch
  and lists ``PROPS_PER_BATCH`` properties of its own (``n / 50`` properties in all:
  20,000 at 1M), each property with its own contact;
- the contacts' addresses spread over ``len(DOMAINS)`` (40) recipient domains; ~3 % are
  invalid (a space, a bad character, a missing ``@`` part) and ~1 % are unknown to the
  receiving server (550 5.1.1);
- 60 branches in 10 regions; 50 branches have their own sender, the other 10 share
  their region's sender (3 regions have one) or fall back to the Configuration's
  (``billing@``, SMTP path); one branch sender has no sync (SMTP path, SPF pass); one
  region sender's domain publishes only Microsoft's include while the user syncs with
  Google (softfail: junk); the other senders sync with Microsoft 365 or Google;
- senders' tokens expire staggered over the run: a third log in in time (refreshed),
  a third expire and resync later, a third change their password and resync later;
- greylisting on 4 domains, a mailbox quota that fills on one, probabilistic tempfails
  on one, disconnects everywhere (1 %), an outage of one domain for 8 % of the run.

Everything is placed relative to the batch count, so 10k, 100k and 1M have the same
shape and differ in volume (and in run length). :func:`scenario_text` writes the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario

BATCH_SIZE = 1000
PROPS_PER_BATCH = 20  # 50 invoices per property and batch
BATCH_EVERY_S = 173  # 1,000 batches ≈ 48 h
DOMAINS = tuple(f"client-{i:02d}.example" for i in range(40))
GREYLIST_DOMAINS = DOMAINS[3:7]
QUOTA_DOMAIN = DOMAINS[9]
QUOTA = 40  # of the 50 invoices a property's contact receives, 10 find the mailbox full
TEMPFAIL_DOMAIN = DOMAINS[11]
OUTAGE_DOMAIN = DOMAINS[17]
REGIONS = 10
BRANCHES = 60
REGION_SENDERS = (0, 2, 4)  # regions with an Invoicing Email From of their own
SMTP_BRANCH = 5  # the branch sender with no sync (SMTP path)
JUNK_REGION = 2  # its sender's domain publishes only Microsoft's include; the user syncs with Google
PLATFORM_IP = "198.51.100.10"


@dataclass(frozen=True, slots=True)
class Varied:
    """What a generated varied scenario contains (for the report and the smoke tests)."""

    emails: int
    batches: int
    properties: int
    invalid_contacts: int
    unknown_contacts: int
    span_s: int  # from the first to the last batch completion


def shared_branch(b: int) -> bool:
    """Branches without a sender of their own (they use their region's, or Configuration's)."""
    return b % 6 == 0


# the branch of batch k is BRANCH_ORDER[k % BRANCHES]: the first ten already mix every kind of sender
# (region senders, the junk region, Configuration's fallback, the SMTP branch, synced branch senders)
_FIRST = (0, 5, 12, 6, 1, 2, 3, 4, 7, 8)
BRANCH_ORDER = _FIRST + tuple(b for b in range(BRANCHES) if b not in _FIRST)


def region_of(b: int) -> int:
    return b % REGIONS


def branch_sender(b: int) -> str:
    return f"ar-b{b:02d}@acme.example"


def region_sender(r: int) -> str:
    return f"ar-r{r}@region{r}.acme.example"


def contact_address(c: int) -> tuple[str, str]:
    """(address, kind) of contact ``c``: kind is ok, invalid or unknown."""
    domain = DOMAINS[c % len(DOMAINS)]
    if c % 37 == 11:
        return f"client {c}@{domain}", "invalid"  # a space
    if c % 53 == 7:
        return f"client{c}@{domain} x", "invalid"  # trailing junk
    if c % 97 == 13:
        return f"client{c}(at){domain}", "invalid"  # no @
    if c % 89 == 3:
        return f"gone{c}@{domain}", "unknown"
    return f"client{c}@{domain}", "ok"


def shape(emails: int) -> Varied:
    if emails <= 0 or emails % BATCH_SIZE:
        raise ValueError(f"emails ({emails}) must be a positive multiple of {BATCH_SIZE}")
    batches = emails // BATCH_SIZE
    props = batches * PROPS_PER_BATCH
    kinds = [contact_address(c)[1] for c in range(props)]
    return Varied(emails, batches, props, kinds.count("invalid"), kinds.count("unknown"),
                  (batches - 1) * BATCH_EVERY_S)


def _dur(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return sign + ("".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if v) or "0s")


def _senders() -> list[tuple[str, str, str | None]]:
    """(user id, address, provider or None for the SMTP path) for every sender, in a fixed order."""
    out: list[tuple[str, str, str | None]] = [("bill", "billing@acme.example", None)]
    for r in REGION_SENDERS:
        out.append((f"ur{r}", region_sender(r), "google" if r == JUNK_REGION else "microsoft365"))
    for b in range(BRANCHES):
        if not shared_branch(b):
            out.append((f"ub{b:02d}", branch_sender(b), None if b == SMTP_BRANCH
                        else ("google" if b % 2 else "microsoft365")))
    return out


def scenario_text(emails: int) -> str:
    """The varied workload as a ``mailsim/1`` YAML document."""
    v = shape(emails)
    span = max(v.span_s, BATCH_EVERY_S)
    lifetime = 90 * 86400
    out: list[str] = [
        "schema: mailsim/1",
        f"name: varied-{emails}",
        f"description: issue 12 varied workload, {emails} invoice emails that differ.",
        "start: 2026-11-02T00:00:00Z",
        "seed: 12",
        "tags: [benchmark, varied]",
        f"platform: {{sending_ips: [{PLATFORM_IP}], helo: out.platform.example}}",
        "organization:",
        "  configuration: {invoice_email_from: billing@acme.example}",
        "  regions:",
    ]
    for r in range(REGIONS):
        extra = f", invoicing_email_from: {region_sender(r)}" if r in REGION_SENDERS else ""
        out.append(f"    - {{id: r{r}{extra}}}")
    out.append("  branches:")
    for b in range(BRANCHES):
        extra = "" if shared_branch(b) else f", invoicing_email_from: {branch_sender(b)}"
        out.append(f"    - {{id: b{b:02d}, region: r{region_of(b)}{extra}}}")
    out.append("users:")
    timeline: list[tuple[int, str]] = []
    for k, (uid, address, provider) in enumerate(_senders()):
        if provider is None:
            out.append(f"  - {{id: {uid}, email: {address}}}")
            continue
        # staggered: the k-th sync sender's token dies at (k / senders) of the run (plus a little)
        expiry = (k * 7919) % 50 * span // 50 + BATCH_EVERY_S // 2
        refreshed = expiry - lifetime
        out.append(f"  - {{id: {uid}, email: {address}, sync: {{provider: {provider}, synced: {_dur(refreshed)}, "
                   f"last_login: {_dur(refreshed - 86400)}}}}}")
        fate = k % 3
        if fate == 0:  # logs in while the token is alive: refreshed, never blocked
            timeline.append((max(0, expiry - span // 10), f"login: {uid}"))
        elif fate == 1:  # expires, resyncs a tenth of the run later
            timeline.append((expiry + span // 10, f"resync: {uid}"))
        else:  # changes the password a little before expiry, resyncs later
            timeline.append((max(0, expiry - span // 20), f"change_password: {uid}"))
            timeline.append((expiry + span // 15, f"resync: {uid}"))
    out.append("contacts:")
    for c in range(v.properties):
        address, _kind = contact_address(c)
        out.append(f'  - {{id: c{c}, email: "{address}"}}')
    out.append("properties:")
    for k in range(v.batches):
        branch = BRANCH_ORDER[k % BRANCHES]
        for j in range(PROPS_PER_BATCH):
            p = k * PROPS_PER_BATCH + j
            out.append(f"  - {{id: p{p}, branch: b{branch:02d}, contacts: [{{contact: c{p}, email_invoice: true}}]}}")
    out.append("batches:")
    for k in range(v.batches):
        props = ", ".join(f"p{k * PROPS_PER_BATCH + j}" for j in range(PROPS_PER_BATCH))
        out.append(f"  - {{id: B{k:04d}, invoices: {{count: {BATCH_SIZE}, properties: [{props}]}}}}")
    out += [
        "dns:",
        "  records:",
        '    - {name: acme.example, type: TXT, value: "v=spf1 include:spf.protection.outlook.com '
        f'include:_spf.google.com ip4:{PLATFORM_IP} -all"}}',
    ]
    for r in REGION_SENDERS:
        inc = "include:spf.protection.outlook.com ~all" if r == JUNK_REGION else (
            "include:spf.protection.outlook.com include:_spf.google.com -all")
        out.append(f'    - {{name: region{r}.acme.example, type: TXT, value: "v=spf1 {inc}"}}')
    for i, d in enumerate(DOMAINS):
        out.append(f'    - {{name: {d}, type: MX, value: "10 mx.{d}"}}')
        out.append(f"    - {{name: mx.{d}, type: A, value: 192.0.2.{10 + i}}}")
    out.append("mailboxes:")
    users: dict[str, list[str]] = {d: [] for d in DOMAINS}
    for c in range(v.properties):
        address, kind = contact_address(c)
        if kind == "ok":
            local, _, domain = address.partition("@")
            users[domain].append(local)
    for d in DOMAINS:
        extra = ""
        if d in GREYLIST_DOMAINS:
            extra = ", greylist: 5m"
        elif d == QUOTA_DOMAIN:
            extra = f", quota: {QUOTA}"
        out.append(f"  - {{domain: {d}, users: [{', '.join(users[d])}]{extra}}}")
    for k in range(v.batches):
        timeline.append((k * BATCH_EVERY_S, f"complete_batch: B{k:04d}"))
    out.append("timeline:")
    for at, what in sorted(timeline, key=lambda x: x[0]):
        out.append(f"  - {{at: {_dur(at)}, {what}}}")
    out += [
        "faults:",
        f"  - {{kind: tempfail, stage: rcpt, probability: 0.05, target: {TEMPFAIL_DOMAIN}}}",
        "  - {kind: disconnect, stage: data, probability: 0.01}",
        f"  - {{at: {_dur(span * 2 // 5)}, for: {_dur(max(60, span * 2 // 25))[1:]}, kind: outage, "
        f"target: {OUTAGE_DOMAIN}}}",
        "expect:",
        "  - {count: {email_status: In Queue}, equals: 0, at: end}",
    ]
    return "\n".join(out) + "\n"


def build(emails: int) -> Scenario:
    return load_scenario_text(scenario_text(emails), f"<varied-{emails}>")
