"""Who sends an invoice email (guide Step 2) and by which path (Step 3).

Evaluated each time the queue worker tries, never cached across setting
changes, so fixing Administration settings drains the queue (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from simulator.domain.contacts import domain_of, normalize_email
from simulator.domain.entities import Branch, Organization, Platform, Provider, Region, User
from simulator.domain.sync import SyncState, verdict

#: RFC 7208 check_host for (client IP, MAIL FROM, HELO) → (result, explanation): the caller's DNS.
SpfCheck = Callable[[str, str, str], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SenderAddress:
    """The Invoicing Email From that applies and where it came from (branch, region, Configuration)."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderDecision:
    """Who would send a group's emails right now, by which path, or why nobody can.

    ``address`` is the sender as the platform uses it once matched to a user: trimmed
    and lower-case (§8), so the envelope sender and the bounce mailbox agree. While no
    user matches it is the address as configured, for the explanation.
    """

    address: str | None
    source: str  # branch:<id> | region:<id> | configuration
    user: str | None
    path: str  # "sync" | "smtp" | "blocked"
    provider: str | None = None
    client_ips: tuple[str, ...] = ()
    helo: str
    reason: str | None = None  # the blocking reason; None = the gate is open
    notes: tuple[str, ...] = ()
    evidence: str
    spf: tuple[tuple[str, str, str], ...] = ()  # (ip, result, explanation) on the SMTP path
    valid_until: int | None = None  # the decision may change by itself then (token expiry)


@dataclass(frozen=True, slots=True)
class SenderWorld:
    """What a sender decision reads: Administration settings, users and their syncs, the sending side."""

    organization: Organization
    branches: Mapping[str, Branch]
    regions: Mapping[str, Region]
    users: Mapping[str, User]
    sync: Mapping[str, SyncState | None]
    token_lifetime: int
    platform: Platform
    providers: Mapping[str, Provider]
    smtp_path_requires_spf: bool


def _not_configured_evidence(branch_ids: tuple[str, ...]) -> str:
    if len(branch_ids) > 1:
        return (f"the batch spans branches {' / '.join(branch_ids)}: a multi-branch batch is sent from"
                " Configuration's Invoice Email From alone, and it is not set")
    return f"no Invoicing Email From on {branch_ids[0] if branch_ids else 'branch'}, its region, or Configuration"


def provider_helo(provider: Provider | None, platform_helo: str) -> str:
    """The HELO name a provider's MTA uses (its own, else ``mail.<spf_include>``, else the platform's)."""
    if provider is not None and provider.helo:
        return provider.helo
    if provider is not None and provider.spf_include:
        return f"mail.{provider.spf_include}"
    return platform_helo


def decide_sender(world: SenderWorld, branch_ids: tuple[str, ...], now: int, spf: SpfCheck) -> SenderDecision:
    """Guide Steps 2 and 3 in order: the address, its user, the user's sync, then SPF on the SMTP path."""
    sa = resolve_sender_address(branch_ids, world.organization, world.branches, world.regions)
    helo = world.platform.helo
    if sa.address is None:
        return SenderDecision(address=None, source=sa.source, user=None, path="blocked", helo=helo,
                              reason="sender-not-configured", notes=sa.notes,
                              evidence=_not_configured_evidence(branch_ids))
    user = find_sender_user(sa.address, world.users)
    if user is None:
        return SenderDecision(address=sa.address, source=sa.source, user=None, path="blocked", helo=helo,
                              reason="sender-not-a-user", notes=sa.notes,
                              evidence=f"{sa.address} (from {sa.source}) is not the email of an active user")
    address = normalize_email(sa.address)
    st = world.sync.get(user.id)
    path = sending_path(st, now, world.token_lifetime)
    notes = sa.notes + path.notes
    if path.kind == "blocked":
        return SenderDecision(address=address, source=sa.source, user=user.id, path="blocked",
                              provider=st.provider if st else None, helo=helo, reason=path.reason, notes=notes,
                              evidence=path.evidence)
    if path.kind == "sync":
        assert st is not None
        prov = world.providers.get(st.provider)
        return SenderDecision(address=address, source=sa.source, user=user.id, path="sync", provider=st.provider,
                              client_ips=prov.sending_ips if prov else (), helo=provider_helo(prov, helo),
                              notes=notes, evidence=path.evidence, valid_until=path.valid_until)
    ips = world.platform.sending_ips
    spf_rows: list[tuple[str, str, str]] = []
    if world.smtp_path_requires_spf:
        results: dict[str, str] = {}
        for ip in ips:
            res, expl = spf(ip, address, helo)
            results[ip] = res
            spf_rows.append((ip, res, expl))
        reason = spf_gate_reason(results)
        if reason is not None:
            bad = "; ".join(f"{ip}: {res} ({expl})" for ip, res, expl in spf_rows if res != "pass")
            return SenderDecision(address=address, source=sa.source, user=user.id, path="blocked", client_ips=ips,
                                  helo=helo, reason=reason, notes=notes,
                                  evidence=f"SPF of {domain_of(address)} for the platform IPs: {bad}",
                                  spf=tuple(spf_rows))
    return SenderDecision(address=address, source=sa.source, user=user.id, path="smtp", client_ips=ips, helo=helo,
                          notes=notes, evidence=path.evidence, spf=tuple(spf_rows))
