"""A completed batch's emails: built in invoice order, in bulk, sharing everything one property shares.

Kept apart from the engine's scheduling because it is the one place that creates
emails, and the one where a million of them must cost little: a compact batch's
Message-IDs are joined from cached parts and each property's emails are built in one go.
"""

from __future__ import annotations

from collections.abc import Iterator

from simulator.domain.entities import Batch
from simulator.engine.state import (
    MESSAGE_ID_HEAD,
    MESSAGE_ID_TAIL,
    Email,
    Numbering,
    Origin,
    RcptSet,
    Slot,
    message_id_of,
)

# what every email of one batch and property starts with: (origin, status, reason, notes, shared recipients)
PropSlot = tuple[Origin, str, str | None, tuple[str, ...], RcptSet]


class Tails:
    """One run's Message-ID tails per width (``Numbering.tails``) and invoice numbers, shared by its batches.

    A compact batch's emails used to get their Message-IDs as strings at completion, 1,000 per
    batch; now every batch of one width shares one list of tails and its emails hold their
    invoice numbers from one list of ints (the same int objects in every batch: an int above
    256 is otherwise an object of its own). A tail is spelled with the hundred it belongs to,
    the first time an email of that hundred spells its id (:meth:`Numbering.tail`): a run of
    identical cohorts spells a few hundred, not every number of every width.
    """

    def __init__(self) -> None:
        self._by_width: dict[int, list[str]] = {}
        self._numbers: list[int] = [0]

    def tails(self, width: int, n: int) -> list[str]:
        """The tails at ``width`` for 1…n (at least); "" where not spelled yet, index 0 unused."""
        t = self._by_width.get(width)
        if t is None:
            t = self._by_width[width] = [""] * (n + 1)
        elif len(t) <= n:
            t.extend([""] * (n + 1 - len(t)))
        return t

    def numbers(self, n: int) -> list[int]:
        """0…n (at least)."""
        nums = self._numbers
        if len(nums) <= n:
            nums.extend(range(len(nums), n + 1))
        return nums


def numbering(b: Batch, tails: Tails) -> Numbering | None:
    """A compact batch's :class:`Numbering`, or None if it would not spell ``Batch.invoice_id``'s ids.

    ``Batch.invoice_id`` formats each id with a nested width spec (≈0.8 µs an id, a fifth of
    the whole per-email cost before). It stays the definition: each batch's first, middle and
    last ids are checked against it, and any difference falls back to it for the whole batch.
    """
    assert b.compact is not None
    n = b.compact.count
    width = len(str(n))
    ids = Numbering(MESSAGE_ID_HEAD + b.id, tails.tails(width, n), width)
    if n and any(ids.head + ids.tail(i + 1) != message_id_of(b.invoice_id(i)) for i in (0, n // 2, n - 1)):
        return None  # pragma: no cover - the two spellings agree (tested); the definition's guard
    return ids


def build_emails(b: Batch, per_prop: dict[str, PropSlot], tails: Tails) -> tuple[list[Email], list[Slot]]:
    """The batch's emails in invoice order, and its queued ones as slots (one per property, see Slot).

    A compact batch assigns properties round-robin (DESIGN §3), so position ``j`` of the
    cycle holds the invoices ``j, j + P, j + 2P, …``: each position's emails are built in
    one go and put in place with a slice assignment, with no per-invoice dispatch. They hold
    their invoice numbers (see :class:`~simulator.engine.state.Email`).
    """
    if b.compact is None:
        emails: list[Email] = []
        for inv in b.invoices:
            origin, status, reason, notes, rs = per_prop[inv.property]
            rs.sharers += 1
            emails += Email.many((message_id_of(inv.id),), origin, status, reason, notes, rs)
        return emails, slots_of(emails)
    n = b.compact.count
    ids = numbering(b, tails)
    keys: list[str] | list[int]
    if ids is None:  # pragma: no cover - see numbering()
        keys = [message_id_of(b.invoice_id(i)) for i in range(n)]
    else:
        keys = tails.numbers(n)[1:n + 1]
        for prop_slot in per_prop.values():
            prop_slot[0].ids = ids
    cycle = b.compact.properties
    period = len(cycle)
    built: list[Email] = [None] * n  # type: ignore[list-item]  # every position is filled below
    slots: list[Slot] = []
    for j in range(min(period, n)):
        origin, status, reason, notes, rs = per_prop[b.property_of(j)]
        part = Email.many(keys[j::period], origin, status, reason, notes, rs)
        built[j::period] = part
        rs.sharers += len(part)
        if origin.group is not None:
            slots.append((origin.plans, rs, part))
    if len(set(cycle)) < period:  # a property listed twice: its emails interleave, so slot them per email
        slots = slots_of(built)
    return built, slots


def slots_of(emails: list[Email]) -> list[Slot]:
    """Group the queued ones of a batch's ``emails`` by property (per email: explicit batches are small)."""
    by: dict[str, list[Email]] = {}
    for e in emails:
        if e.group is not None:
            by.setdefault(e.property, []).append(e)
    return [(es[0].plans, es[0].recipients, es) for es in by.values()]

def message_ids(b: Batch) -> list[str]:
    """A compact batch's Message-IDs spelled out, as its emails' ``message_id`` give them."""
    assert b.compact is not None
    n = b.compact.count
    ids = numbering(b, Tails())
    if ids is None:  # pragma: no cover - see numbering()
        return [message_id_of(b.invoice_id(i)) for i in range(n)]
    return [ids.head + ids.tail(k) for k in range(1, n + 1)]


class EmailDirectory:
    """Finds a run's invoices and their emails by id without formatting a compact batch's ids.

    ``emails`` maps a completed batch's id to its emails in invoice order (the engine
    fills it at completion); explicit invoice ids are indexed on first use, compact ids
    (``<batch>-000042``) are parsed.
    """

    def __init__(self, batches: tuple[Batch, ...]) -> None:
        self.batch_list = batches
        self.batches = {b.id: b for b in batches}
        self.emails: dict[str, list[Email]] = {}
        self._invoice_index: dict[str, tuple[Batch, int]] | None = None

    def invoice_index(self) -> dict[str, tuple[Batch, int]]:
        if self._invoice_index is None:
            idx: dict[str, tuple[Batch, int]] = {}
            for b in self.batch_list:
                if b.compact is None:
                    for i, inv in enumerate(b.invoices):
                        idx[inv.id] = (b, i)
            self._invoice_index = idx
        return self._invoice_index

    def locate(self, invoice: str) -> tuple[Batch, int] | None:
        hit = self.invoice_index().get(invoice)
        if hit is not None:
            return hit
        b = self.batches.get(invoice.rpartition("-")[0])
        i = b.index_of(invoice) if b is not None and b.compact is not None else None
        return (b, i) if b is not None and i is not None else None

    def invoice_of_message(self, message_id: str) -> str | None:
        """The invoice whose email has Message-ID ``message_id`` (None: not one of this run's)."""
        if not (message_id.startswith(MESSAGE_ID_HEAD) and message_id.endswith(MESSAGE_ID_TAIL)):
            return None
        email = self.email_of(message_id[len(MESSAGE_ID_HEAD):-len(MESSAGE_ID_TAIL)])
        return email.invoice if email is not None and email.message_id == message_id else None

    def email_of(self, invoice: str) -> Email | None:
        loc = self.locate(invoice)
        if loc is None:
            return None
        b, i = loc
        es = self.emails.get(b.id)
        return es[i] if es is not None else None

    def iter_invoices(self) -> Iterator[tuple[Batch, int, str, str, Email | None]]:
        """(batch, index, invoice id, property id, email or None while Draft) in file order."""
        for b in self.batch_list:
            es = self.emails.get(b.id)
            if es is not None:  # an email knows its invoice id and property: no need to format the ids again
                for i, e in enumerate(es):
                    yield b, i, e.invoice, e.property, e
                continue
            for i, (inv, pid) in enumerate(b.iter_invoices()):
                yield b, i, inv, pid, None
