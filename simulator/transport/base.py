"""The seam between the engine's outgoing MTA and whatever plays the recipients' servers.

The engine decides *what* to attempt and *when* (virtual time); a transport
only carries one SMTP transaction and reports the replies. The memory transport
runs the receiving state machine in-process; the wire transport speaks real
SMTP to the loopback sink. Neither may read a clock: ``now`` travels with the
attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Protocol, overload

from simulator.net.receiver import DROPPED, DataVerdict, Reply, Transaction


@dataclass(frozen=True, slots=True)
class Attempt:
    now: int
    message_id: str
    attempt: int  # 1 for the first try of this (message, domain)
    client_ip: str  # the simulated sending IP (provider's or platform's)
    helo: str
    mail_from: str
    domain: str  # recipient domain
    mx_host: str
    mx_ip: str
    rcpts: tuple[str, ...]
    render: Callable[[], bytes]  # the message as it goes on the wire (built only if needed)
    size: int | None = None  # declared SIZE (RFC 1870); set when the receiver's limit could matter


@dataclass(frozen=True, slots=True)
class AttemptResult:
    replies: tuple[Reply, ...]  # one per rcpt, the reply that decided it
    folder: str | None  # where accepted recipients were (delay 0) or are to be (settle) filed: inbox/junk
    spf_result: str | None  # the receiver's SPF verdict, when it got as far as DATA
    spf_explanation: str = ""
    delay: int = 0  # seconds the transaction took in virtual time (slow faults)


class Repeated(Sequence[AttemptResult]):
    """``n`` times one result: a shared transaction's answer for every message of a cohort.

    The MTA tells at once that every message got the same replies (and the same
    delay) instead of comparing a million list items with the first.
    """

    __slots__ = ("n", "result")

    def __init__(self, result: AttemptResult, n: int) -> None:
        self.result = result
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> AttemptResult: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[AttemptResult]: ...

    def __getitem__(self, i: int | slice) -> AttemptResult | Sequence[AttemptResult]:
        if isinstance(i, slice):
            return Repeated(self.result, len(range(*i.indices(self.n))))
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.result

    def __iter__(self) -> Iterator[AttemptResult]:
        return repeat(self.result, self.n)


@dataclass(frozen=True, slots=True)
class Dsn:
    """A delivery status notification (RFC 3464) for the sender's own mailbox."""

    message_id: str  # the DSN's own id
    original_id: str
    to: str  # the sender address it is filed under
    subject: str
    recipients: tuple[tuple[str, str, str, str], ...]  # (rcpt, action, status, diagnostic)
    now: int
    render: Callable[[], bytes]


class Transport(Protocol):
    def attempt(self, att: Attempt) -> AttemptResult: ...

    def settle(self, att: Attempt, result: AttemptResult, message_ids: Sequence[str], at: int) -> None:
        """A delayed result (``result.delay > 0``) is applied: the receiver answered 250 at ``at``.

        A slow transaction stores nothing while it runs (see ``ReceivingServer.data_end``);
        the MTA calls this when it applies the reply, and the copies of ``message_ids``
        (one envelope, ``att``; ``result`` accepted some of ``att.rcpts``) are filed at ``at``.
        Never called for a result with ``delay == 0`` (those were filed by the transaction).
        """
        ...

    def deliver_dsn(self, dsn: Dsn) -> None: ...

    def close(self) -> None: ...


class ReceivingServerLike(Protocol):
    def connect(self, tx: Transaction) -> Reply: ...
    def helo(self, tx: Transaction, name: str) -> Reply: ...
    def mail(self, tx: Transaction, sender: str, size: int | None = None) -> Reply: ...
    def rcpt(self, tx: Transaction, rcpt: str) -> Reply: ...
    def data_end(self, tx: Transaction, size: int | None = None) -> DataVerdict: ...


def run_transaction(server: ReceivingServerLike, att: Attempt, size: int | None = None) -> AttemptResult:
    """Drive one SMTP transaction stage by stage against a receiving state machine.

    Shared by the memory transport and tests so the order of stages (and so which
    fault or policy answers first) is defined once.
    """
    n = len(att.rcpts)
    tx = Transaction(now=att.now, client_ip=att.client_ip, domain=att.domain, message_id=att.message_id,
                     attempt=att.attempt)
    for step in (lambda: server.connect(tx), lambda: server.helo(tx, att.helo),
                 lambda: server.mail(tx, att.mail_from, size)):
        r = step()
        if not r.ok:
            return AttemptResult((r,) * n, None, None, delay=tx.delay)
    replies: list[Reply | None] = []
    for rcpt in att.rcpts:
        r = server.rcpt(tx, rcpt)
        if r.code == 0:
            return AttemptResult((DROPPED,) * n, None, None, delay=tx.delay)
        replies.append(None if r.ok else r)
    if not tx.rcpts:
        return AttemptResult(tuple(r for r in replies if r is not None), None, None, delay=tx.delay)
    v = server.data_end(tx, size)  # with tx.delay > 0 it files nothing: Transport.settle does, later
    if v.reply.code == 0:
        return AttemptResult((DROPPED,) * n, None, v.spf_result, v.spf_explanation, tx.delay)
    final = tuple(v.reply if r is None else r for r in replies)
    return AttemptResult(final, v.folder, v.spf_result, v.spf_explanation, tx.delay)
