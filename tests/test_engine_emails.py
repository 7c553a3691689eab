"""The engine's bulk email construction (engine/emails.py) against the domain's one definition of ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain.entities import Batch, CompactInvoices
from simulator.engine.emails import Tails, message_ids
from simulator.engine.state import Numbering, message_id_of


def spelled(head: str, n: int) -> list[str]:
    """Every id 1…n as the emails spell them (``Numbering.tail``), without ``numbering()``'s guard,
    which would fall back to ``Batch.invoice_id`` and hide a wrong spelling."""
    width = len(str(n))
    ids = Numbering(head, Tails().tails(width, n), width)
    return [ids.head + ids.tail(k) for k in range(1, n + 1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12_000), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.%-]{0,12}", fullmatch=True))
def test_joined_message_ids_are_batch_invoice_ids(n: int, batch: str) -> None:
    """Joined from a head per hundred and two-digit tails, every id is ``Batch.invoice_id``'s, in order
    (a ``%`` in the batch id is text, not a format)."""
    b = Batch(batch, compact=CompactInvoices(count=n, properties=("p1",)))
    want = [message_id_of(b.invoice_id(i)) for i in range(n)]
    assert spelled("<" + batch, n) == want
    assert message_ids(b) == want


def test_ids_at_the_width_boundaries() -> None:
    for n in (1, 9, 10, 99, 100, 101, 999, 1000, 1001, 10_000, 100_000):
        ids = spelled("<B", n)
        assert len(ids) == n and ids[0] == f"<B-{1:0{len(str(n))}d}@mailsim.invalid>"
        assert ids[-1] == f"<B-{n}@mailsim.invalid>" and len(set(ids)) == n


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12_000), st.data())
def test_a_tail_is_spelled_with_its_hundred_only_and_as_invoice_id_spells_it(n: int, data: st.DataObject) -> None:
    width = len(str(n))
    tails = Tails().tails(width, n)
    ids = Numbering("<B", tails, width)
    k = data.draw(st.integers(1, n))
    assert "<B" + ids.tail(k) == message_id_of(Batch("B", compact=CompactInvoices(n, ("p",))).invoice_id(k - 1))
    spelled = {i for i, t in enumerate(tails) if t}
    lo = k - k % 100
    assert spelled == set(range(max(lo, 1), min(lo + 100, n + 1)))


def test_a_shared_cohort_files_its_copies_without_spelling_their_ids() -> None:
    """The uniform workload's cohorts share one transaction: their emails keep their numbers until asked,
    and the mailboxes still list every copy under the Message-ID ``Batch.invoice_id`` gives."""
    from benchmarks.scenarios import build
    from simulator.engine.run import simulate

    scn = build(3000, 3)
    res = simulate(scn)
    eng = res.engine
    emails = [e for es in eng.emails.values() for e in es]
    assert len(emails) == 3000
    assert all(isinstance(e.key, int) for e in emails)  # read (the envelope's first, the checks), never kept
    want = {message_id_of(b.invoice_id(i)) for b in scn.batches for i in range(b.count)}
    filed = [mid for box in eng.receiver.store.boxes.values() for mid, folder, _t in box.messages if folder != "bounce"]
    delivered = [e for e in emails if e.status == "Sent" and all(r.outcome in ("inbox", "junk") for r in e.recipients)]
    assert set(filed) <= want and len(filed) == len(set(filed)) == len(delivered) > 0
    assert {e.message_id for e in delivered} == set(filed)


def test_emails_that_differ_spell_their_ids_for_the_draws_and_keep_none() -> None:
    """Each varied email takes its own transaction and its fault draws hash its Message-ID: the id is
    spelled for that and not kept, by the email or by the mailbox its quiet copy is filed into (a
    run of them stays a ``MessageIds``); the mailboxes still list every delivered copy under its id."""
    from benchmarks.varied import build
    from simulator.engine.run import simulate
    from simulator.net.receiver import MessageIds

    scn = build(10_000)
    eng = simulate(scn).engine
    emails = [e for es in eng.emails.values() for e in es]
    assert len(emails) == 10_000 and all(isinstance(e.key, int) for e in emails)
    runs = [run for box in eng.receiver.store.boxes.values() for run in box._runs]  # before .messages reads them
    lazy = [run for run in runs if type(run[0]) is MessageIds]
    assert lazy and sum(len(run[0]) for run in lazy) > 5_000
    filed = [mid for box in eng.receiver.store.boxes.values() for mid, folder, _t in box.messages if folder != "bounce"]
    delivered = {e.message_id for e in emails if e.status == "Sent" and any(r.outcome in ("inbox", "junk")
                                                                            for r in e.recipients)}
    assert set(filed) == delivered and len(filed) >= len(delivered) > 5_000
