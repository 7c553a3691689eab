"""The world an invoice email lives in, as the product's own records: frozen, validated, resolved.

The loader builds these from a scenario file; the domain rules and the engine read
only these, so no rule ever sees YAML, file positions or unresolved offsets. Times
are integer seconds from the run's ``start`` (negative: before it), durations are
integer seconds, and ``loc`` ("file:line:col") lets explanations point at the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DAY = 86400

DEFAULT_RETRY_SCHEDULE: tuple[int, ...] = (300, 600, 1200, 2400, 4800, 9600, 14400)


@dataclass(frozen=True, slots=True)
class Settings:
    """The platform's queue and sync timings (DESIGN §3 defaults); durations in seconds."""

    queue_poll: int = 60
    stuck_after: int = 3600
    token_lifetime: int = 90 * DAY
    smtp_path_requires_spf: bool = True
    retry_schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    max_queue_lifetime: int = 5 * DAY


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform's own sending side for the SMTP path: its IPs and the HELO name it uses."""

    sending_ips: tuple[str, ...] = ("198.51.100.10",)
    helo: str = "out.platform.example"


@dataclass(frozen=True, slots=True)
class Provider:
    """A mailbox-sync provider: the IPs its MTA sends from and the SPF include that authorises them."""

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
    """Administration > Configuration: the tenant-wide Invoice Email From and who gets invoices."""

    invoice_email_from: str | None = None
    invoice_recipients: tuple[str, ...] = ("email_invoice",)


@dataclass(frozen=True, slots=True)
class Region:
    """A region; its Invoicing Email From applies to branches that set none."""

    id: str
    invoicing_email_from: str | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch; its Invoicing Email From wins over its region's and Configuration's."""

    id: str
    region: str | None = None
    invoicing_email_from: str | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Organization:
    """Configuration, regions and branches: everything sender resolution (guide Step 2) reads."""

    configuration: Configuration = field(default_factory=Configuration)
    regions: tuple[Region, ...] = ()
    branches: tuple[Branch, ...] = ()


@dataclass(frozen=True, slots=True)
class Sync:
    """A user's mailbox sync as the file states it at the start (times relative to ``start``)."""

    provider: str
    synced: int  # last (re)sync
    last_login: int | None = None
    password_changed: int | None = None


@dataclass(frozen=True, slots=True)
class User:
    """A platform user; only an active user whose email matches can be an invoice sender."""

    id: str
    email: str
    active: bool = True
    sync: Sync | None = None
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer contact; ``email`` is kept exactly as typed, because a stray space is a guide cause."""

    id: str
    email: str  # raw, exactly as entered (may hold stray spaces: that is a guide cause)
    active: bool = True
    loc: str = ""


@dataclass(frozen=True, slots=True)
class PropertyContact:
    """A contact's link to a property with its flags; Email Invoice decides who gets invoices."""

    contact: str
    email_invoice: bool = False
    primary: bool = False
    billing: bool = False


@dataclass(frozen=True, slots=True)
class Property:
    """A customer property in one branch, with its linked contacts in file order."""

    id: str
    branch: str
    contacts: tuple[PropertyContact, ...] = ()
    loc: str = ""


@dataclass(frozen=True, slots=True)
class Invoice:
    """One invoice of a batch, for one property."""

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
    """An invoice batch: explicit invoices, or a compact ``{count, properties}`` that is never materialised."""

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

    def invoices_of(self, property_id: str) -> Iterator[str]:
        """The ids of ``property_id``'s invoices in file order: :meth:`iter_invoices` filtered, but a
        compact batch visits only that property's round-robin positions, not every invoice."""
        if self.compact is None:
            for inv in self.invoices:
                if inv.property == property_id:
                    yield inv.id
            return
        props = self.compact.properties
        starts = [i for i, p in enumerate(props) if p == property_id]
        if not starts:
            return
        n, count = len(props), self.compact.count
        for base in range(0, count, n):
            for s in starts:
                if base + s < count:
                    yield self.invoice_id(base + s)

    def property_ids(self) -> tuple[str, ...]:
        if self.compact is not None:
            return tuple(dict.fromkeys(self.compact.properties[: self.compact.count]))
        return tuple(dict.fromkeys(inv.property for inv in self.invoices))


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
class RateLimit:
    """A receiving server's throttle: at most ``messages`` accepted from one sending IP in any ``per`` seconds."""

    messages: int
    per: int


@dataclass(frozen=True, slots=True)
class MailboxDomain:
    """A recipient domain's mail server policy: known users, SPF filing, greylisting, quota, size and rate limits."""

    domain: str
    users: tuple[str, ...] | None = None  # None: any local part is accepted
    spf_policy: SpfPolicy = field(default_factory=SpfPolicy)
    greylist: int = 0
    quota: int = 0
    size_limit: int = 10 * 1024 * 1024
    rate_limit: RateLimit | None = None  # None: no throttle
    loc: str = ""


def format_time(start: datetime, t: int) -> str:
    """ISO-8601 in UTC with a Z, the one format every output uses.

    Formatted from the fields: ``strftime`` (a time tuple and a format string rebuilt per call,
    ≈10 µs) was a visible part of a small run's fixed cost, for a handful of calls.
    """
    ts = (start + timedelta(seconds=t)).astimezone(UTC)
    return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}Z"
