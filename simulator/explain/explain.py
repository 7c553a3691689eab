"""Why an invoice email did or did not arrive: a chain of causes with dates and evidence.

Each explanation starts from the status a person sees in the Invoicing module
and walks upstream — batch, sender settings, the sender user's sync, SPF, the
recipient's server — naming the guide step to look at and the fix, the way a
support engineer would explain it on a ticket.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.domain.contacts import normalize_email
from simulator.domain.events import CompleteBatch, SetContactEmail
from simulator.domain.reasons import REASONS
from simulator.domain.sync import expires_at
from simulator.engine.result import InvoiceView, RunResult
from simulator.engine.run import simulate
from simulator.engine.sim import Engine
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration


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


class _Explainer:
    def __init__(self, result: RunResult) -> None:
        self.r = result
        self.eng: Engine = result.engine
        self.scn: Scenario = result.engine.scn

    def iso(self, t: int | None) -> str:
        if t is None:
            return "never"
        return self.scn.iso(t).replace("T", " ").replace(":00Z", "Z")

    # -- pieces of evidence ------------------------------------------------------------------
    def property_contacts(self, pid: str) -> str:
        prop = self.eng.properties[pid]
        if not prop.contacts:
            return f"property {pid} has no contacts"
        parts = []
        for pc in prop.contacts:
            c = self.eng.contacts[pc.contact]
            flags = [n for n, on in (("Email Invoice", pc.email_invoice), ("Primary", pc.primary),
                                     ("Billing", pc.billing)) if on]
            state = "" if c.active else ", inactive"
            parts.append(f"{c.id} <{c.email}> [{', '.join(flags) or 'no flags'}{state}]")
        return f"property {pid} contacts: " + "; ".join(parts)

    def refused_edits(self, pid: str) -> list[str]:
        cids = {pc.contact for pc in self.eng.properties[pid].contacts}
        out = []
        for ev, refusal in self.eng.events_applied:
            if refusal and isinstance(ev, SetContactEmail) and ev.contact in cids:
                dup = None
                for c in self.eng.contacts.values():
                    if c.id != ev.contact and normalize_email(c.email) == normalize_email(ev.email):
                        dup = c
                who = f" (already used by {dup.id}{'' if dup.active else ', an inactive contact'})" if dup else ""
                out.append(f"{self.iso(ev.at)}: changing {ev.contact}'s email to {ev.email!r} was refused"
                           f"{who} [{refusal}] — the contact kept its old address")
        return out

    def sender_chain(self, branch_ids: tuple[str, ...]) -> list[str]:
        eng = self.eng
        cfg = eng.org.configuration.invoice_email_from
        if len(branch_ids) > 1:
            return [f"the batch spans branches {', '.join(branch_ids)}, so Configuration's Invoice Email From is"
                    f" used: {cfg or '(not set)'}"]
        out = []
        for bid in branch_ids:
            b = eng.branches.get(bid)
            if b is None:
                continue
            if b.invoicing_email_from:
                return [f"branch {bid} Invoicing Email From = {b.invoicing_email_from}"]
            out.append(f"branch {bid} has no Invoicing Email From")
            reg = eng.regions.get(b.region) if b.region else None
            if reg is not None:
                if reg.invoicing_email_from:
                    out.append(f"region {reg.id} Invoicing Email From = {reg.invoicing_email_from}")
                    return out
                out.append(f"region {reg.id} has no Invoicing Email From")
        out.append(f"Configuration Invoice Email From = {cfg}" if cfg else "Configuration has no Invoice Email From")
        return out

    def sync_story(self, uid: str, now: int) -> list[str]:
        eng = self.eng
        st = eng.sync.get(uid)
        if st is None:
            return [f"user {uid} has no email sync: SMTP path (platform IPs, SPF must authorise them)"]
        life = eng.settings.token_lifetime
        exp = expires_at(st, life)
        out = [f"user {uid} syncs with {st.provider}; last (re)sync {self.iso(st.synced)}"]
        if not st.supported:
            out.append(f"{st.provider} is not Microsoft 365 or Google Workspace: the platform uses the SMTP path")
            return out
        out.append(f"token last refreshed {self.iso(st.refreshed)} by {st.refreshed_by}; lifetime"
                   f" {format_duration(life)}; {'expired' if exp <= now else 'expires'} {self.iso(exp)}")
        dead = [t for t, refreshed in eng.login_log.get(uid, []) if not refreshed and t >= exp - life]
        if dead:
            out.append("logins after expiry did not revive it: " + ", ".join(self.iso(t) for t in dead))
        if st.password_pending:
            out.append(f"password changed {self.iso(st.password_changed)}, after the last sync"
                       f" {self.iso(st.synced)}: the sync is broken until re-sync")
        return out

    def queue_story(self, v: InvoiceView) -> list[str]:
        """Why a sent email waited: the blocks it sat behind and what unblocked it."""
        assert v.queued_at is not None and v.sent_at is not None
        email = self.eng.email_of(v.id)
        group = email.group if email is not None else None
        out = [f"it waited {format_duration(v.sent_at - v.queued_at)} in the queue first"]
        if group is None:
            return out
        blocks = [(t, reason, ev) for t, reason, ev in group.history
                  if reason is not None and v.queued_at <= t < v.sent_at]
        for t, reason, evidence in blocks:
            out.append(f"blocked from {self.iso(t)} by {reason}: {evidence}")
        last_change = max([v.queued_at, *[t for t, _, _ in blocks]])
        # what changed between the last poll that still blocked it and the poll that sent it
        since = max(last_change, v.sent_at - self.eng.settings.queue_poll)
        fixes = [ev for ev, refused in self.eng.events_applied
                 if not refused and since < ev.at <= v.sent_at and ev.kind != "complete_batch"]
        if blocks and fixes:
            what = ", ".join(f"{ev.kind} at {self.iso(ev.at)}" + (f" ({ev.loc})" if ev.loc else "") for ev in fixes)
            out.append(f"unblocked by {what}; the next queue poll sent it")
        elif blocks:
            ended = [f for f in self.scn.faults if f.at is not None and f.for_ is not None
                     and since < f.at + f.for_ <= v.sent_at]
            if ended:
                what = ", ".join(f"the {f.kind} fault on {f.target or 'every name'} ended at {self.iso(f.at + f.for_)}"
                                 for f in ended if f.at is not None and f.for_ is not None)
                out.append(f"unblocked when {what}; the next queue poll sent it")
            else:
                out.append(f"unblocked at {self.iso(v.sent_at)} (the blocking condition ended by itself)")
        return out

    def sender_user_story(self, address: str) -> list[str]:
        key = normalize_email(address)
        matches = [u for u in self.eng.users.values() if normalize_email(u.email) == key]
        if not matches:
            return [f"no user has the email {address}"]
        return [f"user {u.id} has {u.email} but is inactive" for u in matches if not u.active]

    # -- one invoice ---------------------------------------------------------------------------
    def explain(self, v: InvoiceView) -> Explanation:
        now = self.r.end
        eng = self.eng
        code = v.reason
        x = Explanation(v.id, v.email_status, code, "")
        batch = eng.batches[v.batch]
        if v.email_status == "N/A":
            x.headline = "N/A — no email will be generated for this invoice"
            x.chain.append(self.property_contacts(v.property))
            x.chain.extend(self.refused_edits(v.property))
            if v.completed_at is not None:
                x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)} with status N/A: never emailed")
        elif v.email_status == "Pending":
            x.headline = f"Pending — batch {v.batch} is still Draft"
            later = [ev.at for ev in self.scn.timeline if isinstance(ev, CompleteBatch) and ev.batch == v.batch]
            x.chain.append(f"batch {v.batch} ({batch.count} invoices) is Draft at {self.iso(now)}")
            x.chain.append(f"complete_batch is scheduled at {self.iso(later[0])}" if later
                           else "nothing in the timeline completes it")
            x.chain.append(self.property_contacts(v.property))
        elif v.email_status == "In Queue":
            self._in_queue(v, x, now)
        else:
            self._sent(v, x)
        for r in v.recipients:
            if r.outcome == "skipped":
                detail = f": {r.evidence}" if r.evidence else ""
                x.chain.append(f"recipient {r.email!r} ({r.contact}) skipped [{r.reason}]{detail}")
        if v.email_status in ("Sent", "In Queue"):
            x.chain.extend(self.refused_edits(v.property))
        refused = [why for ev, why in eng.events_applied
                   if why and isinstance(ev, SetContactEmail)
                   and ev.contact in {pc.contact for pc in eng.properties[v.property].contacts}]
        waited: list[str] = []
        email = eng.email_of(v.id)
        if email is not None and email.group is not None and v.queued_at is not None:
            end = v.sent_at if v.sent_at is not None else now + 1
            waited = [r for t, r, _ in email.group.history if r is not None and v.queued_at <= t < end]
        codes = [c for c in (code, *waited, *[r.reason for r in v.recipients], *v.notes, *refused) if c]
        steps: set[int] = set()
        for c in codes:
            info = REASONS.get(c)
            if info is not None:
                steps.update(info.steps)
        if not steps:
            steps.add(1)
        x.steps = tuple(sorted(steps))
        main = REASONS.get(code or "") or next((REASONS[c] for c in codes if c in REASONS), None)
        x.fix = main.fix if main else ""
        notes = set(v.notes)
        if v.completed_at is None:
            from simulator.domain.recipients import billing_contact_warnings

            if billing_contact_warnings(eng.properties[v.property], eng.org.configuration.invoice_recipients):
                notes.add("billing-contact-not-emailed")
        for n in sorted(notes):
            info = REASONS.get(n)
            x.warnings.append(f"{n}: {info.title if info else n}" + (f" — {info.fix}" if info else ""))
        return x

    def _in_queue(self, v: InvoiceView, x: Explanation, now: int) -> None:
        eng = self.eng
        code = v.reason
        email = eng.email_of(v.id)
        group = email.group if email is not None else None
        d = group.decision if group is not None else None
        info = REASONS.get(code or "")
        if code is None:
            x.headline = ("In Queue — just queued: the worker picks it up at the next poll"
                          f" (every {format_duration(eng.settings.queue_poll)})")
        else:
            x.headline = f"In Queue — {info.title if info else code}"
        x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)}; email queued {self.iso(v.queued_at)}")
        if group is not None:
            x.chain.extend(self.sender_chain(group.branch_ids))
            first = next((t for t, r, _ in group.history if r == code and (v.queued_at or 0) <= t), None)
            if first is not None:
                x.chain.append(f"blocked by {code} since {self.iso(first)}")
        if d is not None and d.address:
            if code == "sender-not-a-user":
                x.chain.extend(self.sender_user_story(d.address))
            elif d.user is not None:
                x.chain.extend(self.sync_story(d.user, now))
            if d.spf:
                for ip, res, expl in d.spf:
                    x.chain.append(f"SPF of {d.address.rpartition('@')[2]} for platform IP {ip}: {res} ({expl})")
        if d is not None and d.evidence and code in ("sender-not-configured",):
            x.chain.append(d.evidence)
        if v.stuck_at is not None:
            x.chain.append(f"in queue more than {format_duration(eng.settings.stuck_after)}: stuck since"
                           f" {self.iso(v.stuck_at)} (the guide's 'more than an hour')")
        x.chain.append(f"still In Queue at {self.iso(now)}; the queue worker retries every"
                       f" {format_duration(eng.settings.queue_poll)}, so fixing this drains it")

    def _sent(self, v: InvoiceView, x: Explanation) -> None:
        outs = Counter(r.outcome for r in v.recipients)
        if v.reason == "no-deliverable-recipient":
            x.headline = "Sent — but every recipient was skipped, so nobody received it"
        elif outs.get("inbox") and len(outs) == 1:
            x.headline = "Sent — delivered to the inbox"
        else:
            x.headline = "Sent — left the platform; " + ", ".join(f"{k}: {n}" for k, n in sorted(outs.items()))
        x.chain.append(f"batch {v.batch} completed {self.iso(v.completed_at)}; sent {self.iso(v.sent_at)} by"
                       f" {v.sender} via {v.sender_path} path from {v.client_ip}")
        if v.sender_path == "sync" and v.sender:
            from simulator.domain.sender import find_sender_user

            user = find_sender_user(v.sender, self.eng.users)
            if user is not None:
                x.chain.extend(self.sync_story(user.id, v.sent_at or 0))
        if v.sent_at is not None and v.queued_at is not None and v.sent_at > v.queued_at:
            x.chain.extend(self.queue_story(v))
        for r in v.recipients:
            where = r.email.strip()
            if r.outcome in ("inbox", "junk"):
                why = f" because of {r.reason}" if r.reason else ""
                x.chain.append(f"{where}: {r.outcome} at {self.iso(r.at)} after {r.attempts} attempt(s){why}")
            elif r.outcome == "bounced":
                x.chain.append(f"{where}: bounced at {self.iso(r.at)} [{r.reason}] {r.evidence or ''}; a bounce-back"
                               f" (DSN) is in {v.sender}'s inbox")
            elif r.outcome == "deferred":
                x.chain.append(f"{where}: deferred after {r.attempts} attempt(s) [{r.reason}] {r.evidence or ''};"
                               " the platform keeps retrying")


def explain_run(result: RunResult, *, invoice: str | None = None, group_large: int = 60) -> list[Explanation]:
    ex = _Explainer(result)
    if invoice is not None:
        v = result.invoice(invoice)
        return [ex.explain(v)] if v is not None else []
    if result.engine.total_invoices <= group_large:
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
    from dataclasses import replace

    return explain_run(simulate(replace(scn, until=until, expect=())), invoice=invoice)

