"""What an envelope takes from its domain's fault plan at one attempt number, made once per server.

The memory transport decides most of a transaction per envelope (see ``base._Envelope``).
The part that depends only on the candidate faults and the attempt number — the stages'
candidates, the hash heads and tails of every draw that does not name a recipient — is the
same for every domain whose plan has the same candidates: at 40 recipient domains with one
fault everywhere, a per-plan table recomputed it 40 times per attempt number per fault window.
It is kept per receiving server (its fault list gives the indices their meaning), so nothing
outlives the run that made it.
"""

from __future__ import annotations

from typing import Any, Final

from simulator.domain.faults import Fault, draw_head, draw_tail, draw_threshold
from simulator.net.receiver import DomainPlan, ReceivingServer

Draw = tuple[Any, str, bytes]  # (hash state after the fault's prefix, the key's tail after the message id, threshold)

EARLY_STAGES: Final[tuple[str, ...]] = ("connect", "helo", "mail")


class Parts:
    """An envelope's share of its plan at one attempt number, whoever the recipients are.

    The stages' candidate faults, and every draw a message needs that does not name a
    recipient (connect, HELO, MAIL, DATA; in that order) with its tail for this attempt.
    RCPT draws name the recipient: only their (hash state, threshold) are kept. Read-only
    once made and shared by every envelope of its key; a plain class, not a frozen
    dataclass, because a frozen ``__init__`` sets each field through ``object.__setattr__``.
    """

    __slots__ = ("always", "data_draws", "data_faults", "draws", "early", "early_draws", "mail_staged",
                 "rated", "rcpt_always", "rcpt_draws", "rcpt_faults")

    def __init__(self, stages: dict[str, tuple[Fault, ...]], seed: int, attempt: int, rated: bool) -> None:
        early = [(st, stages[st]) for st in EARLY_STAGES if st in stages]
        rcpt_faults = stages.get("rcpt")
        data_faults = stages.get("data")
        early_draws = tuple(_draw_of(f, st, seed, attempt) for st, fs in early for f in fs)
        data_draws = tuple(_draw_of(f, "data", seed, attempt) for f in data_faults or ())
        self.early: list[tuple[str, tuple[Fault, ...]]] = early
        self.mail_staged: bool = "mail" in stages
        self.rcpt_faults: tuple[Fault, ...] | None = rcpt_faults
        self.data_faults: tuple[Fault, ...] | None = data_faults
        self.early_draws: tuple[Draw, ...] = early_draws
        self.data_draws: tuple[Draw, ...] = data_draws
        self.draws: list[Draw] = [*early_draws, *data_draws]  # an envelope's draws when no RCPT fault is a candidate
        self.rcpt_draws: tuple[tuple[Any, bytes], ...] = tuple(
            (draw_head(seed, f.index), draw_threshold(f.probability)) for f in rcpt_faults or ())
        # a connect/HELO/MAIL/DATA candidate that always fires (then no message is quiet)
        self.always: bool = any(f.probability >= 1.0 for _st, fs in early for f in fs) or any(
            f.probability >= 1.0 for f in data_faults or ())
        self.rcpt_always: bool = any(f.probability >= 1.0 for f in rcpt_faults or ())
        self.rated: bool = rated


def _draw_of(f: Fault, stage: str, seed: int, attempt: int) -> Draw:
    return draw_head(seed, f.index), draw_tail("", "", attempt, stage), draw_threshold(f.probability)


def parts(server: ReceivingServer, plan: DomainPlan, attempt: int) -> Parts:
    """The :class:`Parts` of ``plan`` at ``attempt``, shared by the server's plans with the same candidates.

    A plan's candidate indices (``plan.faults``) name its stages' faults within this server,
    and the rate limit is the one thing of the policy the parts carry.
    """
    rated = plan.policy.rate_limit is not None
    key = (plan.faults, rated, attempt)
    memo = server.derived
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = Parts(plan.stages, server.seed, attempt, rated)
    out: Parts = hit
    return out
