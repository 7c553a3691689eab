"""Lanes of a run: one per invoice (its status row and a row per recipient), markers, fault bands, aggregation.

Built from the run's final views and its trace events (``invoice.status``, ``email.blocked``,
``email.stuck``, ``email.sent``, ``smtp.reply``, ``email.deferred``, ``email.delivered``,
``email.bounced``); large runs fold the invoice lanes into one lane per batch × status × reason
with counts over time (:func:`aggregate`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from simulator.engine.result import InvoiceView, RecipientView
from simulator.replay.timeline_model import (
    MARKER_EVENTS,
    Band,
    Lane,
    Mark,
    Marker,
    Record,
    Row,
    Span,
    _Fmt,
    _key,
    reason_title,
)
from simulator.scenario.times import format_duration


def _marker(rec: Record, fmt: _Fmt) -> Marker:
    ev = rec["event"]
    kind = MARKER_EVENTS[ev]
    t = rec["t"]
    user = rec.get("user")
    if ev == "batch.completed":
        label = f"{rec['batch']} completed"
        n = rec.get("invoices", 0)
        detail = (f"batch {rec['batch']} completed ({n} invoice{'s' if n != 1 else ''}, "
                  f"branch{'es' if len(rec.get('branches', [])) != 1 else ''} {', '.join(rec.get('branches', []))})")
    elif ev == "batch.already_completed":
        label, detail = f"{rec['batch']} again", f"batch {rec['batch']} was already completed"
    elif ev == "user.login":
        if rec.get("refreshed") is None:
            label, detail = f"{user} login", f"{user} logged in (no mailbox sync)"
        elif rec["refreshed"]:
            label = f"{user} login"
            detail = f"{user} logged in while the token was alive: refreshed, expires {rec.get('expires')}"
        else:
            label = f"{user} login (too late)"
            detail = f"{user} logged in after the token expired: a login does not revive it, only a re-sync does"
    elif ev in ("sync.resynced", "sync.set"):
        label = f"{user} re-sync" if ev == "sync.resynced" else f"{user} sync set"
        detail = f"{user} (re)synced the mailbox ({rec.get('provider')}): a fresh token"
    elif ev == "sync.removed":
        label, detail = f"{user} sync removed", f"{user}'s mailbox sync removed: SMTP path"
    elif ev == "user.password_changed":
        label, detail = f"{user} password", f"{user} changed the password: the sync is invalid until a re-sync"
    elif ev in ("user.deactivated", "user.activated"):
        label, detail = f"{user} {ev.split('.')[1]}", f"user {user} {ev.split('.')[1]}"
    elif ev == "sync.expired":
        label = f"{user} token expired"
        detail = f"{user}'s sync token expired (last refreshed {rec.get('refreshed')} by {rec.get('refreshed_by')})"
    elif ev == "contact.refused":
        label = f"{rec.get('contact')} edit refused"
        detail = (f"set {rec.get('contact')} email to {rec.get('email')!r} refused: {rec.get('reason')} "
                  f"(already used by contact {rec.get('existing_contact')})")
    elif ev == "contact.changed":
        what = f"email {rec['email']!r}" if "email" in rec else f"active={rec.get('active')}"
        label, detail = f"{rec.get('contact')} changed", f"contact {rec.get('contact')}: {what}"
    elif ev == "property.changed":
        label = f"{rec.get('property')} contacts"
        detail = (f"property {rec.get('property')}: contact {rec.get('contact')} "
                  f"email_invoice={rec.get('email_invoice')}")
    elif ev == "settings.changed":
        label = f"{rec.get('where')} sender"
        detail = f"{rec.get('where')} invoicing email from = {rec.get('invoicing_email_from')}"
    else:  # dns.changed
        val = rec.get("value")
        label = f"DNS {rec.get('name')} {rec.get('type')}"
        detail = f"DNS {rec.get('op')} {rec.get('name')} {rec.get('type')}" + (f" = {val}" if val else "")
    return Marker(t, kind, label, f"{fmt.at(t)} — {detail}")


def _fault_band(f: Any, end: int, fmt: _Fmt) -> Band:
    start = max(0, f.at or 0)
    stop = min(end, start + f.for_) if f.for_ is not None else end
    what = f.kind + (f" at {f.stage}" if f.stage else "") + (f" on {f.target}" if f.target else " (everything)")
    if f.probability < 1:
        what += f", probability {f.probability:g}"
    if f.kind == "slow" and f.delay:
        what += f", +{format_duration(f.delay)}"
    return Band(start, stop, f.kind, f"fault: {f.kind}" + (f" {f.target}" if f.target else ""),
                f"fault #{f.index + 1}: {what}; {fmt.span(start, stop)}")


# -- invoice lanes -------------------------------------------------------------------------------
_RCPT_RANK = {"bounced": 0, "deferred": 1, "junk": 2, "skipped": 3, "none": 4, "inbox": 5}


def primary_reason(v: InvoiceView) -> str | None:
    """The code that best explains where the invoice stands: its own, else its worst recipient's."""
    if v.reason is not None and v.reason != "no-deliverable-recipient":
        return v.reason
    worst: RecipientView | None = None
    for r in v.recipients:
        if r.reason is not None and (worst is None or _RCPT_RANK.get(r.outcome, 9) < _RCPT_RANK.get(worst.outcome, 9)):
            worst = r
    if v.reason is not None and (worst is None or worst.outcome == "skipped"):
        return v.reason
    return worst.reason if worst is not None else None


def _invoice_lane(v: InvoiceView, recs: Iterable[Record], end: int, stuck_after: int, fmt: _Fmt,
                  detailed: bool = True) -> Lane:
    """One invoice's lane. ``detailed=False`` (a run that will be drawn aggregated): spans and the
    stuck mark only — the hover texts and attempt ticks, which nobody sees then, are not written."""
    recs = list(recs)
    reasons: dict[str, None] = {}
    status = Row("email status")
    rid = v.id

    def add(row: Row, a: int, b: int, kind: str, label: str, reason: str | None, detail: str) -> None:
        b = min(b, end)
        if b < a or (b == a and b < end):
            return
        if reason:
            reasons.setdefault(reason, None)
        last = row.spans[-1] if row.spans else None
        if not detailed:
            if last is not None and last.kind == kind and last.reason == reason and last.end == a:
                last.end = b
            else:
                row.spans.append(Span(a, b, kind, label, reason))
            return
        why = f"\n{reason_title(reason)}" if reason else ""
        if last is not None and last.kind == kind and last.reason == reason and last.end == a:
            # one state across a boundary (N/A before and after completion): one span, both details
            first, _, rest = last.detail.partition("\n")
            _, _, rest = rest.partition("\n")
            last.end = b
            last.detail = f"{first}\n{fmt.span(last.start, b)}\n{rest}" + (f"; {detail}" if detail else "")
            return
        row.spans.append(Span(a, b, kind, label, reason, f"{rid} · {label}\n{fmt.span(a, b)}{why}"
                                                            + (f"\n{detail}" if detail else "")))

    # Draft: Pending / N/A as the property's contacts made it (status history while Draft)
    draft_until = v.completed_at if v.completed_at is not None else end
    hist = [(t, st) for t, st in _prop_history(recs, v) if t < draft_until or (t == 0 and draft_until == 0)]
    for i, (t, st) in enumerate(hist):
        nxt = hist[i + 1][0] if i + 1 < len(hist) else draft_until
        if st == "N/A":
            add(status, t, nxt, "na", "N/A", "no-invoice-email-contact", "no active contact with Email Invoice")
        else:
            add(status, t, nxt, "pending", "Pending", "batch-draft", f"batch {v.batch} is Draft: no email yet")
    if v.completed_at is not None and v.email_status == "N/A":
        add(status, v.completed_at, end, "na", "N/A", v.reason,
            f"batch completed {fmt.at(v.completed_at)}; never emailed")
    if v.queued_at is not None:
        q_end = v.sent_at if v.sent_at is not None else end
        blocks = [(r["t"], r.get("reason"), r.get("evidence") or "", r.get("sender")) for r in recs
                  if r["event"] == "email.blocked"]
        cuts = sorted({v.queued_at, *(t for t, *_ in blocks if v.queued_at <= t < q_end),
                       *([v.stuck_at] if v.stuck_at is not None and v.stuck_at < q_end else [])})
        for i, a in enumerate(cuts):
            b = cuts[i + 1] if i + 1 < len(cuts) else q_end
            cur = [x for x in blocks if x[0] <= a]
            reason, evidence, sender = (cur[-1][1], cur[-1][2], cur[-1][3]) if cur else (None, "", None)
            stuck = v.stuck_at is not None and a >= v.stuck_at
            kind = "queue-stuck" if stuck else "queue-blocked" if reason else "queue"
            label = "In Queue, stuck" if stuck else "In Queue"
            detail = f"queued {fmt.at(v.queued_at)}" + (f"; sender {sender}" if sender else "")
            detail += f"; {evidence}" if evidence else ("" if reason else "; waiting for the next queue poll")
            if stuck:
                detail += f"; stuck since {fmt.at(v.stuck_at)} (more than {format_duration(stuck_after)} in queue)"
            add(status, a, b, kind, label, reason, detail)
        threshold = v.queued_at + stuck_after
        if threshold <= end and (v.sent_at is None or threshold <= v.sent_at):
            status.marks.append(Mark(threshold, "stuck", "stuck threshold",
                                     f"{rid}: stuck threshold {fmt.at(threshold)} — {format_duration(stuck_after)} "
                                     "in queue (the guide's 'more than an hour')"))
    sent_rec: Record | None = None
    if v.sent_at is not None:
        sent_rec = next((r for r in recs if r["event"] == "email.sent"), None)
        how = ""
        if sent_rec is not None:
            how = f"sender {sent_rec.get('sender')} via the {sent_rec.get('path')} path"
            if sent_rec.get("provider"):
                how += f" ({sent_rec['provider']})"
            how += f", client IP {sent_rec.get('client_ip')}"
        add(status, v.sent_at, end, "sent", "Sent", v.reason, how)
    lane = Lane(rid, "invoice", rid, batch=v.batch, status=str(v.email_status), reason=primary_reason(v))
    lane.rows.append(status)

    # recipients: their delivery after the email left the platform
    per_rcpt: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        if r.get("recipient") is not None:
            per_rcpt[_key(r["recipient"])].append(r)
    for rv in v.recipients:
        row = Row(rv.email.strip() or repr(rv.email))
        _recipient_row(row, rv, v, per_rcpt.get(_key(rv.email), []), end, fmt, add, detailed)
        lane.rows.append(row)
    for rv in v.recipients:
        if rv.reason:
            reasons.setdefault(rv.reason, None)
    if lane.reason:
        reasons.setdefault(lane.reason, None)
    if v.email_status != "Pending":  # every emailed invoice was a Draft once: not worth a filter hit
        reasons.pop("batch-draft", None)
    lane.reasons = tuple(reasons)
    if not detailed:
        return lane
    rc = ", ".join(f"{r.email.strip()} → {r.outcome}" + (f" ({r.reason})" if r.reason else "") for r in v.recipients)
    lane.detail = (f"{rid} (batch {v.batch}, {v.batch_status}) — email status {v.email_status}"
                   + (f", {reason_title(v.reason)}" if v.reason else "")
                   + (f"\nsender {v.sender}" if v.sender else "")
                   + (f"\nrecipients: {rc}" if rc else "\nno email-invoice contact")
                   + (f"\nnotes: {', '.join(v.notes)}" if v.notes else ""))
    return lane


def _prop_history(recs: list[Record], v: InvoiceView) -> list[tuple[int, str]]:
    """Email status while Draft: the status at t=0 then every change (``invoice.status`` while Draft)."""
    changes = [(r["t"], r["email_status"]) for r in recs
               if r["event"] == "invoice.status" and (v.completed_at is None or r["t"] < v.completed_at)]
    # the status at the start: the one before the first change, else the one the invoice held at completion
    if changes:
        first = "N/A" if changes[0][1] == "Pending" else "Pending"
    elif v.completed_at is None:
        first = v.email_status
    else:
        first = "N/A" if v.email_status == "N/A" else "Pending"
    out = [(0, first)]
    for t, st in changes:
        if t == out[-1][0]:
            out[-1] = (t, st)
        elif st != out[-1][1]:
            out.append((t, st))
    return out


def _recipient_row(row: Row, rv: RecipientView, v: InvoiceView, recs: list[Record], end: int, fmt: _Fmt,
                   add: Any, detailed: bool = True) -> None:
    who = f"recipient {rv.email.strip()}"
    if rv.outcome == "skipped":
        if v.completed_at is not None:
            add(row, v.completed_at, end, "skipped", "skipped", rv.reason, f"{who}: {rv.evidence or 'not sent to'}")
        return
    # the email exists from completion (DESIGN §2): before that a recipient row is empty
    if v.sent_at is None:
        if v.queued_at is not None:
            add(row, v.queued_at, end, "unsent", "not sent yet", None, f"{who}: the email is still In Queue")
        return
    if v.queued_at is not None and v.queued_at < v.sent_at:
        add(row, v.queued_at, v.sent_at, "unsent", "not sent yet", None, f"{who}: the email waited In Queue")
    cur_t, cur_kind, cur_label, cur_reason = v.sent_at, "transit", "in transit", None
    cur_detail = f"{who}: handed to the MTA"
    attempts: set[tuple[Any, int]] = set()
    for r in recs:
        ev = r["event"]
        t = r["t"]
        if ev not in ("smtp.reply", "email.deferred", "email.delivered", "email.bounced"):
            continue
        # one tick per SMTP attempt (a cohort's delivery may carry its attempt without a separate reply)
        att = (r.get("attempt"), t)
        if detailed and r.get("attempt") is not None and att not in attempts and (ev == "smtp.reply" or r.get("code")):
            attempts.add(att)
            row.marks.append(Mark(t, "attempt", f"attempt {r.get('attempt')}: {r.get('code')}",
                                  f"{v.id} → {rv.email.strip()} attempt {r.get('attempt')} at {fmt.at(t)}: "
                                  f"{r.get('code')} {r.get('enhanced') or ''} {r.get('text') or ''}".rstrip()
                                  + (f" (SPF {r['spf']})" if r.get("spf") else "")))
        if ev == "smtp.reply":
            continue
        add(row, cur_t, t, cur_kind, cur_label, cur_reason, cur_detail)
        cur_t = t
        cur_reason = r.get("reason")
        if ev == "email.deferred":
            cur_kind, cur_label = "deferred", "deferred"
            cur_detail = f"{who}: attempt {r.get('attempt')} deferred; next try {r.get('retry_at')}"
        elif ev == "email.delivered":
            folder = r.get("folder") or "inbox"
            cur_kind, cur_label = ("junk" if folder == "junk" else "inbox"), folder
            cur_detail = f"{who}: delivered to {folder} (SPF {r.get('spf')})"
        else:
            cur_kind, cur_label = "bounced", "bounced"
            cur_detail = f"{who}: {r.get('code')} {r.get('enhanced')}; bounce-back {r.get('dsn')} to {r.get('dsn_to')}"
    add(row, cur_t, end, cur_kind, cur_label, cur_reason, cur_detail)
