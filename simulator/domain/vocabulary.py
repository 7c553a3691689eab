"""The closed vocabularies a scenario file may use (DESIGN §3, §4), defined once.

Statuses and outcomes come from the enums in ``statuses``; reason codes from the
reason table, so the loader, the engine and the docs cannot disagree on a word.
"""

from __future__ import annotations

from simulator.domain.statuses import BatchStatus, EmailStatus, Outcome

SPF_RESULTS: tuple[str, ...] = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
SPF_ACTIONS: tuple[str, ...] = ("inbox", "junk", "reject", "defer")
SYNC_PROVIDERS_SUPPORTED: tuple[str, ...] = ("microsoft365", "google")
RECIPIENT_ROLES: tuple[str, ...] = ("email_invoice", "billing", "primary")
EMAIL_STATUSES: tuple[str, ...] = tuple(s.value for s in EmailStatus)
BATCH_STATUSES: tuple[str, ...] = tuple(s.value for s in BatchStatus)
RECIPIENT_OUTCOMES: tuple[str, ...] = tuple(s.value for s in Outcome)
#: Every reason code a scenario's ``expect:`` may name (DESIGN §4).
REASON_CODES: tuple[str, ...] = (
    "no-invoice-email-contact",
    "batch-draft",
    "sender-not-configured",
    "sender-not-a-user",
    "multi-branch-uses-configuration",
    "sync-token-expired",
    "sync-password-changed",
    "sync-provider-unsupported",
    "sender-spf-not-authorized",
    "recipient-email-invalid",
    "recipient-contact-inactive",
    "duplicate-email-rejected",
    "no-sync-to-resync",
    "billing-contact-not-emailed",
    "unknown-recipient",
    "mailbox-full",
    "greylisted",
    "rate-limited",
    "remote-outage",
    "remote-tempfail",
    "remote-permfail",
    "remote-disconnect",
    "mx-lookup-failed",
    "retries-exhausted",
    "no-deliverable-recipient",
    "message-too-big",
    # what a receiver did with the message by its SPF result and spf_policy action
    *(f"spf-{r}-{a}" for r in SPF_RESULTS for a in ("junk", "rejected", "deferred")),
)
