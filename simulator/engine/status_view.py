"""A light view of where an invoice stands, for readers that take it after every model step.

:class:`InvoiceStatus` holds the few fields of an ``InvoiceView`` that say where an invoice
stands, without building a view per recipient; ``RunResult.invoice_status`` and
``RunResult.invoice_statuses`` return it (the timeline player reads it after each step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.domain.entities import Batch

if TYPE_CHECKING:
    from simulator.engine.sim import Engine
    from simulator.engine.state import Email


@dataclass(frozen=True, slots=True)
class InvoiceStatus:
    """The fields of an :class:`InvoiceView` that say where an invoice stands, cheap to take often.

    ``outcomes``: each recipient's (outcome, reason), in the view's order; ``stuck``: the
    email passed ``stuck_after`` in the queue (``email.stuck`` fired).
    """

    id: str
    batch_status: str
    email_status: str
    reason: str | None
    queued_at: int | None
    stuck: bool
    outcomes: tuple[tuple[str, str | None], ...]


def status_of(eng: Engine, b: Batch, inv: str, pid: str, e: Email | None) -> InvoiceStatus:
    if e is None:
        status, reason = eng.prop_status[pid]
        outs = tuple(("none", None) if p.skip_reason is None else ("skipped", p.skip_reason)
                     for p in eng.prop_plans[pid])
        return InvoiceStatus(inv, str(eng.batch_status[b.id]), str(status), reason, None, False, outs)
    return InvoiceStatus(inv, str(eng.batch_status[b.id]), str(e.status), e.reason, e.queued_at,
                         e.stuck_at is not None, tuple((r.outcome, r.reason) for r in e.recipients))
