"""Who sends an invoice email (guide Step 2) and by which path (Step 3).

Evaluated each time the queue worker tries, never cached across setting
changes, so fixing Administration settings drains the queue (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulator.domain.contacts import normalize_email
from simulator.domain.entities import Branch, Organization, Region, User
from simulator.domain.sync import SyncState, verdict


@dataclass(frozen=True, slots=True)
class SenderAddress:
    address: str | None
    source: str  # "branch:b1" | "region:north" | "configuration"
    notes: tuple[str, ...] = ()


def resolve_sender_address(
    branch_ids: tuple[str, ...],
    org: Organization,
    branches: Mapping[str, Branch],
    regions: Mapping[str, Region],
) -> SenderAddress:
    """Branch → region → Configuration; a multi-branch batch always uses Configuration."""
    cfg = org.configuration.invoice_email_from or None
    if len(branch_ids) > 1:
        return SenderAddress(cfg, "configuration", ("multi-branch-uses-configuration",))
    if branch_ids:
        b = branches.get(branch_ids[0])
        if b is not None:
            if b.invoicing_email_from:
                return SenderAddress(b.invoicing_email_from, f"branch:{b.id}")
            r = regions.get(b.region) if b.region else None
            if r is not None and r.invoicing_email_from:
                return SenderAddress(r.invoicing_email_from, f"region:{r.id}")
    return SenderAddress(cfg, "configuration")


def find_sender_user(address: str, users: Mapping[str, User]) -> User | None:
    """The active user whose email is ``address``, compared case-insensitively."""
    key = normalize_email(address)
    for u in users.values():
        if u.active and normalize_email(u.email) == key:
            return u
    return None


@dataclass(frozen=True, slots=True)
class SendingPath:
    """How the platform would send: via a synced provider, or SMTP from its own IPs."""

    kind: str  # "sync" | "smtp" | "blocked"
    reason: str | None  # blocking reason when kind == "blocked"
    notes: tuple[str, ...]
    evidence: str
    valid_until: int | None  # the verdict may change by itself at this time (token expiry)


def sending_path(state: SyncState | None, now: int, lifetime: int) -> SendingPath:
    if state is None:
        return SendingPath("smtp", None, (), "no email sync: SMTP path", None)
    v = verdict(state, now, lifetime)
    if v.reason == "sync-provider-unsupported":
        return SendingPath("smtp", None, ("sync-provider-unsupported",), v.evidence, None)
    if v.ok:
        return SendingPath("sync", None, (), v.evidence, v.expires_at)
    return SendingPath("blocked", v.reason, (), v.evidence, None)


def spf_gate_reason(results: Mapping[str, str]) -> str | None:
    """SMTP path: every platform IP must get ``pass`` for the sender's domain."""
    if all(r == "pass" for r in results.values()):
        return None
    return "sender-spf-not-authorized"
