"""Timeline events: what people and systems do to the world while the run goes on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """One timeline entry. ``kind`` is the YAML key (``complete_batch``, ``login``, …)."""

    at: int
    kind: str
    index: int  # position in the file's timeline (stable order for equal times)
    loc: str = ""
    # the arguments; which ones are set depends on kind
    batch: str | None = None
    user: str | None = None
    contact: str | None = None
    property: str | None = None
    email: str | None = None
    active: bool | None = None
    email_invoice: bool | None = None
    primary: bool | None = None
    billing: bool | None = None
    branch: str | None = None
    region: str | None = None
    configuration: bool = False
    provider: str | None = None
    name: str | None = None  # dns_set / dns_delete
    type: str | None = None
    value: str | tuple[str, ...] | None = None


EVENT_KINDS: tuple[str, ...] = (
    "complete_batch",
    "login",
    "resync",
    "change_password",
    "set_contact_email",
    "set_contact_active",
    "set_property_contact",
    "set_invoicing_email_from",
    "set_sync",
    "remove_sync",
    "dns_set",
    "dns_delete",
    "deactivate_user",
    "activate_user",
)
