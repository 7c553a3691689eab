"""Timeline events: what people and systems do to the world while the run goes on.

Each kind is its own small frozen type carrying exactly its arguments, so a rule
that handles ``Login`` cannot read a field only ``SetContactEmail`` has; the union
``Event`` is what a scenario's timeline holds. ``kind`` is the scenario file's key
(``complete_batch``, ``login``, …): the one name the trace, the loader and the
stepper use for it. ``EVENT_TYPES`` maps each key to its type.

``at`` is seconds from the run's start; ``index`` is the position in the file's
timeline (events at one instant apply in file order, DESIGN §8; injected events use
-1); ``loc`` is "file:line:col"; ``note`` is a trainer's caption (ignored by the rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    """What every event carries besides its own arguments."""

    kind: ClassVar[str] = ""
    at: int
    index: int = -1
    loc: str = ""
    note: str | None = None

    def subject(self) -> str:
        """The id the event is about, for one-line listings (stepper, timeline markers)."""
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteBatch(TimelineEvent):
    """The batch is completed (Draft → Sent): its emails are generated now with the recipients of this moment."""

    kind: ClassVar[str] = "complete_batch"
    batch: str

    def subject(self) -> str:
        return self.batch


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(TimelineEvent):
    """An event about one user, written ``<kind>: <user id>`` in a scenario file."""

    user: str

    def subject(self) -> str:
        return self.user


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(UserEvent):
    """The user logs in: refreshes a live sync token, never revives a dead one."""

    kind: ClassVar[str] = "login"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resync(UserEvent):
    """The user re-authorises an existing mailbox sync: a fresh token, any password change absorbed."""

    kind: ClassVar[str] = "resync"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePassword(UserEvent):
    """The user's mailbox password changes: a sync breaks until the next re-sync."""

    kind: ClassVar[str] = "change_password"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveSync(UserEvent):
    """The mailbox sync is removed: the user sends over the SMTP path from then on."""

    kind: ClassVar[str] = "remove_sync"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeactivateUser(UserEvent):
    """The user is deactivated: no longer a possible sender."""

    kind: ClassVar[str] = "deactivate_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivateUser(UserEvent):
    """The user is activated again."""

    kind: ClassVar[str] = "activate_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSync(UserEvent):
    """A mailbox sync with ``provider`` is set up (or replaced) for the user: a fresh token."""

    kind: ClassVar[str] = "set_sync"
    provider: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetContactEmail(TimelineEvent):
    """A contact's address is edited; refused when another contact already holds it."""

    kind: ClassVar[str] = "set_contact_email"
    contact: str
    email: str

    def subject(self) -> str:
        return self.contact


@dataclass(frozen=True, slots=True, kw_only=True)
class SetContactActive(TimelineEvent):
    """A contact is activated or deactivated."""

    kind: ClassVar[str] = "set_contact_active"
    contact: str
    active: bool

    def subject(self) -> str:
        return self.contact


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPropertyContact(TimelineEvent):
    """Link a contact to a property or change its flags; a flag left None keeps its value."""

    kind: ClassVar[str] = "set_property_contact"
    property: str
    contact: str
    email_invoice: bool | None = None
    primary: bool | None = None
    billing: bool | None = None

    def subject(self) -> str:
        return self.contact


@dataclass(frozen=True, slots=True, kw_only=True)
class SetInvoicingEmailFrom(TimelineEvent):
    """Exactly one of ``branch``, ``region`` or ``configuration`` names where; ``email`` None clears it."""

    kind: ClassVar[str] = "set_invoicing_email_from"
    email: str | None
    branch: str | None = None
    region: str | None = None
    configuration: bool = False

    def subject(self) -> str:
        return self.branch or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSet(TimelineEvent):
    """A DNS record set at ``name``/``type`` is replaced by ``value``."""

    kind: ClassVar[str] = "dns_set"
    name: str
    type: str
    value: str | tuple[str, ...]

    def subject(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsDelete(TimelineEvent):
    """The DNS record set at ``name``/``type`` is deleted."""

    kind: ClassVar[str] = "dns_delete"
    name: str
    type: str

    def subject(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTokenLifetime(TimelineEvent):
    """The tenant's admin changes how long a sync token lives (every user's expiry moves)."""

    kind: ClassVar[str] = "set_token_lifetime"
    lifetime: int



Event = (
    CompleteBatch | Login | Resync | ChangePassword | RemoveSync | DeactivateUser | ActivateUser | SetSync
    | SetContactEmail | SetContactActive | SetPropertyContact | SetInvoicingEmailFrom | DnsSet | DnsDelete
    | SetTokenLifetime
)

EVENT_TYPES: dict[str, type[TimelineEvent]] = {
    t.kind: t
    for t in (
        CompleteBatch, Login, Resync, ChangePassword, SetContactEmail, SetContactActive, SetPropertyContact,
        SetInvoicingEmailFrom, SetSync, RemoveSync, DnsSet, DnsDelete, DeactivateUser, ActivateUser,
        SetTokenLifetime,
    )
}
#: The scenario file's event keys, in the order the docs list them.
EVENT_KINDS: tuple[str, ...] = tuple(EVENT_TYPES)
#: Events written ``<kind>: <user id>``.
USER_EVENT_KINDS: tuple[str, ...] = tuple(k for k, t in EVENT_TYPES.items()
                                          if issubclass(t, UserEvent) and t is not SetSync)


def make_event(kind: str, *, at: int, index: int = -1, loc: str = "", note: str | None = None,
               **args: object) -> Event:
    """Build the event of ``kind`` from its scenario-file arguments (the loader and the stepper's inject)."""
    return EVENT_TYPES[kind](at=at, index=index, loc=loc, note=note, **args)  # type: ignore[return-value]
