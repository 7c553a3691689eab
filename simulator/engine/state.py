"""Per-email state the engine mutates: plain ``__slots__`` objects, no process per email.

A million emails is a normal run (DESIGN §6), so these hold only what the
outputs need; anything shared (recipient plans, sender decisions) is a
reference to one frozen object.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.domain.recipients import RecipientPlan


class Rcpt:
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


class Email:
    """One invoice's email from the moment its batch completes."""

    __slots__ = ("batch", "client_ip", "completed_at", "group", "helo", "invoice", "notes", "plans",
                 "property", "queued_at", "reason", "recipients", "sender", "sender_path", "sent_at", "status",
                 "stuck_at")

    def __init__(self, invoice: str, batch: str, prop: str, completed_at: int) -> None:
        self.invoice = invoice
        self.batch = batch
        self.property = prop
        self.completed_at = completed_at
        self.queued_at: int | None = None
        self.sent_at: int | None = None
        self.stuck_at: int | None = None
        self.status = "N/A"
        self.reason: str | None = None
        self.notes: tuple[str, ...] = ()
        self.recipients: list[Rcpt] = []
        self.plans: tuple[RecipientPlan, ...] = ()  # shared by every email of the same property and batch
        self.group: Group | None = None
        self.sender: str | None = None
        self.sender_path: str | None = None
        self.client_ip: str | None = None
        self.helo: str | None = None

    @property
    def message_id(self) -> str:
        return f"<{self.invoice}@mailsim.invalid>"


@dataclass(frozen=True, slots=True)
class SenderDecision:
    """Who would send a group's emails right now, by which path, or why nobody can."""

    address: str | None
    source: str  # branch:<id> | region:<id> | configuration
    user: str | None
    path: str  # "sync" | "smtp" | "blocked"
    provider: str | None
    client_ips: tuple[str, ...]
    helo: str
    reason: str | None  # the blocking reason; None = the gate is open
    notes: tuple[str, ...]
    evidence: str
    spf: tuple[tuple[str, str, str], ...] = ()  # (ip, result, explanation) on the SMTP path
    valid_until: int | None = None  # the decision may change by itself then (token expiry)


class Group:
    """The emails waiting in the queue that share one sender resolution (a batch's branch set)."""

    __slots__ = ("branch_ids", "decision", "decision_key", "history", "key", "queue", "reason", "reason_applied",
                 "stuck_upto")

    def __init__(self, key: str, branch_ids: tuple[str, ...]) -> None:
        self.key = key
        self.branch_ids = branch_ids
        self.queue: list[Email] = []
        self.reason: str | None = None
        self.reason_applied = 0
        # (time, blocking reason or None when the gate opened, evidence): what explain replays
        self.history: list[tuple[int, str | None, str]] = []
        self.stuck_upto = 0
        self.decision: SenderDecision | None = None
        self.decision_key: tuple[int, int, tuple[int, ...]] | None = None
