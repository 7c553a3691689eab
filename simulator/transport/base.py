"""The seam between the engine's outgoing MTA and whatever plays the recipients' servers.

The engine decides *what* to attempt and *when* (virtual time); a transport
only carries one SMTP transaction and reports the replies. The memory transport
runs the receiving state machine in-process; the wire transport speaks real
SMTP to the loopback sink. Neither may read a clock: ``now`` travels with the
attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from itertools import repeat
from typing import Final, Protocol, overload

from mypy_extensions import mypyc_attr

from simulator.domain.faults import draw_tail, first_firing
from simulator.net.dnsview import DnsView
from simulator.net.receiver import DROPPED, FAULT_REPLY, TOO_BIG, Mailbox, MailStore, ReceivingServer, Reply
from simulator.net.zone import Zone
from simulator.scenario.model import Scenario
from simulator.transport.draws import Draw
from simulator.transport.draws import parts as draw_parts


@dataclass(slots=True, init=False)
class Attempt:
    """One SMTP transaction to attempt: the envelope, the client IP and HELO, the MX, and the message.

    Treated as immutable (``dataclasses.replace`` makes a variant) but not declared frozen: one is made
    per attempt, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost 3×. The
    ``__init__`` is written out: the one ``dataclass`` generates runs interpreted in the compiled build.
    """

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
    size: int | None  # declared SIZE (RFC 1870); set when the receiver's limit could matter

    def __init__(self, now: int, message_id: str, attempt: int, client_ip: str, helo: str, mail_from: str,
                 domain: str, mx_host: str, mx_ip: str, rcpts: tuple[str, ...], render: Callable[[], bytes],
                 size: int | None = None) -> None:
        self.now = now
        self.message_id = message_id
        self.attempt = attempt
        self.client_ip = client_ip
        self.helo = helo
        self.mail_from = mail_from
        self.domain = domain
        self.mx_host = mx_host
        self.mx_ip = mx_ip
        self.rcpts = rcpts
        self.render = render
        self.size = size


@dataclass(slots=True, init=False)
class AttemptResult:
    """The replies of one transaction, per stage and per recipient, and where the receiver filed it.

    Treated as immutable and shared by every message that got it (identity tells results apart);
    not declared frozen for the cost of a frozen ``__init__``, as :class:`Attempt`.
    """

    replies: tuple[Reply, ...]  # one per rcpt, the reply that decided it
    folder: str | None  # where accepted recipients were (delay 0) or are to be (settle) filed: inbox/junk
    spf_result: str | None  # the receiver's SPF verdict, when it got as far as DATA
    spf_explanation: str
    delay: int  # seconds the transaction took in virtual time (slow faults)

    def __init__(self, replies: tuple[Reply, ...], folder: str | None, spf_result: str | None,
                 spf_explanation: str = "", delay: int = 0) -> None:  # written out: see Attempt
        self.replies = replies
        self.folder = folder
        self.spf_result = spf_result
        self.spf_explanation = spf_explanation
        self.delay = delay


@mypyc_attr(native_class=False)  # a list subclass (see RcptSet)
class Results(list[AttemptResult]):
    """One envelope's results in message order, and the distinct result objects among them.

    ``run_transactions`` hands out one object per distinct result (``_Envelope.shared``), so the
    MTA learns from ``distinct`` alone whether every message answered alike and which delays
    occur, instead of looking at every message's result again.
    """

    __slots__ = ("distinct",)

    def __init__(self, results: list[AttemptResult], distinct: Iterable[AttemptResult]) -> None:
        super().__init__(results)
        self.distinct = tuple(distinct)


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

    @property
    def distinct(self) -> tuple[AttemptResult, ...]:
        """The one result (as :attr:`Results.distinct` lists an envelope's few)."""
        return (self.result,)


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


@dataclass(frozen=True, slots=True)
class EnginePort:
    """All a transport may see of the engine that drives it (a transport never holds the engine).

    ``zone`` is the run's live DNS data (timeline edits show in it), ``store`` the mail
    store the receivers file into, ``invoice_of(message_id)`` the invoice an engine
    message id belongs to (None: not one of the run's messages), and ``dns_now()`` the
    virtual time of the engine's latest DNS question (faults are judged at it).
    """

    scenario: Scenario
    zone: Zone
    store: MailStore
    invoice_of: Callable[[str], str | None]
    dns_now: Callable[[], int]


class Transport(Protocol):
    """Carries one SMTP transaction at a time; see the module docstring.

    A transport that answers DNS itself (the wire transport's loopback server) offers
    its view as ``dns`` and its receiving server as ``receiver``; the engine then asks
    its own questions through them, so both sides see the same answers. Others leave
    them None.
    """

    dns: DnsView | None
    receiver: ReceivingServer | None

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

    What does not depend on the message is decided once for the envelope (see
    :class:`_Envelope`). When no counter (quota, greylist) or size limit is in play, a
    message for which no probabilistic fault fires gets exactly the result of the first
    such message: it costs its draws and an append, and its copies are filed in one go
    with the others of its run (flushed before any message that takes the full path, so
    every mailbox holds its messages in the order they were sent).
    """
    env = _Envelope(server, att, size)
    if env.batchable:
        out = _batched(env, message_ids)
    elif env.quota_only:
        out = _quota_runs(env, message_ids)
    else:
        out = [env.one(mid) for mid in message_ids]
    return Results(out, env.shared.values())


def _batched(env: _Envelope, message_ids: Sequence[str]) -> list[AttemptResult]:
    """:func:`run_transactions` when no counter or size limit is in play (``env.batchable``)."""
    out: list[AttemptResult] = []
    n = len(message_ids)
    i = _lead(env, message_ids, out)
    if i is None or i == n:  # refused before DATA (see _lead), or every message taken whole
        return out
    # the message before i got as far as DATA: DATA's draws matter from there on
    loud = env.loud(message_ids, None, i - 1)
    default: AttemptResult | None = None
    if not loud or loud[0] != i - 1:
        default = out[-1]
    else:
        loud = loud[1:]
    while i < n and default is None:  # up to the first quiet message, whose result is the default
        quiet = not loud or i != loud[0]
        res = env.one(message_ids[i], quiet)
        if quiet:
            default = res
        else:
            loud = loud[1:]
        out.append(res)
        i += 1
    if default is None:
        return out
    # a run of quiet messages gets the default, its copies filed in one go, before the loud message after
    # it (every mailbox keeps the order sent); a slice of a cohort's MessageIds is one too: ids unspelled
    for j in loud:
        if j > i:
            out.extend([default] * (j - i))
            env.file(default, message_ids[i:j])
        out.append(env.one(message_ids[j]))
        i = j + 1
    if n > i:
        out.extend([default] * (n - i))
        env.file(default, message_ids[i:])
    return out


def _lead(env: _Envelope, message_ids: Sequence[str], out: list[AttemptResult]) -> int | None:
    """Take whole, in order, the messages up to the first one no fault before DATA fires for; then,
    if that one was refused before DATA, the rest of the envelope. Returns where the caller goes
    on (``len(message_ids)`` when every message is done that way), or None when this finished it.

    Only the draws of the stages before DATA (connect, HELO, MAIL, RCPT) are made first. A message
    none of them fires for goes as far as any such message goes: when the first one is refused at
    or before RCPT (no SPF verdict: DATA never came), every later one is refused alike whatever
    DATA's faults would draw (they are not drawn: for a full mailbox's retries, greylisted first
    attempts and unknown users, that was most of an envelope's draws), and a message a fault
    before DATA fires for still takes its own transaction, in order. The caller's paths (all the
    draws) take over when it got as far as DATA.
    """
    pre = env.loud(message_ids, env.pre_draws)
    n = len(message_ids)
    i = 0
    for j in pre:  # the leading messages a fault before DATA fires for
        if j != i:
            break
        out.append(env.one(message_ids[i]))
        i += 1
    if i == n:
        return n
    res = env.one(message_ids[i])  # every draw of its own, DATA's too if it gets there
    out.append(res)
    i += 1
    if res.spf_result is not None or res.delay:
        return i
    for j in pre:
        if j < i:
            continue
        out.extend([res] * (j - i))
        out.append(env.one(message_ids[j]))
        i = j + 1
    out.extend([res] * (n - i))
    return None


def _quota_runs(env: _Envelope, message_ids: Sequence[str]) -> list[AttemptResult]:
    """:func:`run_transactions` for one recipient whose mailbox has a quota (``env.quota_only``).

    A message no fault fires for ("quiet") is accepted while the mailbox has room and refused
    (452 4.2.2) once it is full; nothing else about it depends on the message. So within a run
    of quiet messages the first one takes the whole transaction (:meth:`_Envelope.one`: filed,
    counted) and tells the answer: accepted — the next ones are accepted alike as long as the
    mailbox has room, filed in one go; refused (full, unknown user, refused by SPF) — the rest
    of the run is refused alike and changes nothing. A message some fault fires for takes the
    whole transaction in its place, so every mailbox holds its copies in send order.
    """
    out: list[AttemptResult] = []
    n = len(message_ids)
    start = _lead(env, message_ids, out)
    if start is None or start == n:  # refused before DATA (see _lead), or every message taken whole
        return out
    i = start
    loud = env.loud(message_ids, None, i)
    rcpt, _low, pol, _known, _counting = env.rcpts[0]
    boxes, key = env.server.store.boxes, rcpt.lower()  # a mailbox exists once it holds mail: not made here
    for j in [*loud, n]:
        while i < j:  # the quiet run [i, j)
            res = env.one(message_ids[i], True)
            out.append(res)
            i += 1
            if res.folder is None or res.delay or not res.replies[0].ok:
                out.extend([res] * (j - i))  # refused: the mailbox is as it was, so are the answers
                i = j
                break
            box = boxes.get(key)
            take = min(pol.quota - (box.stored if box is not None else 0), j - i)
            if take > 0:
                out.extend([res] * take)
                env.file(res, message_ids[i:i + take])
                i += take
        if j < n:
            out.append(env.one(message_ids[j]))
            i = j + 1
    return out


_UPDATE: Final = blake2b.update
_DIGEST: Final = blake2b.digest


class _Envelope:
    """One envelope's transactions: the one definition of the memory transport's stage order.

    Connect, HELO, MAIL (size limit, then faults), each RCPT (faults, then the mailbox
    policy), DATA (SPF, faults, then the SPF policy): the ``ReceivingServer`` parts the
    sink's hooks play, in the same order. Decided once per envelope: the domain's plan
    of faults by stage (per fault window), each recipient's policy and refusal by address
    alone, the SPF verdict and its action, and the results themselves (equal results are
    one object, so the MTA handles them once). Per message (:meth:`one`): the fault draws
    and the counting parts (quota, greylist) in the order a real server sees them, and the
    accepted copies are filed before the next message is looked at.
    """

    def __init__(self, server: ReceivingServer, att: Attempt, size: int | None) -> None:
        self.server = server
        self.att = att
        self.n = len(att.rcpts)
        self.seed = server.seed
        plan = server.plan(att.domain, att.now)
        parts = draw_parts(server, plan, att.attempt)
        self.early = parts.early
        self.mail_staged = parts.mail_staged
        self.rcpt_faults = parts.rcpt_faults
        self.data_faults = parts.data_faults
        limit = plan.policy.size_limit
        self.too_big = size is not None and bool(limit) and size > limit
        # per recipient, what does not change between messages: its policy, a refusal by address
        # alone (unknown user), whether a counter (quota, greylist) must be asked
        self.rcpts = []
        for r in att.rcpts:
            pol, known = server.rcpt_known(r)
            self.rcpts.append((r, r.lower(), pol, known, bool(pol.quota or pol.greylist)))
        self.mailbox: dict[str, Mailbox] = {}  # looked up when first filed into (a mailbox exists once it holds mail)
        self.actions: dict[str, tuple[Reply | None, str]] = {}
        self.spf: tuple[str, str] | None = None
        self.shared: dict[tuple[object, ...], AttemptResult] = {}
        # every draw a message could need, for :meth:`loud` (see draws.Parts); a fault that always fires: never quiet
        # ``pre_draws``: those of the stages before DATA (connect, HELO, MAIL, RCPT), see _lead
        if parts.rcpt_faults and self.rcpts:
            attempt = att.attempt
            self.pre_draws = [*parts.early_draws,
                              *[(head, draw_tail("", low, attempt, "rcpt"), below)
                                for _r, low, *_ in self.rcpts for head, below in parts.rcpt_draws]]
            self.draws = [*self.pre_draws, *parts.data_draws]
            self.always = parts.always or parts.rcpt_always
        else:
            self.pre_draws = list(parts.early_draws)
            self.draws = parts.draws
            self.always = parts.always
        # a quota counts per message; greylisting does not: one envelope at one instant is one triplet,
        # answered alike for every message once the first one that reaches RCPT has recorded it
        # a rate limit counts accepted messages: each one may change the next one's answer at MAIL
        self.rated = parts.rated
        plain = not self.too_big and not self.always and not self.rated
        quota = any(pol.quota for _r, _l, pol, *_ in self.rcpts)
        self.batchable = plain and not quota
        # one recipient whose only counter is a quota (no greylisting) and nothing else per message: the
        # quiet messages' answers follow from the mailbox's room alone (see _quota_runs)
        self.quota_only = plain and quota and self.n == 1 and not self.rcpts[0][2].greylist

    def loud(self, mids: Sequence[str], draws: Sequence[Draw] | None = None, start: int = 0) -> list[int]:
        """The positions (from ``start``) of the messages some fault fires for at some stage (the others are "quiet").

        A quiet message's result is the envelope's default. The same values as ``faults.draw`` for
        each candidate fault and stage (``draws``: all of them unless given), inlined, the digest
        compared as bytes (``draw_threshold``): this loop runs once per message and attempt, so it is
        kept tight.
        """
        if draws is None:
            draws = self.draws
        out: list[int] = []
        if not draws:
            return out
        if start:
            mids = mids[start:]
        update, digest = _UPDATE, _DIGEST  # the hash's methods called as functions (compiled: no lookup by name)
        if len(draws) == 1:
            ((head, tail, below),) = draws
            copy = head.copy
            for i, mid in enumerate(mids, start):
                h = copy()
                update(h, (mid + tail).encode())
                if digest(h) < below:
                    out.append(i)
            return out
        for i, mid in enumerate(mids, start):
            for head, tail, below in draws:
                h = head.copy()
                update(h, (mid + tail).encode())
                if digest(h) < below:
                    out.append(i)
                    break
        return out

    def file(self, result: AttemptResult, mids: Sequence[str]) -> None:
        """File the copies of ``mids``, which all got ``result`` (filed now unless delayed: settle does)."""
        if result.folder is None or result.delay:
            return
        boxes = self._boxes([r for r, rep in zip(self.att.rcpts, result.replies, strict=True) if rep.ok])
        if len(set(map(id, boxes))) < len(boxes):  # a mailbox named twice: its copies alternate by message
            for mid in mids:
                self.server.file_boxes(boxes, result.folder, (mid,), self.att.now)
            return
        self.server.file_boxes(boxes, result.folder, mids, self.att.now)

    def _boxes(self, rcpts: Sequence[str]) -> list[Mailbox]:
        boxes = []
        for r in rcpts:
            box = self.mailbox.get(r)
            if box is None:
                box = self.mailbox[r] = self.server.store.box(r)
            boxes.append(box)
        return boxes

    def _result(self, key: tuple[object, ...], replies: tuple[Reply, ...], folder: str | None,
                spf: tuple[str, str] | None, delay: int) -> AttemptResult:
        res = self.shared.get(key)
        if res is None:
            res = self.shared[key] = AttemptResult(replies, folder, spf[0] if spf else None, spf[1] if spf else "",
                                                   delay)
        return res

    def _mail_refusal(self) -> Reply | None:
        """MAIL FROM's answer before its faults: the size limit, then the rate limit (a counter, read only)."""
        if self.too_big:
            return TOO_BIG
        return self.server.rate_limited(self.att.domain, self.att.client_ip, self.att.now) if self.rated else None

    def one(self, mid: str, quiet: bool = False) -> AttemptResult:
        """The whole transaction for one message, its accepted copies filed (unless delayed).

        ``quiet``: :meth:`loud` found that no fault fires for this message, so its draws are not made again.
        """
        server, att, n, seed = self.server, self.att, self.n, self.seed
        now, attempt = att.now, att.attempt
        delay = 0
        fail: Reply | None = None
        if quiet:
            fail = self._mail_refusal()
        else:
            for stage, candidates in self.early:
                if stage == "mail":
                    fail = self._mail_refusal()
                    if fail is not None:
                        break
                f = first_firing(candidates, seed=seed, stage=stage, message_id=mid, rcpt="", attempt=attempt)
                if f is not None:
                    reply = FAULT_REPLY.get(f.kind)
                    if reply is None:
                        delay += f.delay
                    else:
                        fail = reply
                        break
            else:  # no break: MAIL was answered above when it has faults of its own
                fail = None if self.mail_staged else self._mail_refusal()
        if fail is not None:
            return self._result(("fail", fail, delay), (fail,) * n, None, None, delay)
        replies: list[Reply | None] = []
        accepted: list[str] = []
        rcpt_faults = None if quiet else self.rcpt_faults
        for rcpt, low, pol, known, counting in self.rcpts:
            if rcpt_faults:
                f = first_firing(rcpt_faults, seed=seed, stage="rcpt", message_id=mid, rcpt=low,
                                 attempt=attempt)
                if f is not None:
                    reply = FAULT_REPLY.get(f.kind)
                    if reply is None:
                        delay += f.delay
                    elif reply.code == 0:
                        return self._result(("fail", DROPPED, delay), (DROPPED,) * n, None, None, delay)
                    else:
                        replies.append(reply)
                        continue
            refusal = known if known is not None or not counting else server.rcpt_counters(
                pol, att.client_ip, att.mail_from, rcpt, now)
            replies.append(refusal)
            if refusal is None:
                accepted.append(rcpt)
        if not accepted:
            final = tuple(r for r in replies if r is not None)
            return self._result(("refused", final, delay), final, None, None, delay)
        if self.spf is None:  # SPF of (IP, MAIL FROM, HELO) at one instant: one verdict for the envelope
            self.spf = server.spf(now, att.client_ip, att.mail_from, att.helo)
        spf = self.spf
        data_fail: Reply | None = None
        if self.data_faults and not quiet:
            f = first_firing(self.data_faults, seed=seed, stage="data", message_id=mid, rcpt="", attempt=attempt)
            if f is not None:
                data_fail = FAULT_REPLY.get(f.kind)
                if data_fail is None:
                    delay += f.delay
        folder = ""
        if data_fail is None:
            action = self.actions.get(accepted[0])
            if action is None:
                action = self.actions[accepted[0]] = server.spf_action(accepted[0], att.domain, spf[0])
            data_fail, folder = action
        if data_fail is not None:
            if data_fail.code == 0:
                return self._result(("dropped-data", delay), (DROPPED,) * n, None, spf, delay)
            refused = tuple(data_fail if r is None else r for r in replies)
            return self._result(("data", refused, delay), refused, None, spf, delay)
        if self.rated:
            server.count_accepted(att.domain, att.client_ip, now)
        if not delay:
            server.file_boxes(self._boxes(accepted), folder, (mid,), now)
        # else (a slow fault): the copies are filed when the 250 is applied (Transport.settle)
        key = ("ok", tuple(replies), folder, delay)
        res = self.shared.get(key)
        if res is None:
            # the 250's text names the first message it was shared by, as a cohort's one transaction does
            ok = Reply(250, "2.0.0", f"OK queued as {mid}")
            res = self.shared[key] = AttemptResult(tuple(ok if r is None else r for r in replies), folder, spf[0],
                                                   spf[1], delay)
        return res
