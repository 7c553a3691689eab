"""Who an invoice email goes to (guide Steps 4-5) and the Draft email status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulator.domain.contacts import address_problem, envelope_address
from simulator.domain.entities import Contact, Property
from simulator.domain.statuses import EmailStatus


@dataclass(frozen=True, slots=True)
class RecipientPlan:
    """One contact the email is addressed to, decided when the batch completes."""

    contact: str
    email: str  # as stored on the contact
    skip_reason: str | None  # recipient-contact-inactive | recipient-email-invalid | None
    detail: str = ""  # e.g. the validator's message for an invalid address
    address: str = ""  # the envelope recipient (deliverable plans only): trimmed, lower-case
    domain: str = ""

    @property
    def deliverable(self) -> bool:
        return self.skip_reason is None


def _selected(flags: tuple[bool, bool, bool], roles: tuple[str, ...]) -> bool:
    email_invoice, billing, primary = flags
    return (
        ("email_invoice" in roles and email_invoice)
        or ("billing" in roles and billing)
        or ("primary" in roles and primary)
    )


def plan_recipients(
    prop: Property, contacts: Mapping[str, Contact], roles: tuple[str, ...] = ("email_invoice",)
) -> tuple[RecipientPlan, ...]:
    """Every contact of the property selected by ``roles``, each with its skip reason.

    Inactive and invalid contacts stay in the list (with outcome ``skipped``) so the
    report shows who was meant to get the invoice and why they did not.
    """
    out: list[RecipientPlan] = []
    seen: set[str] = set()
    for pc in prop.contacts:
        if pc.contact in seen or not _selected((pc.email_invoice, pc.billing, pc.primary), roles):
            continue
        seen.add(pc.contact)
        c = contacts[pc.contact]
        if not c.active:
            out.append(RecipientPlan(c.id, c.email, "recipient-contact-inactive"))
            continue
        problem = address_problem(c.email)
        if problem is not None:
            out.append(RecipientPlan(c.id, c.email, "recipient-email-invalid", problem))
        else:
            addr = envelope_address(c.email)
            out.append(RecipientPlan(c.id, c.email, None, "", addr, addr.rpartition("@")[2]))
    return tuple(out)


def draft_status(plans: tuple[RecipientPlan, ...]) -> tuple[EmailStatus, str]:
    """Email status while the batch is Draft: N/A unless an active contact is selected (§8)."""
    if any(p.skip_reason != "recipient-contact-inactive" for p in plans):
        return EmailStatus.PENDING, "batch-draft"
    return EmailStatus.NA, "no-invoice-email-contact"


def billing_contact_warnings(prop: Property, roles: tuple[str, ...]) -> tuple[str, ...]:
    """Contacts marked Billing that the configured roles do not email (guide Step 5)."""
    return tuple(
        pc.contact
        for pc in prop.contacts
        if pc.billing and not _selected((pc.email_invoice, pc.billing, pc.primary), roles)
    )
