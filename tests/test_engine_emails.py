"""The engine's bulk email construction (engine/emails.py) against the domain's one definition of ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain.entities import Batch, CompactInvoices
from simulator.engine.emails import message_ids, numbered_ids
from simulator.engine.state import message_id_of


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12_000), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.%-]{0,12}", fullmatch=True))
def test_joined_message_ids_are_batch_invoice_ids(n: int, batch: str) -> None:
    """Joined from a head per hundred and two-digit tails, every id is ``Batch.invoice_id``'s, in order
    (a ``%`` in the batch id is text, not a format)."""
    b = Batch(batch, compact=CompactInvoices(count=n, properties=("p1",)))
    want = [message_id_of(b.invoice_id(i)) for i in range(n)]
    assert numbered_ids("<" + batch, n) == want
    assert message_ids(b) == want


def test_ids_at_the_width_boundaries() -> None:
    for n in (1, 9, 10, 99, 100, 101, 999, 1000, 1001, 10_000, 100_000):
        ids = numbered_ids("<B", n)
        assert len(ids) == n and ids[0] == f"<B-{1:0{len(str(n))}d}@mailsim.invalid>"
        assert ids[-1] == f"<B-{n}@mailsim.invalid>" and len(set(ids)) == n
