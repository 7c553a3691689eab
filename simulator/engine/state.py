"""Per-email state the engine mutates: plain ``__slots__`` objects, no process per email.

A million emails is a normal run (DESIGN §6), so these hold only what the
outputs need; anything shared (recipient plans, sender decisions) is a
reference to one frozen object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from mypy_extensions import mypyc_attr

from simulator.domain.recipients import RecipientPlan
from simulator.domain.sender import SenderDecision


class Rcpt:
    """One recipient's delivery state on an email; shared copy-on-write by the emails of a property (RcptSet)."""

    __slots__ = ("address", "at", "attempts", "code", "domain", "enhanced", "evidence", "folder", "outcome",
                 "plan", "reason")

    def __init__(self, plan: RecipientPlan, at: int | None) -> None:
        self.plan = plan
        self.address = plan.address or plan.email
        self.domain = plan.domain
        if plan.skip_reason is None:
            self.outcome = "none"
            self.reason: str | None = None
            self.at: int | None = None
        else:
            self.outcome = "skipped"
            self.reason = plan.skip_reason
            self.at = at
        self.code: int | None = None
        self.enhanced: str | None = None
        self.folder: str | None = None
        self.attempts = 0
        self.evidence: str | None = None  # the last reply line or cause, for explain

    def copy(self) -> Rcpt:
        c = Rcpt(self.plan, self.at)  # every slot is set below (compiled classes have no __new__ of their own)
        c.address, c.domain, c.outcome, c.reason, c.at = self.address, self.domain, self.outcome, self.reason, self.at
        c.code, c.enhanced, c.folder, c.attempts, c.evidence = (self.code, self.enhanced, self.folder, self.attempts,
                                                                self.evidence)
        return c


@mypyc_attr(native_class=False)  # a list subclass: mypyc compiles only classes with a plain base
class RcptSet(list[Rcpt]):
    """An email's recipients, shared copy-on-write by every email whose fate is identical.

    The emails of one batch and property start with one shared set; as long as
    the MTA treats them as one cohort it updates the set once for all of them.
    ``sharers`` counts the emails holding it: a cohort may update it in place only
    when it holds every sharer, otherwise each email gets its own copy first.
    """

    __slots__ = ("sharers",)

    # one set is one piece of shared, mutable state, not a value: two sets are the same only if they are
    # one object (so a set can key a dict, e.g. the result's tally, without an ``id()`` per email)
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, items: Iterable[Rcpt] = (), sharers: int = 1) -> None:
        super().__init__(items)
        self.sharers = sharers


class Send:
    """When, by whom and how a cohort of emails left the platform (shared by the cohort)."""

    __slots__ = ("at", "client_ip", "helo", "path", "provider", "sender")

    def __init__(self, at: int, sender: str | None, path: str, helo: str, client_ip: str,
                 provider: str | None) -> None:
        self.at = at
        self.sender = sender
        self.path = path
        self.helo = helo
        self.client_ip = client_ip
        self.provider = provider


# An email's Message-ID is its invoice id between these two (what the receiving side stores).
MESSAGE_ID_HEAD = "<"
MESSAGE_ID_TAIL = "@mailsim.invalid>"
_TAIL = len(MESSAGE_ID_TAIL)
# the last two digits of an invoice number and the Message-ID's tail: "00@mailsim.invalid>" … "99@…"
LOW_TAILS: Final = tuple(f"{i:02d}{MESSAGE_ID_TAIL}" for i in range(100))


def message_id_of(invoice: str) -> str:
    return MESSAGE_ID_HEAD + invoice + MESSAGE_ID_TAIL


def compiled() -> bool:
    """Whether this module runs as built by mypyc (setup.py's compiled engine): a compiled function has no __code__."""
    return not hasattr(message_id_of, "__code__")


class Numbering:
    """How the emails of one compact batch spell their Message-IDs: ``head`` + ``tail(invoice number)``.

    ``tails`` (``-0001@mailsim.invalid>`` …, zero-padded to the batch's ``width``) is one list per
    run and width, shared by every batch of that width (``emails.Tails``), spelled a hundred at a
    time as first needed ("" until then).
    """

    __slots__ = ("head", "tails", "width")

    def __init__(self, head: str, tails: list[str], width: int) -> None:
        self.head = head
        self.tails = tails
        self.width = width

    def tail(self, k: int) -> str:
        t = self.tails[k]
        if t:
            return t
        tails, w = self.tails, self.width
        lo = k - k % 100
        hi = min(lo + 100, len(tails))
        if w < 3:
            for i in range(max(lo, 1), hi):
                tails[i] = f"-{i:0{w}d}{MESSAGE_ID_TAIL}"
        else:
            head = f"-{lo // 100:0{w - 2}d}"
            for i in range(max(lo, 1), hi):
                tails[i] = head + LOW_TAILS[i - lo]
        return tails[k]


class Origin:
    """What every email of one batch and property shares from the moment the batch completes."""

    __slots__ = ("batch", "completed_at", "group", "ids", "plans", "property", "queued_at")

    def __init__(self, batch: str, prop: str, completed_at: int, queued_at: int | None,
                 plans: tuple[RecipientPlan, ...], group: Group | None) -> None:
        self.batch = batch
        self.property = prop
        self.completed_at = completed_at
        self.queued_at = queued_at  # None: never queued (N/A)
        self.plans = plans  # the recipients as fixed at completion (DESIGN §8)
        self.group = group  # the queue it waits in; None when not queued
        self.ids: Numbering | None = None  # a compact batch's: its emails are numbered (Email.message_id)


class Email:
    """One invoice's email from the moment its batch completes.

    Built only by :meth:`many`: the emails of one batch and property differ only in
    their id, and a batch of them is a million emails' worth of hot path. So an email
    holds only what can differ between them; the rest is one shared :class:`Origin`.
    An email of a compact batch holds its invoice number (``key``, an int shared with the other
    batches) and spells its Message-ID whenever it is asked (:attr:`message_id`), keeping
    nothing: a run of identical cohorts files a million copies and usually never reads their
    ids, and the strings were 80 of the ≈190 bytes each such email cost — memory a large run
    maps afresh (DESIGN §6 linear cost). Emails that differ do read theirs (each message's
    fault draws hash it), once or twice an attempt; kept, those strings were a fifth of a varied
    1M run's memory (355 → 291 MB without them), and spelling one again costs less than the
    page faults and cache misses of keeping it. An explicit invoice's email holds its
    Message-ID from the start. The invoice id is cut out of the Message-ID when asked.
    """

    __slots__ = ("key", "notes", "origin", "reason", "recipients", "send", "status", "stuck_at")

    key: str | int  # the Message-ID, or a compact batch's invoice number (1-based)
    origin: Origin
    status: str
    reason: str | None
    notes: tuple[str, ...]
    recipients: RcptSet
    send: Send | None
    stuck_at: int | None

    @classmethod
    def many(cls, keys: Iterable[str | int], origin: Origin, status: str, reason: str | None,
             notes: tuple[str, ...], recipients: RcptSet) -> list[Email]:
        """One email per key (a Message-ID, see :func:`message_id_of`, or an invoice number of
        ``origin.ids``), everything else alike.

        The caller counts them into ``recipients.sharers``. The slots are set inline
        rather than through an ``__init__``: a Python-level ``__init__`` call per email
        cost about as much as all the rest of completing a batch.
        """
        out: list[Email] = []
        append = out.append
        for key in keys:
            e = Email()  # no __init__: the slots are set here (the class named: compiled, a direct construction)
            e.key = key
            e.origin = origin
            e.status = status
            e.reason = reason
            e.notes = notes
            e.recipients = recipients
            e.send = None
            e.stuck_at = None
            append(e)
        return out

    @property
    def message_id(self) -> str:
        key = self.key
        if isinstance(key, str):
            return key
        ids = self.origin.ids
        assert ids is not None  # a numbered email's origin has its batch's numbering
        return ids.head + ids.tail(key)

    @property
    def invoice(self) -> str:
        return self.message_id[1:-_TAIL]

    @property
    def batch(self) -> str:
        return self.origin.batch

    @property
    def completed_at(self) -> int:
        return self.origin.completed_at

    @property
    def queued_at(self) -> int | None:
        return self.origin.queued_at

    @property
    def plans(self) -> tuple[RecipientPlan, ...]:
        return self.origin.plans

    @property
    def group(self) -> Group | None:
        return self.origin.group

    @property
    def sent_at(self) -> int | None:
        return self.send.at if self.send is not None else None

    @property
    def sender(self) -> str | None:
        return self.send.sender if self.send is not None else None

    @property
    def client_ip(self) -> str | None:
        return self.send.client_ip if self.send is not None else None

    @property
    def sender_path(self) -> str | None:
        return self.send.path if self.send is not None else None

    def own_recipients(self) -> RcptSet:
        """Give this email a private copy of its recipients before it diverges from its cohort."""
        rs = self.recipients
        if rs.sharers > 1:
            rs.sharers -= 1
            rs = self.recipients = RcptSet((r.copy() for r in rs), 1)
        return rs

    # last: from here on, in this class body, ``property`` names this accessor, not the builtin
    @property
    def property(self) -> str:
        """The invoice's property id."""
        return self.origin.property


def state_key(e: Email) -> tuple[str, str | None, RcptSet]:
    """What the outputs count an email by (``result.tally``): its status, reason and recipient set.

    A function rather than ``attrgetter``: as fast in Python, and compiled (setup.py) it reads the slots
    directly instead of looking each name up on the class (≈120 against 140 ms for 1M emails).
    """
    return (e.status, e.reason, e.recipients)


# The queued emails of one batch and property, in invoice order, with the plans and the
# recipient set they all share. Sending works per slot: the emails of a slot always share
# one sender, client IP (with one sending IP) and cohort, so nothing has to be looked up per email.
Slot = tuple[tuple[RecipientPlan, ...], RcptSet, list[Email]]


class Group:
    """The emails waiting in the queue that share one sender resolution (a batch's branch set)."""

    __slots__ = ("branch_ids", "decision", "decision_key", "history", "key", "queue", "reason", "reason_applied",
                 "slots", "stuck_upto")

    def __init__(self, key: str, branch_ids: tuple[str, ...]) -> None:
        self.key = key
        self.branch_ids = branch_ids
        self.queue: list[Email] = []
        # the same emails by (batch, property), in queue order of their first email: see Slot
        self.slots: list[Slot] = []
        self.reason: str | None = None
        self.reason_applied = 0
        # (time, blocking reason or None when the gate opened, evidence): what explain replays
        self.history: list[tuple[int, str | None, str]] = []
        self.stuck_upto = 0
        self.decision: SenderDecision | None = None
        self.decision_key: tuple[int, int, tuple[int, ...]] | None = None
