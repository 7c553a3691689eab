"""The recipient side of SMTP: mailbox policies, greylisting, quotas, faults, SPF filing.

One state machine serves both transports: the memory transport calls it stage by
stage, and the aiosmtpd sink calls the same methods from its handler hooks, so
a scenario gets the same replies in memory and over the wire. Time is always
passed in (``now``), never read here: the simulator's virtual clock or, for a
standalone sink, the caller's wall clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, overload

from simulator.domain.entities import MailboxDomain
from simulator.domain.faults import (
    FAULT_SPECS,
    Fault,
    FaultWindows,
    first_firing,
    shareable,
    smtp_faults_by_stage,
    spec_of,
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: code (0 for a dropped connection), RFC 3463 enhanced code, text, and any delay."""

    code: int  # 0: the connection dropped without a reply
    enhanced: str  # RFC 3463 status code, "" for a dropped connection
    text: str
    delay: int = 0  # seconds the server took (slow fault)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        return self.code == 0 or 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def line(self) -> str:
        if self.code == 0:
            return "(connection dropped)"
        return f"{self.code} {self.enhanced} {self.text}".replace("  ", " ")


OK_GREETING = Reply(220, "", "mailsim ESMTP ready")
OK = Reply(250, "2.0.0", "OK")
OK_SENDER = Reply(250, "2.1.0", "Sender OK")
OK_RCPT = Reply(250, "2.1.5", "Recipient OK")
DATA_GO = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
DROPPED = Reply(0, "", "connection dropped")
UNKNOWN_USER = Reply(550, "5.1.1", "Recipient address rejected: user unknown")
QUOTA = Reply(452, "4.2.2", "Mailbox full, try again later")
GREYLISTED = Reply(451, "4.7.1", "Greylisted, please try again later")
SPF_REJECT = Reply(550, "5.7.23", "SPF validation failed")
SPF_DEFER = Reply(451, "4.7.24", "SPF validation error, try again later")
RATE_LIMITED = Reply(421, "4.7.28", "Too many messages from your IP address, try again later")
TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")

# the reply of every SMTP fault kind whose effect is a reply, from the one table (domain/faults.py)
FAULT_REPLY: dict[str, Reply] = {k: (DROPPED if s.reply[0] == 0 else Reply(*s.reply))
                                 for k, s in FAULT_SPECS.items() if s.effect == "reply" and s.reply is not None}
OUTAGE = FAULT_REPLY["outage"]
TEMPFAIL = FAULT_REPLY["tempfail"]
PERMFAIL = FAULT_REPLY["permfail"]
# SMTP fault effects the receiver knows how to play; a kind with another effect is refused at start
RECEIVER_EFFECTS = frozenset({"reply", "delay"})


class MessageIds(Sequence[str]):
    """Message-IDs read off ``items`` only when someone reads them (``key`` gives an item's id).

    The MTA hands a cohort's emails to the transport this way: a shared transaction files the
    cohort's copies into mailboxes (:meth:`Mailbox.file_run`) whose ids are usually never read
    one by one, and an email spells its Message-ID only when asked (``engine.state.Email``).
    Immutable, as ``file_run`` needs: ``items`` is a tuple.
    """

    __slots__ = ("items", "key")

    def __init__(self, items: tuple[Any, ...], key: Callable[[Any], str]) -> None:
        self.items = items
        self.key = key

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> MessageIds: ...

    def __getitem__(self, i: int | slice) -> str | MessageIds:
        if isinstance(i, slice):
            return MessageIds(self.items[i], self.key)
        return self.key(self.items[i])

    def __iter__(self) -> Iterator[str]:
        return map(self.key, self.items)


class Mailbox:
    """What one address holds: counts per folder, and every copy filed, (message id, folder, time), once.

    The MTA files a cohort's copies in one call, so copies are kept as the runs they were filed
    in (message ids, folder, time) and the per-copy tuples are made only when ``messages`` is
    read (a result's stored copies, ``--maildir``, the chaos checks, the sink's undo): a
    million-email run files a million copies and usually reads none of them one by one
    (≈5 % of its ``simulate()`` and 80 MB were those tuples).
    """

    __slots__ = ("_messages", "_runs", "bounces", "inbox", "junk")

    def __init__(self, inbox: int = 0, junk: int = 0, bounces: int = 0,
                 messages: list[tuple[str, str, int]] | None = None) -> None:
        self.inbox = inbox
        self.junk = junk
        self.bounces = bounces
        self._messages: list[tuple[str, str, int]] = [] if messages is None else messages
        self._runs: list[tuple[Sequence[str], str, int]] = []

    def file_run(self, message_ids: Sequence[str], folder: str, now: int) -> None:
        """Keep copies filed together (the caller counts them); the sequence is not changed afterwards."""
        self._runs.append((message_ids, folder, now))

    @property
    def messages(self) -> list[tuple[str, str, int]]:
        """Every copy in the order filed; the list itself (changing it changes the mailbox)."""
        if self._runs:
            flat = self._messages
            for ids, folder, now in self._runs:
                flat.extend(zip(ids, repeat(folder), repeat(now)))
            self._runs = []
        return self._messages

    @property
    def stored(self) -> int:
        return self.inbox + self.junk

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mailbox):
            return NotImplemented
        return ((self.inbox, self.junk, self.bounces, self.messages)
                == (other.inbox, other.junk, other.bounces, other.messages))

    __hash__ = None  # type: ignore[assignment]  # mutable, equal by value: as the dataclass it replaces

    def __repr__(self) -> str:
        return f"Mailbox(inbox={self.inbox}, junk={self.junk}, bounces={self.bounces}, messages={self.messages!r})"


class MailStore:
    """Every address's mailbox: counts per folder and the copies filed, once each."""

    def __init__(self) -> None:
        self.boxes: dict[str, Mailbox] = {}

    def box(self, address: str) -> Mailbox:
        key = address.lower()
        b = self.boxes.get(key)
        if b is None:
            b = self.boxes[key] = Mailbox()
        return b

    def file(self, address: str, folder: str, message_id: str, now: int) -> None:
        b = self.box(address)
        if folder == "junk":
            b.junk += 1
        elif folder == "bounce":
            b.bounces += 1
        else:
            b.inbox += 1
        b.file_run((message_id,), folder, now)


# (now, client ip, mail from, helo) -> (spf result, explanation)
SpfFunc = Callable[[int, str, str, str], tuple[str, str]]


@dataclass(slots=True)
class Transaction:
    """One SMTP session's state on the receiving side."""

    now: int
    client_ip: str
    domain: str | None  # the recipient domain the client connected for (None: unknown)
    message_id: str = ""
    attempt: int = 1
    helo: str = ""
    mail_from: str = ""
    rcpts: list[str] = field(default_factory=list)
    delay: int = 0


@dataclass(frozen=True, slots=True)
class DataVerdict:
    """What the end of DATA decided: the reply, the folder (None: not stored) and the SPF result behind it."""

    reply: Reply
    folder: str | None  # "inbox" | "junk" | None (not stored)
    spf_result: str
    spf_explanation: str
    received_spf: str  # the Received-SPF header value


@dataclass(frozen=True, slots=True)
class DomainPlan:
    """What the receiver does for one recipient domain during one fault window.

    Decided once per (domain, window) (see ``FaultWindows``) instead of per stage of
    every transaction: the domain's policy, the SMTP faults that may fire there by
    stage, and whether every message of one envelope gets the same replies.
    """

    policy: MailboxDomain
    stages: dict[str, tuple[Fault, ...]]  # stage -> candidate faults in file order; empty stages left out
    shareable: bool
    faults: tuple[int, ...]  # the candidates' indices: what a memoised transaction's key needs of the faults


class ReceivingServer:
    """Mail servers for the scenario's ``mailboxes:`` domains (and any other domain: accept-all)."""

    def __init__(
        self,
        mailboxes: Sequence[MailboxDomain],
        faults: Sequence[Fault],
        seed: int,
        spf: SpfFunc,
        store: MailStore | None = None,
        hostname: str = "mx.mailsim.test",
    ) -> None:
        self.domains = {m.domain.lower(): m for m in mailboxes}
        # every kind must be in the table (spec_of raises) and an SMTP one must have a behaviour here
        self.faults = tuple(f for f in faults if spec_of(f.kind).protocol == "smtp")
        for f in self.faults:
            effect = spec_of(f.kind).effect
            if effect not in RECEIVER_EFFECTS or (effect == "reply" and f.kind not in FAULT_REPLY):
                raise ValueError(f"the receiver has no behaviour for fault kind {f.kind!r}")
        self._windows = FaultWindows(self.faults)
        self._plans: dict[tuple[str | None, int], DomainPlan] = {}
        # what a transport derives from this server's plans and keeps while the server lives
        # (``transport.draws``): keyed by candidate fault indices, which mean something only here
        self.derived: dict[tuple[object, ...], Any] = {}
        self.seed = seed
        self.spf = spf
        self.store = store if store is not None else MailStore()
        self.hostname = hostname
        self._greylist: dict[tuple[str, str, str], int] = {}
        # a policy's known users as a set, by the identity of its users tuple (kept to prove it is the same)
        self._user_sets: dict[int, tuple[tuple[str, ...], frozenset[str]]] = {}
        self._known: dict[str, tuple[MailboxDomain, Reply | None]] = {}  # rcpt -> rcpt_known's answer
        self._accepted: dict[tuple[str, str], deque[int]] = {}  # (domain, client ip) -> acceptance times
        self._default = MailboxDomain(domain="*")

    def plan(self, domain: str | None, now: int) -> DomainPlan:
        """The :class:`DomainPlan` for ``domain`` at ``now`` (cached per fault window)."""
        key = (domain, self._windows.index(now))
        hit = self._plans.get(key)
        if hit is None:
            pol = self.policy(domain)
            stages = smtp_faults_by_stage(self.faults, now=now, domain=domain)
            candidates = [f for fs in stages.values() for f in fs]
            counters = pol.quota or pol.rate_limit is not None  # per-message state: no shared transaction
            hit = self._plans[key] = DomainPlan(pol, stages, not counters and shareable(candidates),
                                                tuple(sorted(f.index for f in candidates)))
        return hit

    def shareable(self, domain: str, now: int) -> bool:
        """Would every message of one envelope get the same replies right now?

        True unless a per-message draw (a fault with probability < 1), a fault that
        counts, or a per-mailbox counter (quota) is in play. The memory transport then
        runs one transaction and files the identical copies, which is what makes a
        million emails cheap.
        """
        return self.plan(domain, now).shareable

    def file_copies(self, rcpts: Sequence[str], folder: str, message_ids: Sequence[str], now: int) -> None:
        self.file_boxes([self.store.box(r) for r in rcpts], folder, message_ids, now)

    def file_boxes(self, boxes: Sequence[Mailbox], folder: str, message_ids: Sequence[str], now: int) -> None:
        """:meth:`file_copies` for mailboxes already looked up (``store.box``)."""
        # kept as they are when they cannot change: a tuple, or a cohort's ids not yet spelled (MessageIds)
        ids = message_ids if type(message_ids) is tuple or type(message_ids) is MessageIds else tuple(message_ids)
        for box in boxes:
            if folder == "junk":
                box.junk += len(ids)
            else:
                box.inbox += len(ids)
            box.file_run(ids, folder, now)

    def policy(self, domain: str | None) -> MailboxDomain:
        if domain is None:
            return self._default
        return self.domains.get(domain.lower(), self._default)

    def _fault(self, tx: Transaction, stage: str, rcpt: str = "") -> Reply | None:
        if not self.faults:
            return None
        candidates = self.plan(tx.domain, tx.now).stages.get(stage)
        if not candidates:
            return None
        f = first_firing(candidates, seed=self.seed, stage=stage, message_id=tx.message_id, rcpt=rcpt,
                         attempt=tx.attempt)
        if f is None:
            return None
        if f.kind not in FAULT_REPLY:  # a delay (slow): the stage answers normally, later
            tx.delay += f.delay
            return None
        return FAULT_REPLY[f.kind]

    # The stages, in SMTP order. Each returns the reply the client sees.
    def connect(self, tx: Transaction) -> Reply:
        return self._fault(tx, "connect") or OK_GREETING

    def helo(self, tx: Transaction, name: str) -> Reply:
        tx.helo = name
        return self._fault(tx, "helo") or Reply(250, "", self.hostname)

    def mail(self, tx: Transaction, sender: str, size: int | None = None) -> Reply:
        tx.mail_from = sender
        tx.rcpts.clear()
        limit = self.policy(tx.domain).size_limit
        if size is not None and limit and size > limit:
            return TOO_BIG
        return self.rate_limited(tx.domain, tx.client_ip, tx.now) or self._fault(tx, "mail") or OK_SENDER

    def rate_limited(self, domain: str | None, client_ip: str, now: int) -> Reply | None:
        """421 4.7.28 at MAIL FROM while ``client_ip`` has had the policy's count of messages accepted
        in the last ``per`` seconds (the throttle large providers apply to a sending IP)."""
        pol = self.policy(domain)
        limit = pol.rate_limit
        if limit is None:
            return None
        times = self._accepted.get((pol.domain, client_ip))
        if not times:
            return None
        while times and times[0] <= now - limit.per:
            times.popleft()
        return RATE_LIMITED if len(times) >= limit.messages else None

    def count_accepted(self, domain: str | None, client_ip: str, now: int) -> None:
        """A message was accepted from ``client_ip``: it counts against a rate limit from ``now``."""
        pol = self.policy(domain)
        if pol.rate_limit is not None:
            self._accepted.setdefault((pol.domain, client_ip), deque()).append(now)

    def rcpt(self, tx: Transaction, rcpt: str) -> Reply:
        fault = self._fault(tx, "rcpt", rcpt.lower())
        if fault is not None:
            return fault
        refusal = self.rcpt_policy(tx.client_ip, tx.mail_from, rcpt, tx.now)
        if refusal is not None:
            return refusal
        tx.rcpts.append(rcpt)
        return OK_RCPT

    def rcpt_policy(self, client_ip: str, mail_from: str, rcpt: str, now: int) -> Reply | None:
        """The mailbox policy's answer to RCPT once no fault fired: a refusal, or None (accepted)."""
        pol, refusal = self.rcpt_known(rcpt)
        return refusal if refusal is not None else self.rcpt_counters(pol, client_ip, mail_from, rcpt, now)

    def rcpt_known(self, rcpt: str) -> tuple[MailboxDomain, Reply | None]:
        """The recipient domain's policy, and its refusal when it depends on the address alone (unknown user).

        Asked once per recipient of every envelope, retries included; the policies are fixed for the
        server's life, so each address's answer is kept.
        """
        hit = self._known.get(rcpt)
        if hit is None:
            if len(self._known) > 65_536:  # a sink facing hostile clients: distinct addresses stay bounded
                self._known.clear()
            hit = self._known[rcpt] = self._rcpt_known(rcpt)
        return hit

    def _rcpt_known(self, rcpt: str) -> tuple[MailboxDomain, Reply | None]:
        local, _, domain = rcpt.rpartition("@")
        pol = self.policy(domain)
        users = pol.users
        if users is None:
            return pol, None
        known = self._user_sets.get(id(users))
        if known is None or known[0] is not users:  # a tuple is searched item by item: hundreds of users
            known = self._user_sets[id(users)] = (users, frozenset(users))
        return (pol, None) if local.lower() in known[1] else (pol, UNKNOWN_USER)

    def rcpt_counters(self, pol: MailboxDomain, client_ip: str, mail_from: str, rcpt: str, now: int) -> Reply | None:
        """The parts of RCPT's answer that keep state: the mailbox quota, then greylisting.

        Greylisting records the triplet's first attempt here, so this is called exactly
        where a real server would see the RCPT (only when ``pol.quota or pol.greylist``).
        """
        if pol.quota and self.store.box(rcpt).stored >= pol.quota:
            return QUOTA
        if pol.greylist:
            key = (client_ip, mail_from.lower(), rcpt.lower())
            first = self._greylist.setdefault(key, now)
            if now - first < pol.greylist:
                return GREYLISTED
        return None

    def data_start(self, tx: Transaction) -> Reply:
        return DATA_GO

    def data_end(self, tx: Transaction, size: int | None = None) -> DataVerdict:
        """End of DATA: SPF for (client IP, MAIL FROM, HELO), then the domain's policy files it.

        A server stores the message when it answers 250. Without a slow fault that is ``tx.now``
        and the copies are filed here. With one (``tx.delay > 0`` once every stage has run) the
        250 goes out ``tx.delay`` later: nothing is filed here and the verdict's ``folder`` says
        where the copies go; whoever applies the reply at ``tx.now + tx.delay`` files them then
        with :meth:`file_copies` (the MTA through ``Transport.settle``; the sink after its real
        wait). A run that ends inside the delay so holds no copy, and a quota counts the message
        from the moment it is stored.
        """
        result, explanation = self.spf(tx.now, tx.client_ip, tx.mail_from, tx.helo)
        header = (
            f"{result} ({self.hostname}: {explanation}) client-ip={tx.client_ip};"
            f" envelope-from=\"{tx.mail_from}\"; helo={tx.helo};"
        )
        fault = self._fault(tx, "data")
        if fault is not None:
            return DataVerdict(fault, None, result, explanation, header)
        refusal, folder = self.spf_action(tx.rcpts[0] if tx.rcpts else None, tx.domain, result)
        if refusal is not None:
            return DataVerdict(refusal, None, result, explanation, header)
        self.count_accepted(tx.domain, tx.client_ip, tx.now)
        if not tx.delay:
            for r in tx.rcpts:
                self.store.file(r, folder, tx.message_id, tx.now)
        # else (a slow fault): the 250 — and so the stored copy — comes ``tx.delay`` later; the
        # caller files the copies then (``file_copies`` at ``tx.now + tx.delay``), see ``data_end``
        return DataVerdict(Reply(250, "2.0.0", f"OK queued as {tx.message_id}"), folder, result, explanation, header)

    def spf_action(self, first_rcpt: str | None, domain: str | None, result: str) -> tuple[Reply | None, str]:
        """The first accepted recipient's domain's ``spf_policy`` for an SPF ``result``: (refusal, folder)."""
        if first_rcpt is not None:
            domain = first_rcpt.rpartition("@")[2]
        action = self.policy(domain).spf_policy.action(result)
        if action == "reject":
            return SPF_REJECT, ""
        if action == "defer":
            return SPF_DEFER, ""
        return None, "junk" if action == "junk" else "inbox"


