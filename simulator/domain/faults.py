"""Fault kinds (one spec table) and seeded fault draws (DESIGN §8: a keyed hash, never a shared stream).

Every draw is a pure function of (seed, fault index, message id, recipient,
attempt, stage), so the memory and wire transports, and a run stepped back and
forth, see the same faults whatever order the work happens in.

:data:`FAULT_SPECS` is the one place a fault kind is defined: the loader's list of
kinds, the receiving server's replies, the memory transport's one-transaction
shortcut, the DNS answers and the chaos generator all read it, and
``ReceivingServer`` / ``Zone`` refuse a kind they have no behaviour for instead of
silently ignoring it (``tests/test_faults_table.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from typing import Any, Literal

SMTP_STAGES: tuple[str, ...] = ("connect", "helo", "mail", "rcpt", "data")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What one fault kind does, for every part of the simulator that has to act on it.

    ``effect``: ``reply`` — the receiver answers ``reply`` (code, enhanced code, text;
    code 0 = the connection drops) at the fault's stage; ``delay`` — the stage's reply
    comes ``delay`` seconds later; ``dns`` — DNS questions about the target get
    ``dns_answer`` (``timeout``: no answer at all, ``servfail``: SERVFAIL).
    ``counts``: the fault keeps per-message state (a counter), so two messages of one
    envelope can get different replies even at probability 1. A transaction is shareable
    by a cohort (the memory transport runs one for all) only if every fault that may fire
    for its domain has ``counts`` false and probability 1: see :func:`shareable`.
    """

    kind: str
    protocol: Literal["smtp", "dns"]
    stage: str | None  # the natural SMTP stage (a fault's ``stage:`` overrides it); None for DNS
    effect: Literal["reply", "delay", "dns"]
    reply: tuple[int, str, str] | None = None
    dns_answer: Literal["timeout", "servfail"] | None = None
    counts: bool = False


FAULT_SPECS: dict[str, FaultSpec] = {s.kind: s for s in (
    FaultSpec("outage", "smtp", "connect", "reply",
              (421, "4.3.2", "Service not available, closing transmission channel")),
    FaultSpec("tempfail", "smtp", "rcpt", "reply",
              (451, "4.3.0", "Requested action aborted: local error in processing")),
    FaultSpec("permfail", "smtp", "rcpt", "reply", (550, "5.3.0", "Requested action not taken: mail system failure")),
    FaultSpec("disconnect", "smtp", "data", "reply", (0, "", "connection dropped")),
    FaultSpec("slow", "smtp", "data", "delay"),
    FaultSpec("dns_timeout", "dns", None, "dns", dns_answer="timeout"),
    FaultSpec("dns_servfail", "dns", None, "dns", dns_answer="servfail"),
)}
FAULT_KINDS: tuple[str, ...] = tuple(FAULT_SPECS)
SMTP_FAULT_KINDS = frozenset(k for k, s in FAULT_SPECS.items() if s.protocol == "smtp")
DNS_FAULT_KINDS = frozenset(k for k, s in FAULT_SPECS.items() if s.protocol == "dns")
NATURAL_STAGE: dict[str, str] = {k: s.stage for k, s in FAULT_SPECS.items() if s.stage is not None}


def spec_of(kind: str) -> FaultSpec:
    """The kind's spec; a kind missing from the table is a bug, never silently a no-op."""
    spec = FAULT_SPECS.get(kind)
    if spec is None:
        raise KeyError(f"fault kind {kind!r} has no entry in FAULT_SPECS")
    return spec


@dataclass(frozen=True, slots=True)
class Fault:
    """One ``faults:`` entry: a kind (see FAULT_SPECS), when it is active, where, and how often it fires."""

    index: int
    kind: str
    at: int | None = None  # None: from the start
    for_: int | None = None  # None: until the end
    stage: str | None = None  # None: the kind's natural stage
    probability: float = 1.0
    target: str | None = None  # recipient domain (SMTP faults) or DNS name; None: everything
    delay: int = 0  # slow: seconds added before the stage's reply
    loc: str = ""
    note: str | None = None  # a trainer's caption (DESIGN §5); the rules ignore it

    def active_at(self, t: int) -> bool:
        if self.at is not None and t < self.at:
            return False
        return not (self.for_ is not None and t >= (self.at or 0) + self.for_)

    def bounds(self) -> tuple[int, ...]:
        """The instants where :meth:`active_at` can change."""
        start = self.at or 0
        if self.for_ is None:
            return (start,) if self.at is not None else ()
        return (start, start + self.for_)


_PREFIX: dict[tuple[int, int], Any] = {}  # (seed, fault index) -> blake2b state after "seed|index|"


def draw_head(seed: int, fault_index: int) -> Any:
    """The hash state after ``seed|index|``: :func:`draw` is ``head.copy()`` updated with :func:`draw_tail`."""
    head = _PREFIX.get((seed, fault_index))
    if head is None:
        if len(_PREFIX) > 4096:  # a long sweep over seeds: keep the table small
            _PREFIX.clear()
        head = _PREFIX[(seed, fault_index)] = blake2b(f"{seed}|{fault_index}|".encode(), digest_size=8)
    return head


def draw_tail(message_id: str, rcpt: str, attempt: int, stage: str) -> str:
    return f"{message_id}|{rcpt}|{attempt}|{stage}"


def draw(seed: int, fault_index: int, message_id: str, rcpt: str, attempt: int, stage: str) -> float:
    """A uniform value in [0, 1) for one (fault, message, recipient, attempt, stage).

    The hash of ``seed|index|message|rcpt|attempt|stage``; the state after the
    (seed, index) prefix is kept and copied (:func:`draw_head`), which halves the cost.
    """
    h = draw_head(seed, fault_index).copy()
    h.update(draw_tail(message_id, rcpt, attempt, stage).encode())
    return int.from_bytes(h.digest(), "big") / 2.0**64


@lru_cache(maxsize=256)
def draw_threshold(probability: float) -> bytes:
    """The 8 digest bytes below which :func:`draw` is under ``probability``, for comparing digests as bytes.

    ``draw(...) < p`` is ``int.from_bytes(digest) / 2.0**64 < p``: monotone in the digest, so it holds
    exactly for the digests below the smallest value ``t`` where it fails — found by bisection with that
    very expression, float rounding included — and big-endian bytes of one length compare as their
    integers do. A hot loop then skips the integer and the float per draw; the values are the same.
    Above 1 every digest is below (``b"\xff" * 9`` sorts after any 8 bytes).
    """
    lo, hi = 0, 2**64  # the predicate fails at hi for p <= 1 (2**64 / 2**64 == 1.0)
    if probability > 1.0:
        return b"\xff" * 9
    while lo < hi:
        mid = (lo + hi) // 2
        if mid / 2.0**64 < probability:
            lo = mid + 1
        else:
            hi = mid
    return lo.to_bytes(8, "big")


def stage_of(fault: Fault) -> str:
    return fault.stage or NATURAL_STAGE.get(fault.kind, "connect")


def targets_domain(fault: Fault, domain: str | None) -> bool:
    if fault.target is None:
        return True
    if domain is None:
        return False
    t = fault.target.lower().rstrip(".")
    d = domain.lower()
    return d == t or d.endswith("." + t)


def shareable(faults: Iterable[Fault]) -> bool:
    """Would these faults give every message of one envelope the same replies?"""
    return all(f.probability >= 1.0 and not spec_of(f.kind).counts for f in faults)


class FaultWindows:
    """Splits time into windows inside which no fault starts or ends.

    Which faults are active is constant inside a window, so whatever depends only on
    that (which faults may fire for a domain, at which stage) is decided once per
    (domain, window) instead of per stage of every transaction.
    """

    __slots__ = ("bounds",)

    def __init__(self, faults: Iterable[Fault]) -> None:
        self.bounds = sorted({b for f in faults for b in f.bounds()})

    def index(self, now: int) -> int:
        return bisect_right(self.bounds, now)


def smtp_faults_by_stage(faults: Iterable[Fault], *, now: int, domain: str | None) -> dict[str, tuple[Fault, ...]]:
    """The SMTP faults that may fire for ``domain`` at ``now``, by stage, in file order (empty stages left out)."""
    by: dict[str, list[Fault]] = {}
    for f in faults:
        if spec_of(f.kind).protocol == "smtp" and f.active_at(now) and targets_domain(f, domain):
            by.setdefault(stage_of(f), []).append(f)
    return {s: tuple(fs) for s, fs in by.items()}


def first_firing(candidates: Sequence[Fault], *, seed: int, stage: str, message_id: str, rcpt: str,
                 attempt: int) -> Fault | None:
    """The first of ``candidates`` (one stage's, already known active and targeting) that fires."""
    for f in candidates:
        if f.probability >= 1.0 or draw(seed, f.index, message_id, rcpt, attempt, stage) < f.probability:
            return f
    return None


def smtp_fault_at(
    faults: tuple[Fault, ...],
    *,
    now: int,
    seed: int,
    stage: str,
    domain: str | None,
    message_id: str,
    rcpt: str,
    attempt: int,
) -> Fault | None:
    """The first SMTP fault (in file order) that fires at this stage, or None."""
    candidates = smtp_faults_by_stage(faults, now=now, domain=domain).get(stage, ())
    return first_firing(candidates, seed=seed, stage=stage, message_id=message_id, rcpt=rcpt, attempt=attempt)
