"""The records of a run's read-only view: frozen copies of what the run did, for the layers above.

``RunResult`` (``simulator.engine.result``) hands these out and re-exports them; a reader
(``explain``, the player, a notebook) imports them from there. They are copied out of the
engine's state on request, so a reader can neither change the run nor come to depend on how
the engine keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.domain.events import Event

if TYPE_CHECKING:
    from simulator.engine.state import Group


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """A timeline event as the run applied it, in the order applied; ``refused`` is the refusal's code."""

    event: Event
    refused: str | None


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """A user's login; ``refreshed``: it extended the sync token (it was still alive)."""

    at: int
    refreshed: bool


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """A change to a user's mailbox sync that the run applied (``resync``, ``set_sync``, …)."""

    at: int
    kind: str


@dataclass(frozen=True, slots=True)
class SendRecord:
    """How an invoice's email left the platform: when, from which sender, by which path, provider and IP."""

    at: int
    sender: str | None
    path: str  # "sync" | "smtp"
    provider: str | None
    client_ip: str
    helo: str


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A change of what held a queue: from ``at`` on, ``reason`` blocked it (None: the gate opened)."""

    at: int
    reason: str | None
    evidence: str


@dataclass(frozen=True, slots=True)
class SenderView:
    """The queue worker's latest sender decision for a queue (DESIGN §2's resolution and sending path)."""

    address: str | None
    source: str  # branch:<id> | region:<id> | configuration
    user: str | None
    path: str  # "sync" | "smtp" | "blocked"
    provider: str | None
    reason: str | None
    notes: tuple[str, ...]
    evidence: str
    spf: tuple[tuple[str, str, str], ...]  # (platform IP, SPF result, explanation) on the SMTP path


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue an invoice's email waited in: one per set of branches (its batch's), with its history."""

    branch_ids: tuple[str, ...]
    history: tuple[BlockRecord, ...]
    decision: SenderView | None  # None: never polled yet


def queue_view(group: Group) -> QueueView:
    """The view of one engine queue (a ``Group``)."""
    d = group.decision
    sender = None if d is None else SenderView(d.address, d.source, d.user, d.path, d.provider, d.reason, d.notes,
                                               d.evidence, d.spf)
    return QueueView(group.branch_ids, tuple(BlockRecord(t, r, ev) for t, r, ev in group.history), sender)
