"""The immutable Scenario: what a scenario file says, resolved and validated.

Every layer below the loader reads only these frozen dataclasses, so the domain
rules and the engine never see YAML, file positions or unresolved offsets.
Times are integer seconds relative to ``Scenario.start`` (negative = before the
run starts); durations are integer seconds. ``loc`` fields carry the source
position ("file:line:col") so explanations and errors can point at the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY = 86400

DEFAULT_RETRY_SCHEDULE: tuple[int, ...] = (300, 600, 1200, 2400, 4800, 9600, 14400)
SPF_RESULTS: tuple[str, ...] = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
SPF_ACTIONS: tuple[str, ...] = ("inbox", "junk", "reject", "defer")
FAULT_KINDS: tuple[str, ...] = (
    "outage",
    "tempfail",
    "permfail",
    "disconnect",
    "slow",
    "dns_timeout",
    "dns_servfail",
)
SMTP_STAGES: tuple[str, ...] = ("connect", "helo", "mail", "rcpt", "data")
SYNC_PROVIDERS_SUPPORTED: tuple[str, ...] = ("microsoft365", "google")
RECIPIENT_ROLES: tuple[str, ...] = ("email_invoice", "billing", "primary")

# --- vocabularies the loader validates against (DESIGN §3, §4) ----------------------------
EMAIL_STATUSES: tuple[str, ...] = ("N/A", "Pending", "In Queue", "Sent")
BATCH_STATUSES: tuple[str, ...] = ("Draft", "Sent")
RECIPIENT_OUTCOMES: tuple[str, ...] = ("none", "skipped", "deferred", "inbox", "junk", "bounced")
DNS_RECORD_TYPES: tuple[str, ...] = ("A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS")
#: Every reason code a scenario's ``expect:`` may name (DESIGN §4). Keep in step with the engine.
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
    "billing-contact-not-emailed",
    "unknown-recipient",
    "mailbox-full",
    "greylisted",
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


@dataclass(frozen=True, slots=True)
class Settings:
    queue_poll: int = 60
    stuck_after: int = 3600
    token_lifetime: int = 90 * DAY
    smtp_path_requires_spf: bool = True
    retry_schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    max_queue_lifetime: int = 5 * DAY


@dataclass(frozen=True, slots=True)
class Platform:
    sending_ips: tuple[str, ...] = ("198.51.100.10",)
    helo: str = "out.platform.example"


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    sending_ips: tuple[str, ...]
    spf_include: str | None = None
    helo: str | None = None  # HELO name its MTA uses; default "mail.<spf_include>"


DEFAULT_PROVIDERS: tuple[Provider, ...] = (
    Provider("microsoft365", ("203.0.113.20",), "spf.protection.outlook.com", "mail.protection.outlook.com"),
    Provider("google", ("203.0.113.30",), "_spf.google.com", "mail-sor.google.com"),
)


@dataclass(frozen=True, slots=True)
class Configuration:
    invoice_email_from: str | None = None
    invoice_recipients: tuple[str, ...] = ("email_invoice",)


@dataclass(frozen=True, slots=True)
class Region:
    id: str
    invoicing_email_from: str | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Branch:
    id: str
    region: str | None = None
    invoicing_email_from: str | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Organization:
    configuration: Configuration = field(default_factory=Configuration)
    regions: tuple[Region, ...] = ()
    branches: tuple[Branch, ...] = ()


@dataclass(frozen=True, slots=True)
class Sync:
    provider: str
    synced: int  # last (re)sync
    last_login: int | None = None
    password_changed: int | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    active: bool = True
    sync: Sync | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    email: str  # raw, exactly as entered (may hold stray spaces: that is a guide cause)
    active: bool = True
    loc: str = ""


@dataclass(frozen=True, slots=True)
class PropertyContact:
    contact: str
    email_invoice: bool = False
    primary: bool = False
    billing: bool = False


@dataclass(frozen=True, slots=True)
class Property:
    id: str
    branch: str
    contacts: tuple[PropertyContact, ...] = ()
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    property: str
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class CompactInvoices:
    """``{count: N, properties: [...]}``: ids ``<batch>-000001``…, properties round-robin."""

    count: int
    properties: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    invoices: tuple[Invoice, ...] = ()
    compact: CompactInvoices | None = None
    loc: str = ""

    @property
    def count(self) -> int:
        return self.compact.count if self.compact is not None else len(self.invoices)

    def invoice_id(self, i: int) -> str:
        if self.compact is None:
            return self.invoices[i].id
        width = len(str(self.compact.count))
        return f"{self.id}-{i + 1:0{width}d}"

    def count_for(self, property_id: str) -> int:
        """How many of this batch's invoices are for ``property_id`` (compact: round-robin arithmetic)."""
        if self.compact is None:
            return sum(1 for inv in self.invoices if inv.property == property_id)
        props = self.compact.properties
        return sum(len(range(i, self.compact.count, len(props))) for i, p in enumerate(props) if p == property_id)

    def index_of(self, invoice: str) -> int | None:
        """Position of ``invoice`` in this batch; compact ids are parsed, not generated."""
        if self.compact is None:
            return next((i for i, inv in enumerate(self.invoices) if inv.id == invoice), None)
        prefix, _, num = invoice.rpartition("-")
        if prefix != self.id or not num.isdigit():
            return None
        i = int(num) - 1
        return i if 0 <= i < self.compact.count and self.invoice_id(i) == invoice else None

    def property_of(self, i: int) -> str:
        if self.compact is None:
            return self.invoices[i].property
        props = self.compact.properties
        return props[i % len(props)]

    def iter_invoices(self) -> Iterator[tuple[str, str]]:
        """(invoice id, property id) in file order, without materialising compact batches."""
        if self.compact is None:
            for inv in self.invoices:
                yield inv.id, inv.property
            return
        width = len(str(self.compact.count))
        props = self.compact.properties
        n = len(props)
        prefix = self.id
        for i in range(self.compact.count):
            yield f"{prefix}-{i + 1:0{width}d}", props[i % n]

    def property_ids(self) -> tuple[str, ...]:
        if self.compact is not None:
            return tuple(dict.fromkeys(self.compact.properties[: self.compact.count]))
        return tuple(dict.fromkeys(inv.property for inv in self.invoices))


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # lower case, no trailing dot; may start with "*." (wildcard)
    type: str  # upper case: A, AAAA, MX, TXT, SPF, CNAME, PTR, NS
    value: str | tuple[str, ...]  # TXT/SPF may be several character-strings
    ttl: int = 300

    @property
    def text(self) -> str:
        """TXT/SPF strings joined as RFC 7208 §3.3 says (no separator)."""
        return "".join(self.value) if isinstance(self.value, tuple) else self.value


@dataclass(frozen=True, slots=True)
class Dns:
    records: tuple[DnsRecord, ...] = ()
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpfPolicy:
    """What a receiving server does with a message, by its SPF result (DESIGN §2)."""

    pass_: str = "inbox"
    fail: str = "reject"
    softfail: str = "junk"
    neutral: str = "inbox"
    none: str = "inbox"
    permerror: str = "junk"
    temperror: str = "defer"

    def action(self, result: str) -> str:
        return self.pass_ if result == "pass" else str(getattr(self, result))


@dataclass(frozen=True, slots=True)
class MailboxDomain:
    domain: str
    users: tuple[str, ...] | None = None  # None: any local part is accepted
    spf_policy: SpfPolicy = field(default_factory=SpfPolicy)
    greylist: int = 0
    quota: int = 0
    size_limit: int = 10 * 1024 * 1024
    loc: str = ""


# --- timeline -------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Fault:
    index: int
    kind: str
    at: int | None = None  # None: from the start
    for_: int | None = None  # None: until the end
    stage: str | None = None  # None: the kind's natural stage
    probability: float = 1.0
    target: str | None = None  # recipient domain (SMTP faults) or DNS name; None: everything
    delay: int = 0  # slow: seconds added before the stage's reply
    loc: str = ""

    def active_at(self, t: int) -> bool:
        if self.at is not None and t < self.at:
            return False
        return not (self.for_ is not None and t >= (self.at or 0) + self.for_)


END = None  # ``at: end`` in expectations


@dataclass(frozen=True, slots=True)
class Expectation:
    """One ``expect:`` entry. ``text`` is the entry as written, for reports."""

    index: int
    text: str
    loc: str = ""
    invoice: str | None = None
    recipient: str | None = None
    mailbox: str | None = None
    count: tuple[tuple[str, str], ...] | None = None  # e.g. (("email_status", "In Queue"),)
    equals: int | None = None
    email_status: str | None = None
    batch_status: str | None = None
    reason: str | None = None
    outcome: str | None = None
    never: tuple[tuple[str, str], ...] | None = None
    bounces: int | None = None
    inbox: int | None = None
    junk: int | None = None
    at: int | None = None  # None: at the end
    within: int | None = None
    until: int | None = None

    @property
    def when(self) -> int | None:
        """The instant the expectation is checked (None: end of run)."""
        if self.within is not None:
            return self.within
        if self.until is not None:
            return self.until
        return self.at


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: datetime
    seed: int = 0
    description: str = ""
    until: int | None = None  # None: when nothing is scheduled, capped at 30d
    tags: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)
    platform: Platform = field(default_factory=Platform)
    providers: tuple[Provider, ...] = DEFAULT_PROVIDERS
    organization: Organization = field(default_factory=Organization)
    users: tuple[User, ...] = ()
    contacts: tuple[Contact, ...] = ()
    properties: tuple[Property, ...] = ()
    batches: tuple[Batch, ...] = ()
    dns: Dns = field(default_factory=Dns)
    mailboxes: tuple[MailboxDomain, ...] = ()
    timeline: tuple[Event, ...] = ()
    faults: tuple[Fault, ...] = ()
    expect: tuple[Expectation, ...] = ()
    source: str = ""  # path of the file it came from
    sha256: str = ""  # of the file's bytes

    def iso(self, t: int) -> str:
        return format_time(self.start, t)

    def provider(self, name: str) -> Provider | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None


def format_time(start: datetime, t: int) -> str:
    """ISO-8601 in UTC with a Z, the one format every output uses."""
    from datetime import UTC

    ts = (start + timedelta(seconds=t)).astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
