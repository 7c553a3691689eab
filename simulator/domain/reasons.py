"""Reason codes (DESIGN §4, contract) and what the guide says about each.

One table serves the engine (which code blocks), ``explain`` (step, check, fix)
and ``docs/reasons.md`` (a test keeps the page and this table in step), so a
code can never exist without its guide step and remedy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    """One reason code with its kind, the guide steps it belongs to, what to check and the fix."""

    code: str
    kind: str  # "status" | "blocking" | "info" | "warning" | "skip" | "refused" | "delivery"
    where: str  # the status/outcome it explains
    steps: tuple[int, ...]  # guide steps (0: after the email left the platform)
    title: str
    check: str
    fix: str


REASONS: dict[str, ReasonInfo] = {
    r.code: r
    for r in (
        ReasonInfo(
            "no-invoice-email-contact", "status", "N/A", (1, 5),
            "No active contact on the property has Email Invoice selected",
            "Step 5: open the property's Contacts section and look for a contact with Email Invoice.",
            "Select Email Invoice for the customer's billing contact (and make sure that contact is active)"
            " before the batch is completed.",
        ),
        ReasonInfo(
            "batch-draft", "status", "Pending", (1,),
            "The invoice batch is still Draft, so no email has been generated",
            "Step 1: add the Invoice Batch Status and Email Status columns in Invoicing > Invoices.",
            "Complete the batch; its emails then move to In Queue.",
        ),
        ReasonInfo(
            "sender-not-configured", "blocking", "In Queue", (2,),
            "No Invoicing Email From on the branch or region, and no Invoice Email From on Configuration",
            "Step 2: Administration > Organization (branch/region) and Administration > Configuration.",
            "Set Invoice Email From on Configuration (or Invoicing Email From on the branch/region).",
        ),
        ReasonInfo(
            "sender-not-a-user", "blocking", "In Queue", (2,),
            "The sender address belongs to no active user",
            "Step 2: the Invoicing Email From address must be the email of an active user.",
            "Point Invoicing Email From at an active user's address, or (re)activate that user.",
        ),
        ReasonInfo(
            "multi-branch-uses-configuration", "info", "In Queue", (2,),
            "The batch spans several branches, so Configuration's Invoice Email From is the sender",
            "Step 2 tip: a batch with invoices of several branches ignores branch settings.",
            "Batch invoices per branch, or make the Configuration sender the one you want.",
        ),
        ReasonInfo(
            "sync-token-expired", "blocking", "In Queue", (3,),
            "The sender's mailbox-sync token expired (no login within its lifetime)",
            "Step 3: User Management > Users > the sender: sync status and last login.",
            "The sender must re-sync the mailbox (a login after expiry does not revive the token);"
            " then log in at least every 90 days.",
        ),
        ReasonInfo(
            "sync-password-changed", "blocking", "In Queue", (3,),
            "The synced account's password changed after the last sync, which breaks the sync",
            "Step 3: the sender's sync status on the User screen.",
            "The sender re-syncs the mailbox under User Settings; queued emails then go out.",
        ),
        ReasonInfo(
            "sync-provider-unsupported", "warning", "In Queue", (3,),
            "The sync provider is neither Microsoft 365 nor Google Workspace: the SMTP option is used",
            "Step 3: unsupported providers need the SMTP option with SPF and DNS validation.",
            "Remove the sync and publish SPF for the platform's sending IPs,"
            " or move to a supported provider.",
        ),
        ReasonInfo(
            "sender-spf-not-authorized", "blocking", "In Queue", (3,),
            "SMTP path: the sender's domain SPF does not authorise the platform's sending IPs",
            "Step 3 note / Email Authentication Requirements: look up the sender domain's SPF TXT record.",
            "Add the platform's sending IPs (or its include) to the sender domain's SPF record.",
        ),
        ReasonInfo(
            "recipient-email-invalid", "skip", "skipped", (4,),
            "The contact's email is not a valid plain address (spaces, unsupported characters, syntax)",
            "Step 4: Contacts > the contact > Email field.",
            "Delete the contents of the Email field and re-enter the address by hand.",
        ),
        ReasonInfo(
            "recipient-contact-inactive", "skip", "skipped", (4,),
            "The contact is inactive, so it is not emailed",
            "Step 4: Contacts > the contact: is it active?",
            "Reactivate the contact, or give Email Invoice to an active contact.",
        ),
        ReasonInfo(
            "duplicate-email-rejected", "refused", "timeline", (4,),
            "The new email address is already used by another contact (active or inactive)",
            "Step 4: Contacts search list, clear the Active filter, filter by Email.",
            "Use the existing contact, or change/remove the address on the other contact first.",
        ),
        ReasonInfo(
            "no-sync-to-resync", "refused", "timeline", (3,),
            "The user has no email sync to re-authorise, so the re-sync was refused",
            "Step 3: User Management > Users > the sender: is an email sync set up at all?",
            "Set up the sync first (a re-sync only re-authorises an existing one), or keep the SMTP path"
            " and authorise the platform's sending IPs in the sender domain's SPF record.",
        ),
        ReasonInfo(
            "billing-contact-not-emailed", "warning", "N/A", (5,),
            "The property's billing contact does not have Email Invoice selected",
            "Step 5: the property's Contacts section, Primary/Billing/Email Invoice checkboxes.",
            "Select Email Invoice for the billing contact if they should receive invoices.",
        ),
        ReasonInfo(
            "no-deliverable-recipient", "status", "Sent", (4, 5),
            "Every recipient was skipped: the email left the queue but went to nobody",
            "Steps 4-5: each email-invoice contact's address and active flag.",
            "Fix the contacts' addresses or activate them, then resend the invoice.",
        ),
        ReasonInfo(
            "spf-fail-rejected", "delivery", "bounced", (0, 3),
            "The recipient's server rejected the message: SPF fail for the sending IP (550 5.7.23)",
            "The bounce in the sender's inbox; the sender domain's SPF record.",
            "Authorise the sending IPs in the sender domain's SPF record.",
        ),
        ReasonInfo(
            "unknown-recipient", "delivery", "bounced", (0, 4),
            "The recipient's server does not know the mailbox (550 5.1.1)",
            "The bounce in the sender's inbox; the contact's address.",
            "Correct the contact's email address with the customer.",
        ),
        ReasonInfo(
            "mailbox-full", "delivery", "deferred", (0,),
            "The recipient's mailbox is over quota (452 4.2.2); the platform retries",
            "The customer's mailbox provider.",
            "The customer frees space; retries deliver it before the queue lifetime ends.",
        ),
        ReasonInfo(
            "greylisted", "delivery", "deferred", (0,),
            "The recipient's server greylists first attempts (451 4.7.1)",
            "Nothing is wrong: the retry goes through once the greylist delay has passed.",
            "Wait for the retry, or ask the recipient to allow-list the sending IPs.",
        ),
        ReasonInfo(
            "rate-limited", "delivery", "deferred", (0,),
            "The recipient's server throttles the sending IP (421 4.7.28): too many messages in its window",
            "The recipient's email host's sending limits, and how many invoices go to that domain at once.",
            "Nothing is lost: retries go through as the window frees up. For large runs, spread the batches"
            " or ask the recipient's provider to raise the limit for the sending IPs.",
        ),
        ReasonInfo(
            "remote-outage", "delivery", "deferred", (0,),
            "The recipient's server is down or refusing connections (421 4.3.2)",
            "The recipient's email host.",
            "Nothing to change in the platform: retries continue until the queue lifetime ends.",
        ),
        ReasonInfo(
            "remote-tempfail", "delivery", "deferred", (0,),
            "The recipient's server answered a temporary failure (451 4.3.0)",
            "The recipient's email host.",
            "Retries continue; contact the recipient's email administrator if it persists.",
        ),
        ReasonInfo(
            "remote-permfail", "delivery", "bounced", (0,),
            "The recipient's server refused the message permanently (550 5.3.0)",
            "The bounce in the sender's inbox.",
            "Contact the recipient's email administrator.",
        ),
        ReasonInfo(
            "remote-disconnect", "delivery", "deferred", (0,),
            "The recipient's server dropped the connection mid-transaction",
            "The recipient's email host.",
            "Retries continue automatically.",
        ),
        ReasonInfo(
            "mx-lookup-failed", "delivery", "deferred", (0,),
            "The recipient domain's mail server could not be found in DNS",
            "The recipient domain's MX/A records.",
            "Check the customer's address domain for typos; the customer fixes their DNS.",
        ),
        ReasonInfo(
            "spf-temperror-deferred", "delivery", "deferred", (0, 3),
            "The receiver could not evaluate SPF (DNS error) and deferred (451 4.7.24)",
            "The sender domain's DNS servers.",
            "Make the sender domain's DNS reachable; retries deliver it.",
        ),
        ReasonInfo(
            "message-too-big", "delivery", "bounced", (0,),
            "The recipient's server refused the message as larger than its size limit (552 5.3.4)",
            "The bounce in the sender's inbox; the invoice's attachments.",
            "Send a smaller invoice (fewer or compressed attachments) or ask the recipient to raise the limit.",
        ),
        ReasonInfo(
            "retries-exhausted", "delivery", "bounced", (0,),
            "Temporary failures lasted past the maximum queue lifetime; the message bounced",
            "The bounce in the sender's inbox and the deferral reasons before it.",
            "Fix the cause of the deferrals and resend the invoice.",
        ),
    )
}

# what a receiver did with the message by its SPF result: spf-softfail-junk, spf-permerror-rejected, …
_SPF_VARIANTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("junk", "junk", "Delivered to the junk folder: the receiver files SPF {r} as junk",
     "Ask the customer to check junk/spam; look up the sender domain's SPF record.",
     "Authorise the sending IPs in SPF (pass) so receivers file it in the inbox."),
    ("deferred", "deferred", "The receiver defers SPF {r} (451 4.7.24); the platform retries",
     "The sender domain's SPF record and DNS reachability.",
     "Fix the sender domain's SPF (or its DNS) so receivers get a definite pass."),
    ("rejected", "bounced", "The receiver rejects SPF {r} (550 5.7.23)",
     "The bounce in the sender's inbox; the sender domain's SPF record.",
     "Fix the sender domain's SPF record so the sending IPs pass."),
)
for _res in ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"):
    for _suffix, _where, _title, _check, _fix in _SPF_VARIANTS:
        _code = f"spf-{_res}-{_suffix}"
        REASONS.setdefault(_code, ReasonInfo(_code, "delivery", _where, (0, 3), _title.format(r=_res), _check, _fix))

def reason_info(code: str) -> ReasonInfo | None:
    return REASONS.get(code)
