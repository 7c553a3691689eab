"""Seeded fault draws (DESIGN §8): a keyed hash, never a shared random stream.

Every draw is a pure function of (seed, fault index, message id, recipient,
attempt, stage), so the memory and wire transports, and a run stepped back and
forth, see the same faults whatever order the work happens in.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b

FAULT_KINDS: tuple[str, ...] = (
    "outage",
    "tempfail",
    "permfail",
    "disconnect",
    "slow",
    "dns_timeout",
    "dns_servfail",
)
SMTP_STAGES: tuple[str, ...] = ("connect", "helo", "mail", "rcpt", "data")


@dataclass(frozen=True, slots=True)
class Fault:
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


NATURAL_STAGE: dict[str, str] = {
    "outage": "connect",
    "tempfail": "rcpt",
    "permfail": "rcpt",
    "disconnect": "data",
    "slow": "data",
}
SMTP_FAULT_KINDS = frozenset(NATURAL_STAGE)
DNS_FAULT_KINDS = frozenset({"dns_timeout", "dns_servfail"})


def draw(seed: int, fault_index: int, message_id: str, rcpt: str, attempt: int, stage: str) -> float:
    """A uniform value in [0, 1) for one (fault, message, recipient, attempt, stage)."""
    key = f"{seed}|{fault_index}|{message_id}|{rcpt}|{attempt}|{stage}".encode()
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "big") / 2.0**64


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
    for f in faults:
        if f.kind not in SMTP_FAULT_KINDS or stage_of(f) != stage:
            continue
        if not f.active_at(now) or not targets_domain(f, domain):
            continue
        if f.probability >= 1.0 or draw(seed, f.index, message_id, rcpt, attempt, stage) < f.probability:
            return f
    return None
