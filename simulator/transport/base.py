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

from simulator.domain.faults import first_firing
from simulator.net.receiver import DROPPED, FAULT_REPLY, TOO_BIG, ReceivingServer, Reply


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


def run_transaction(server: ReceivingServer, att: Attempt, size: int | None = None) -> AttemptResult:
    """Drive one SMTP transaction stage by stage against the receiving state machine."""
    return run_transactions(server, att, (att.message_id,), size)[0]


def run_transactions(server: ReceivingServer, att: Attempt, message_ids: Sequence[str],
                     size: int | None = None) -> list[AttemptResult]:
    """One SMTP transaction per message of one envelope (``att`` with each of ``message_ids``), in order.

    The one definition of the stage order for the memory transport (and so of which
    fault or policy answers first): connect, HELO, MAIL (size limit, then faults), each
    RCPT (faults, then the mailbox policy), DATA (SPF, faults, then the SPF policy). It
    plays the same ``ReceivingServer`` parts the sink's hooks play, but what does not
    depend on the message is decided once for the envelope: the domain's plan of faults
    by stage (per fault window), the SPF verdict, the policy's refusals and the results
    themselves (equal results are one object, so the MTA handles them once). Per
    message it draws only the probabilistic faults and asks the counting parts (quota,
    greylist) in the order a real server would, filing each accepted copy before the
    next message is looked at.
    """
    now = att.now
    n = len(att.rcpts)
    seed = server.seed
    attempt = att.attempt
    plan = server.plan(att.domain, now)
    stages = plan.stages
    early = [(st, stages[st]) for st in ("connect", "helo", "mail") if st in stages]
    rcpt_faults = stages.get("rcpt")
    data_faults = stages.get("data")
    too_big = size is not None and bool(plan.policy.size_limit) and size > plan.policy.size_limit
    rcpts = [(r, r.lower()) for r in att.rcpts]
    client_ip, mail_from, helo = att.client_ip, att.mail_from, att.helo
    spf: tuple[str, str] | None = None
    shared: dict[tuple[object, ...], AttemptResult] = {}
    out: list[AttemptResult] = []
    for mid in message_ids:
        delay = 0
        fail: Reply | None = None
        for stage, candidates in early:
            if stage == "mail" and too_big:
                fail = TOO_BIG
                break
            f = first_firing(candidates, seed=seed, stage=stage, message_id=mid, rcpt="", attempt=attempt)
            if f is not None:
                reply = FAULT_REPLY.get(f.kind)
                if reply is None:
                    delay += f.delay
                else:
                    fail = reply
                    break
        else:
            if too_big:
                fail = TOO_BIG
        if fail is not None:
            key: tuple[object, ...] = ("fail", fail, delay)
            res = shared.get(key)
            if res is None:
                res = shared[key] = AttemptResult((fail,) * n, None, None, delay=delay)
            out.append(res)
            continue
        replies: list[Reply | None] = []
        accepted: list[str] = []
        dropped = False
        for rcpt, low in rcpts:
            if rcpt_faults:
                f = first_firing(rcpt_faults, seed=seed, stage="rcpt", message_id=mid, rcpt=low, attempt=attempt)
                if f is not None:
                    reply = FAULT_REPLY.get(f.kind)
                    if reply is None:
                        delay += f.delay
                    else:
                        if reply.code == 0:
                            dropped = True
                            break
                        replies.append(reply)
                        continue
            refusal = server.rcpt_policy(client_ip, mail_from, rcpt, now)
            replies.append(refusal)
            if refusal is None:
                accepted.append(rcpt)
        if dropped:
            key = ("fail", DROPPED, delay)
            res = shared.get(key)
            if res is None:
                res = shared[key] = AttemptResult((DROPPED,) * n, None, None, delay=delay)
            out.append(res)
            continue
        if not accepted:
            final = tuple(r for r in replies if r is not None)
            key = ("refused", final, delay)
            res = shared.get(key)
            if res is None:
                res = shared[key] = AttemptResult(final, None, None, delay=delay)
            out.append(res)
            continue
        if spf is None:  # SPF of (IP, MAIL FROM, HELO) at one instant: one verdict for the envelope
            spf = server.spf(now, client_ip, mail_from, helo)
        result, explanation = spf
        data_fail: Reply | None = None
        if data_faults:
            f = first_firing(data_faults, seed=seed, stage="data", message_id=mid, rcpt="", attempt=attempt)
            if f is not None:
                data_fail = FAULT_REPLY.get(f.kind)
                if data_fail is None:
                    delay += f.delay
        folder: str | None = None
        if data_fail is None:
            data_fail, folder = server.spf_action(accepted[0], att.domain, result)
        if data_fail is not None:
            if data_fail.code == 0:
                key = ("dropped-data", delay)
                res = shared.get(key)
                if res is None:
                    res = shared[key] = AttemptResult((DROPPED,) * n, None, result, explanation, delay)
            else:
                final = tuple(data_fail if r is None else r for r in replies)
                key = ("data", final, delay)
                res = shared.get(key)
                if res is None:
                    res = shared[key] = AttemptResult(final, None, result, explanation, delay)
            out.append(res)
            continue
        assert folder is not None
        if not delay:
            server.file_copies(accepted, folder, (mid,), now)
        # else (a slow fault): the copies are filed when the 250 is applied (Transport.settle)
        key = ("ok", tuple(replies), folder, delay)
        res = shared.get(key)
        if res is None:
            # the 250's text names the first message it was shared by, as a cohort's one transaction does
            ok = Reply(250, "2.0.0", f"OK queued as {mid}")
            res = shared[key] = AttemptResult(tuple(ok if r is None else r for r in replies), folder, result,
                                              explanation, delay)
        out.append(res)
    return out
