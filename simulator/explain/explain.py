"""Why an invoice email did or did not arrive: a chain of causes with dates and evidence.

Each explanation starts from the status a person sees in the Invoicing module
and walks upstream — batch, sender settings, the sender user's sync, SPF, the
recipient's server — naming the guide step to look at and the fix, the way a
support engineer would explain it on a ticket. It is true for the moment it
describes: an email that has left the platform is explained by the sender as it
stood when it was sent (later changes follow, marked as later), and a ``fix:``
appears only for what still needs fixing (DESIGN §8).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.domain.display import visible
from simulator.domain.events import CompleteBatch
from simulator.domain.reasons import REASONS
from simulator.domain.sender import find_sender_user
from simulator.engine.result import InvoiceView, QueueView, RunResult
from simulator.engine.run import simulate
from simulator.explain.evidence import Evidence
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration

# recipient outcomes that still need someone to act (DESIGN §8: "fix:" only for these)
NEEDS_FIXING = ("skipped", "junk", "bounced", "deferred")

# a multi-branch batch is sent by Configuration's sender alone: its remedies point there (DESIGN §8)
MULTI_BRANCH_FIX = {
    "sender-not-configured": "Set Invoice Email From in Administration > Configuration: a batch spanning several"
                             " branches is sent by Configuration's sender alone, so branch or region settings"
                             " cannot help (or split the batch per branch).",
    "sender-not-a-user": "Point Configuration's Invoice Email From at an active user's address, or (re)activate"
                         " that user: a batch spanning several branches is sent by Configuration's sender alone.",
}

LATE_EDIT_FIX = ("Resend the invoice: its email was generated for the contact's old address, and a corrected"
                 " address applies only to emails generated after the change.")


@dataclass
class Explanation:
    invoice: str
    status: str
    reason: str | None
    headline: str
    chain: list[str] = field(default_factory=list)
    steps: tuple[int, ...] = ()
    fix: str = ""
    warnings: list[str] = field(default_factory=list)
    count: int = 1  # in grouped explanations: how many invoices share it

    @property
    def guide_steps(self) -> str:
        names = {0: "after the email left the platform (recipient's provider)", 1: "Step 1 (batch and email status)",
                 2: "Step 2 (sender in Administration)", 3: "Step 3 (sender's email sync)",
                 4: "Step 4 (recipient contact record)", 5: "Step 5 (property's invoice email contact)"}
        return "; ".join(names[s] for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"invoice": self.invoice, "email_status": self.status, "reason": self.reason,
                "headline": self.headline, "chain": self.chain, "guide_steps": list(self.steps),
                "fix": self.fix, "warnings": self.warnings, "count": self.count}


def code_label(v: InvoiceView) -> str:
    """The reason code an explanation names (DESIGN §8: every explanation names its code)."""
    if v.reason:
        return f"[{v.reason}]"
    codes = list(dict.fromkeys(r.reason for r in v.recipients if r.reason))
    if v.email_status == "Sent":
        return f"[{', '.join(codes)}]" if codes else "[no reason code: sent cleanly]"
    return "[no reason code yet: waiting for the next queue poll]"


class _Explainer:
    def __init__(self, result: RunResult) -> None:
        self.run = result
        self.ev = Evidence(result)
        self.iso = self.ev.iso

    # -- one invoice ---------------------------------------------------------------------------
    def explain(self, v: InvoiceView) -> Explanation:
        now = self.run.end
        x = Explanation(v.id, v.email_status, v.reason, "")
        queue = self.run.queue_of(v.id)
        if v.email_status == "N/A":
            self._na(v, x)
        elif v.email_status == "Pending":
            self._pending(v, x, now)
        elif v.email_status == "In Queue":
            self._in_queue(v, x, now, queue)
        else:
            self._sent(v, x, queue)
        for r in v.recipients:
            if r.outcome == "skipped":
                detail = f": {r.evidence}" if r.evidence else ""
                x.chain.append(f"recipient {visible(r.email)} ({r.contact}) skipped [{r.reason}]{detail}")
        refused = self.ev.refused_edits(v.property)
        if v.email_status in ("Sent", "In Queue"):
            x.chain.extend(refused)
        refused_codes: list[str] = []
        if queue is not None and v.queued_at is not None:
            end = v.sent_at if v.sent_at is not None else now
            for line, code in self.ev.refused_sender_events(queue.branch_ids, v.queued_at, end):
                x.chain.append(line)
                refused_codes.append(code)
        late, moved = self.ev.late_edits(v)
        x.chain.extend(late)
        x.headline += f"  {code_label(v)}"
        self._steps(v, x, queue, refused_codes + (["duplicate-email-rejected"] if refused else []), bool(late))
        x.fix = self._fix(v, queue, moved)
        for n in v.notes:
            info = REASONS.get(n)
            x.warnings.append(f"{n}: {info.title if info else n}" + (f" — {info.fix}" if info else ""))
        return x

    def _steps(self, v: InvoiceView, x: Explanation, queue: QueueView | None, refused: list[str], late: bool) -> None:
        waited: list[str] = []
        if queue is not None and v.queued_at is not None:
            end = v.sent_at if v.sent_at is not None else self.run.end + 1
            waited = [b.reason for b in queue.history if b.reason is not None and v.queued_at <= b.at < end]
        codes = [c for c in (v.reason, *waited, *[r.reason for r in v.recipients], *v.notes) if c]
        codes += refused
        steps: set[int] = set()
        for c in codes:
            info = REASONS.get(c)
            if info is not None:
                steps.update(info.steps)
        if late:
            steps.add(4)  # the contact record changed after the email was generated
        x.steps = tuple(sorted(steps or {1}))

    def _fix(self, v: InvoiceView, queue: QueueView | None, moved: set[str]) -> str:
        """The remedy for what still needs fixing; none for an email that reached every inbox."""
        if v.email_status == "In Queue" and v.reason is None:
            return ""  # just queued: nothing to fix
        if v.email_status == "Sent" and v.reason is None:
            stuck = [r for r in v.recipients if r.outcome in NEEDS_FIXING]
            if not stuck:
                return ""
            if any(r.contact in moved for r in stuck):
                return LATE_EDIT_FIX
            info = REASONS.get(stuck[0].reason or "")
            return info.fix if info else ""
        if queue is not None and len(queue.branch_ids) > 1 and v.reason in MULTI_BRANCH_FIX:
            return MULTI_BRANCH_FIX[v.reason]
        info = REASONS.get(v.reason or "")
        return info.fix if info else ""

    # -- by status ------------------------------------------------------------------------------
    def _na(self, v: InvoiceView, x: Explanation) -> None:
        x.headline = "N/A — no email will be generated for this invoice"
        done = self.run.completion_index(v.batch)
        # a completed N/A invoice was decided by the contacts as they stood at completion
        world = self.run.world if done is None else self.run.world_after(done)
        x.chain.append(self.ev.property_contacts(world, v.property))
        x.chain.extend(self.ev.refused_edits(v.property))
        if v.completed_at is not None:
            x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)} with status N/A: never emailed")
        else:
            x.chain.append(f"batch {v.batch} is Draft at {self.iso(self.run.end)}: the status is recomputed on"
                           " every contact change until the batch completes")

    def _pending(self, v: InvoiceView, x: Explanation, now: int) -> None:
        x.headline = f"Pending — batch {v.batch} is still Draft"
        count = next((b.count for b in self.run.spec.batches if b.id == v.batch), 0)
        later = [ev.at for ev in self.run.spec.timeline if isinstance(ev, CompleteBatch) and ev.batch == v.batch]
        x.chain.append(f"batch {v.batch} ({count} invoices) is Draft at {self.iso(now)}")
        x.chain.append(f"complete_batch is scheduled at {self.iso(later[0])}" if later
                       else "nothing in the timeline completes it")
        x.chain.append(self.ev.property_contacts(self.run.world, v.property))

    def _in_queue(self, v: InvoiceView, x: Explanation, now: int, queue: QueueView | None) -> None:
        code = v.reason
        poll = format_duration(self.run.settings.queue_poll)
        info = REASONS.get(code or "")
        if code is None:
            x.headline = f"In Queue — just queued: the worker picks it up at the next poll (every {poll})"
        else:
            x.headline = f"In Queue — {info.title if info else code}"
        x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)}; email queued {self.iso(v.queued_at)}")
        world = self.run.world
        d = queue.decision if queue is not None else None
        if queue is not None:
            x.chain.extend(self.ev.sender_chain(world, queue.branch_ids))
            # the current block: the latest change of the queue's reason (reasons may have alternated)
            block = next((b for b in reversed(queue.history) if b.reason == code and (v.queued_at or 0) <= b.at), None)
            if block is not None:
                x.chain.append(f"blocked by {code} since {self.iso(block.at)}")
                held = self.ev.block_line(queue.branch_ids, block, now + 1)
                if "; then from " in held:  # the settings moved to another sender that is blocked too
                    x.chain.append("the senders it has waited for: " + held.split(": ", 1)[1])
        if d is not None and d.address:
            if code == "sender-not-a-user":
                x.chain.extend(self.ev.sender_user_story(world, d.address))
            elif d.user is not None:
                x.chain.extend(self.ev.sync_story(world, d.user, now))
            for ip, res, expl in d.spf:
                x.chain.append(f"SPF of {d.address.rpartition('@')[2]} for platform IP {ip}: {res} ({expl})")
        multi = queue is not None and len(queue.branch_ids) > 1
        if d is not None and d.evidence and code == "sender-not-configured" and not multi:
            x.chain.append(d.evidence)
        if v.stuck_at is not None:
            x.chain.append(f"in queue more than {format_duration(self.run.settings.stuck_after)}: stuck since"
                           f" {self.iso(v.stuck_at)} (the guide's 'more than an hour')")
        x.chain.append(f"still In Queue at {self.iso(now)}; the queue worker retries every {poll},"
                       " so fixing this drains it")

    def _sent(self, v: InvoiceView, x: Explanation, queue: QueueView | None) -> None:
        outs = Counter(r.outcome for r in v.recipients)
        if v.reason == "no-deliverable-recipient":
            x.headline = "Sent — but every recipient was skipped, so nobody received it"
        elif outs.get("inbox") and len(outs) == 1:
            x.headline = "Sent — delivered to the inbox"
        else:
            x.headline = "Sent — left the platform; " + ", ".join(f"{k}: {n}" for k, n in sorted(outs.items()))
        send = self.run.send_record(v.id)
        sender = visible(v.sender) if v.sender else "(no sender)"
        x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)}; sent {self.iso(v.sent_at)} by"
                       f" {sender} via {v.sender_path} path from {v.client_ip}")
        if send is not None and send.sender:
            # the sender as it stood when the email left (DESIGN §8); later changes follow, marked as later
            then = self.run.world_at(send.at)
            user = find_sender_user(send.sender, then.users)
            if user is not None:
                if send.path == "sync":
                    x.chain.extend(self.ev.sync_story(then, user.id, send.at))
                x.chain.extend(self.ev.later_sync_changes(user.id, send.at))
        if v.sent_at is not None and v.queued_at is not None and v.sent_at > v.queued_at and queue is not None:
            x.chain.extend(self._queue_story(v, queue))
        for r in v.recipients:
            where = visible(r.email.strip())
            if r.outcome in ("inbox", "junk"):
                why = f" because of {r.reason}" if r.reason else ""
                x.chain.append(f"{where}: {r.outcome} at {self.iso(r.at)} after {r.attempts} attempt(s){why}")
            elif r.outcome == "bounced":
                x.chain.append(f"{where}: bounced at {self.iso(r.at)} [{r.reason}] {r.evidence or ''}; a bounce-back"
                               f" (DSN) is in {sender}'s inbox")
            elif r.outcome == "deferred":
                x.chain.append(f"{where}: deferred after {r.attempts} attempt(s) [{r.reason}] {r.evidence or ''};"
                               " the platform keeps retrying")

    def _queue_story(self, v: InvoiceView, queue: QueueView) -> list[str]:
        """Why a sent email waited: each block with the sender of that moment, and what unblocked it."""
        assert v.queued_at is not None and v.sent_at is not None
        out = [f"it waited {format_duration(v.sent_at - v.queued_at)} in the queue first"]
        blocks = [b for b in queue.history if b.reason is not None and v.queued_at <= b.at < v.sent_at]
        for k, b in enumerate(blocks):
            until = blocks[k + 1].at if k + 1 < len(blocks) else v.sent_at
            out.append(self.ev.block_line(queue.branch_ids, b, until))
        last_change = max([v.queued_at, *[b.at for b in blocks]])
        # what changed between the last poll that still blocked it and the poll that sent it
        since = max(last_change, v.sent_at - self.run.settings.queue_poll)
        fixes = [a.event for a in self.run.events
                 if not a.refused and since < a.event.at <= v.sent_at and a.event.kind != "complete_batch"]
        if blocks and fixes:
            what = ", ".join(f"{ev.kind} at {self.iso(ev.at)}" + (f" ({ev.loc})" if ev.loc else "") for ev in fixes)
            out.append(f"unblocked by {what}; the next queue poll sent it")
        elif blocks:
            ended = [f for f in self.run.spec.faults if f.at is not None and f.for_ is not None
                     and since < f.at + f.for_ <= v.sent_at]
            if ended:
                what = ", ".join(f"the {f.kind} fault on {f.target or 'every name'} ended at {self.iso(f.at + f.for_)}"
                                 for f in ended if f.at is not None and f.for_ is not None)
                out.append(f"unblocked when {what}; the next queue poll sent it")
            else:
                out.append(f"unblocked at {self.iso(v.sent_at)} (the blocking condition ended by itself)")
        return out


def explain_run(result: RunResult, *, invoice: str | None = None, group_large: int = 60) -> list[Explanation]:
    ex = _Explainer(result)
    if invoice is not None:
        v = result.invoice(invoice)
        return [ex.explain(v)] if v is not None else []
    if result.total_invoices <= group_large:
        return [ex.explain(v) for v in result.invoices()]
    # large runs: one explanation per distinct (status, reason, outcomes), with its count
    seen: dict[tuple[str, str | None, tuple[tuple[str, str | None], ...]], Explanation] = {}
    for v in result.invoices():
        key = (v.email_status, v.reason, tuple(sorted({(r.outcome, r.reason) for r in v.recipients},
                                                      key=lambda p: (p[0], p[1] or ""))))
        hit = seen.get(key)
        if hit is None:
            seen[key] = ex.explain(v)
        else:
            hit.count += 1
    out = list(seen.values())
    for e in out:
        if e.count > 1:
            e.headline += f"  (and {e.count - 1:,} more like it)"
    return out


def explain_scenario(scn: Scenario, *, until: int | None = None, invoice: str | None = None) -> list[Explanation]:
    if until is None:
        return explain_run(simulate(scn), invoice=invoice)
    return explain_run(simulate(replace(scn, until=until, expect=())), invoice=invoice)
