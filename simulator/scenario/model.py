"""The immutable Scenario: a world (domain entities), its timeline and faults, and what to expect.

The scenario layer adds to the domain only what a file says about a *run*: its name,
start, seed, horizon and expectations, and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from simulator.domain.dns import Dns
from simulator.domain.entities import (
    DEFAULT_PROVIDERS,
    Batch,
    Contact,
    MailboxDomain,
    Organization,
    Platform,
    Property,
    Provider,
    Settings,
    User,
    format_time,
)
from simulator.domain.events import Event
from simulator.domain.faults import Fault

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
    #: Problems that do not stop a run (e.g. a provider name close to a known one), each
    #: ``FILE:LINE:COLUMN: message``; ``validate`` and ``run`` print them.
    warnings: tuple[str, ...] = ()

    def iso(self, t: int) -> str:
        return format_time(self.start, t)

    def provider(self, name: str) -> Provider | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None
