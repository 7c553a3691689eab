"""The stepper's state view and ``show`` details: what a trainer's class sees at each point.

A mixin of :class:`~simulator.replay.stepper.Stepper`: it reads the stepper's session (the run
as far as it has been stepped) and returns rich ``Text`` lines; the commands live in ``stepper.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.text import Text

from simulator.domain.sync import expires_at, verdict
from simulator.domain.vocabulary import EMAIL_STATUSES
from simulator.engine.session import Record, Session
from simulator.replay.step_model import STATUS_STYLE, Break, CommandError, Reply, _allocate, _days, _fit
from simulator.scenario.errors import did_you_mean
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration, format_offset


class StateView:
    """Rendering half of the stepper: the compact state view and the ``show`` commands."""

    sess: Session
    scn: Scenario
    width: int
    height: int
    breaks: list[Break]

    def iso(self, t: int) -> str:
        return self.scn.iso(t).replace("T", " ")

    def short(self, t: int) -> str:
        """``10:00:00`` on the clock's day, else ``11-03 10:00``."""
        iso = self.scn.iso(t)
        if iso[:10] == self.scn.iso(self.sess.now)[:10]:
            return iso[11:19]
        return f"{iso[5:10]} {iso[11:16]}"

    def _count(self, arg: str, default: int, what: str) -> int:
        if not arg:
            return default
        try:
            n = int(arg)
        except ValueError:
            raise CommandError(f"{what} takes a whole number, got {arg!r} (e.g. {what} 5)") from None
        if n < 0 or (n == 0 and what != "goto"):
            raise CommandError(f"{what} takes a positive number, got {n}")
        return n

    def _invoice_hint(self, word: str) -> str:
        return did_you_mean(word, self.sess.invoice_ids(), cutoff=0.5)

    def show_invoice(self, inv: str) -> Reply:
        if not inv:
            raise CommandError("show invoice needs an invoice id, e.g. show invoice INV-1004")
        v = self.sess.result().invoice(inv)
        if v is None:
            raise CommandError(f"no invoice {inv!r}{self._invoice_hint(inv)}")
        r = Reply()
        head = Text(f"{v.id}  ", style="bold")
        head.append(v.email_status, style=STATUS_STYLE.get(v.email_status, ""))
        head.append(f"  {v.reason or ''}")
        r.add(head)
        r.add(f"  batch {v.batch} ({v.batch_status}) · property {v.property}")
        times = [("completed", v.completed_at), ("queued", v.queued_at), ("stuck", v.stuck_at), ("sent", v.sent_at)]
        r.add("  " + " · ".join(f"{k} {self.short(t)}" for k, t in times if t is not None) if any(
            t is not None for _, t in times) else "  not completed yet")
        if v.email_status == "In Queue" and v.queued_at is not None:
            r.add(f"  in queue for {format_duration(self.sess.now - v.queued_at)}")
        if v.sender:
            r.add(f"  sender {v.sender} via the {v.sender_path} path from {v.client_ip}")
        if not v.recipients:
            r.add("  no recipients (no active contact with Email Invoice)")
        for rc in v.recipients:
            extra = f" {rc.smtp_code} {rc.enhanced_code}" if rc.smtp_code else ""
            when = f" at {self.short(rc.at)}" if rc.at is not None and rc.outcome != "skipped" else ""
            tries = f", {rc.attempts} attempt{'s' if rc.attempts != 1 else ''}" if rc.attempts else ""
            r.add(f"  → {rc.email!r} ({rc.contact}): {rc.outcome}{' [' + rc.reason + ']' if rc.reason else ''}"
                  f"{extra}{when}{tries}")
        if v.notes:
            r.add(f"  notes: {', '.join(v.notes)}")
        return r

    def show_user(self, uid: str) -> Reply:
        world = self.sess.world
        if not uid:
            raise CommandError(f"show user needs a user id: {', '.join(list(world.users)[:8])}")
        u = world.users.get(uid)
        if u is None:
            by_mail = [x for x in world.users.values() if x.email.lower() == uid.lower()]
            if not by_mail:
                raise CommandError(f"no user {uid!r}{did_you_mean(uid, world.users, cutoff=0.5)}")
            u = by_mail[0]
        r = Reply().add(Text(f"{u.id}  {u.email}" + ("" if u.active else "  (inactive)"), style="bold"))
        st = world.sync.get(u.id)
        life = world.token_lifetime
        now = self.sess.now
        if st is None:
            r.add("  no email sync: the SMTP path (platform IPs; SPF of the sender's domain must pass)")
        else:
            r.add(f"  sync {st.provider}; last (re)sync {self.iso(st.synced)}")
            if st.supported:
                exp = expires_at(st, life)
                left = exp - now
                r.add(f"  token refreshed {self.iso(st.refreshed)} by {st.refreshed_by}; lifetime"
                      f" {format_duration(life)}; " + (f"expires {self.iso(exp)} ({_days(left)} left)" if left > 0
                                                       else f"EXPIRED {self.iso(exp)} ({_days(-left)} ago)"),
                      "" if left > 0 else "red")
            if st.last_login is not None:
                r.add(f"  last login {self.iso(st.last_login)}")
            if st.password_changed is not None:
                r.add(f"  password changed {self.iso(st.password_changed)}")
            vd = verdict(st, now, life)
            r.add(f"  now: {'valid' if vd.ok else vd.reason} — {vd.evidence}", "green" if vd.ok else "red")
        for q in self.sess.queues():
            d = q.decision
            if d is not None and d.user == u.id:
                r.add(f"  sends for {q.key or '(no branch)'}: {len(q.waiting)} in queue")
        logins = self.sess.result().logins(u.id)
        if logins:
            r.add("  logins this run: " + ", ".join(f"{self.short(x.at)}{'' if x.refreshed else ' (too late)'}"
                                                    for x in logins[-5:]))
        return r

    def show_queue(self, key: str) -> Reply:
        settings = self.scn.settings
        every = self.sess.queues()
        queues = [q for q in every if not key or q.key == key or key in q.branch_ids]
        if key and not queues:
            raise CommandError(f"no queue group {key!r}{did_you_mean(key, [q.key for q in every], cutoff=0.5)}")
        waiting = sum(len(q.waiting) for q in every)
        r = Reply().add(f"queue: poll every {format_duration(settings.queue_poll)}, stuck after"
                        f" {format_duration(settings.stuck_after)}; {waiting} email(s) waiting")
        for q in queues:
            d = q.decision
            r.add(Text(f"{q.key or '(no branch)'}: {len(q.waiting)} in queue", style="bold"))
            if d is not None:
                r.add(f"  sender {d.address or '(none)'} from {d.source}; user {d.user or '-'}; path {d.path}"
                      + (f" ({d.provider})" if d.provider else ""))
                if d.reason:
                    r.add(f"  blocked: {d.reason} — {d.evidence}", "red")
            if q.waiting:
                oldest = q.waiting[0][1] or 0
                stuck = sum(1 for _inv, _at, is_stuck in q.waiting if is_stuck)
                r.add(f"  oldest queued {self.short(oldest)} ({format_duration(self.sess.now - oldest)} ago);"
                      f" stuck {stuck}")
                ids = [inv for inv, _at, _stuck in q.waiting[:10]]
                r.add("  " + " ".join(ids) + (f" … {len(q.waiting) - 10} more" if len(q.waiting) > 10 else ""))
        return r

    def show_mailbox(self, addr: str) -> Reply:
        result = self.sess.result()
        boxes = result.mailboxes()
        if not addr:
            if not boxes:
                return Reply().add("no mail stored yet")
            r = Reply()
            for a, box in boxes.items():
                r.add(f"{a}: inbox {box['inbox']} · junk {box['junk']} · bounces {box['bounces']}")
            return r
        key = addr.strip().lower()
        b = boxes.get(key)
        if b is None:
            known = [*boxes, *(u.email.lower() for u in self.sess.world.users.values())]
            hint = did_you_mean(addr, known, cutoff=0.5)
            return Reply(error=bool(hint)).add(f"{addr}: nothing stored yet{hint}")
        r = Reply().add(Text(f"{addr}: inbox {b['inbox']} · junk {b['junk']} · bounces {b['bounces']}", style="bold"))
        messages = [(mid, folder, t) for a, folder, mid, t in result.stored() if a == key]
        for mid, folder, t in messages[-10:]:
            r.add(f"  {self.short(t)} {folder:<6} {mid}")
        if len(messages) > 10:
            r.add(f"  … {len(messages) - 10} earlier")
        return r

    def show_events(self, arg: str) -> Reply:
        n = self._count(arg, 10, "show events")
        s = self.sess
        r = Reply()
        for rec in s.records[max(0, s.cursor - n):s.cursor]:
            r.add(self.record_line(rec))
        if not r.lines:
            r.add("no events yet")
        return r


    # -- the state view -------------------------------------------------------------------------------
    def record_line(self, rec: Record) -> str:
        skip = {"seq", "t", "at", "event", "invoice", "line"}
        parts = [f"#{rec['seq']}", self.short(int(rec["t"])), str(rec["event"])]
        if rec.get("invoice"):
            parts.append(str(rec["invoice"]))
        for k, v in rec.items():
            if k in skip or v is None or v == "":
                continue
            if isinstance(v, dict):
                v = ",".join(f"{a}:{b}" for a, b in v.items())
            elif isinstance(v, list):
                v = ",".join(map(str, v))
            parts.append(f"{k}={v}")
        return " ".join(parts)

    def _next_line(self) -> Text:
        s = self.sess
        line = Text("next: ", style="bold")
        if s.cursor < len(s.records):
            line.append(self.record_line(s.records[s.cursor]))
            return line
        t = s.upcoming_time()
        if t is None:
            line.append(f"— the run is over (clock {self.short(s.now)})", style="dim")
            return line
        what = s.upcoming_kind() or "model step"
        line.append(f"{what} at {self.short(t)} ({format_offset(t)})")
        applied = {id(ev) for ev, _ in s.applied_events()}
        for ev in sorted(self.scn.timeline, key=lambda e: (e.at, e.index)):
            if id(ev) not in applied:
                arg = ev.subject()
                line.append(f" · timeline {format_offset(ev.at)} {ev.kind} {arg}", style="dim")
                break
        return line

    def _invoice_rows(self) -> tuple[Counter[str], list[tuple[str, str, int, list[str]]]]:
        """Counts by email status, and (status, label, count, first ids) per status+reason group."""
        by_status: Counter[str] = Counter()
        groups: dict[tuple[str, str], list[Any]] = {}

        def add(status: str, label: str, inv: str) -> None:
            by_status[status] += 1
            g = groups.get((status, label))
            if g is None:
                groups[(status, label)] = [1, [inv]]
            else:
                g[0] += 1
                if len(g[1]) < 4:
                    g[1].append(inv)

        for v in self.sess.result().invoice_statuses():
            if v.email_status == "Sent" and v.reason is None:
                outs = sorted({outcome + (f" {reason}" if reason else "") for outcome, reason in v.outcomes})
                label = ", ".join("in flight" if o == "none" else o for o in outs)
            elif v.email_status == "In Queue":
                label = (v.reason or "awaiting the next poll") + (" · STUCK" if v.stuck else "")
            else:
                label = v.reason or ""
            add(v.email_status, label, v.id)
        order = {s: i for i, s in enumerate(EMAIL_STATUSES)}
        rows = sorted(((st, lab, g[0], g[1]) for (st, lab), g in groups.items()),
                      key=lambda x: (order.get(x[0], 9), -x[2], x[1]))
        return by_status, rows

    def render_state(self, rows: int | None = None) -> list[Text]:
        """The compact view: clock, next event, invoices, queue, senders, SMTP replies (fits 80×24)."""
        s, world, w = self.sess, self.sess.world, self.width
        settings = self.scn.settings
        budget = (rows if rows is not None else self.height - 5) - 6  # six lines: header, next, 4 titles
        by_status, inv_rows = self._invoice_rows()
        live = [q for q in s.queues() if q.waiting]
        replies: list[Record] = []
        for rec in reversed(s.records[max(0, s.cursor - 20_000):s.cursor]):
            if rec["event"] == "smtp.reply" or (rec["event"] == "email.delivered" and rec.get("code")):
                replies.append(rec)
                if len(replies) >= max(2, budget):
                    break
        caps = _allocate(budget, {"inv": len(inv_rows), "queue": len(live), "users": len(world.users),
                                  "smtp": max(1, len(replies))})
        replies = replies[: caps["smtp"]]
        out: list[Text] = []
        head = Text(f"{self.scn.name} ", style="bold")
        head.append(f"{self.iso(s.now)} ({format_offset(s.now)})", style="bold cyan")
        total = f"{len(s.records)}" + ("" if s.done else "+")
        head.append(f" · event #{s.cursor} of {total}")
        if s.injections:
            head.append(f" · {len(s.injections)} what-if", style="magenta")
        if self.breaks:
            head.append(f" · {len(self.breaks)} break", style="magenta")
        out.append(head)
        out.append(self._next_line())
        # invoices
        t = Text("Invoices ", style="bold")
        t.append(" · ".join(f"{st} {by_status[st]}" for st in EMAIL_STATUSES if by_status[st]) or "none")
        out.append(t)
        shown, more = self._cap(inv_rows, caps["inv"], "groups")
        for st, label, n, ids in shown:
            row = Text("  ")
            row.append(f"{st:<9}", style=STATUS_STYLE.get(st, ""))
            row.append(f"{label or '-':<34} ", style="red" if "STUCK" in label else "")
            row.append(f"{n:>4}  " + " ".join(ids) + (" …" if n > len(ids) else ""), style="dim")
            out.append(row)
        if more is not None:
            out.append(more)
        # queue
        qt = Text("Queue ", style="bold")
        stuck_after = settings.stuck_after
        qt.append(f"{sum(len(q.waiting) for q in live)} waiting" + (f" in {len(live)} groups" if len(live) > 1 else "")
                  + f" · poll {format_duration(settings.queue_poll)}, stuck after {format_duration(stuck_after)}")
        out.append(qt)
        shown, more = self._cap(live, caps["queue"], "groups")
        for q in shown:
            age = s.now - (q.waiting[0][1] or s.now)
            stuck = any(is_stuck for _inv, _at, is_stuck in q.waiting) or age >= stuck_after
            row = Text(f"  {q.key or '-'}: {len(q.waiting)} · oldest {format_duration(max(0, age))} ")
            if stuck:
                row.append("STUCK ", style="bold red")
            d = q.decision
            row.append(f"{q.reason or (d.reason if d else None) or 'awaiting poll'}"
                       + (f" · from {d.address}" if d is not None and d.address else ""), style="dim")
            out.append(row)
        if more is not None:
            out.append(more)
        # senders
        out.append(Text(f"Senders (token lifetime {format_duration(world.token_lifetime)})", style="bold"))
        sending = [d.user for q in live if (d := q.decision) is not None and d.user]
        order = {u: i for i, u in enumerate(dict.fromkeys(sending))}
        users = sorted(world.users.values(), key=lambda u: (order.get(u.id, len(order)),
                                                             world.sync.get(u.id) is None))
        shown, more = self._cap(users, caps["users"], "users")
        for u in shown:
            out.append(self._user_row(u.id))
        if more is not None:
            out.append(more)
        # SMTP replies
        bounces = [(a, b["bounces"]) for a, b in s.result().mailboxes().items() if b["bounces"]]
        st_ = Text("SMTP replies", style="bold")
        if bounces:
            st_.append(" · bounce-backs: " + ", ".join(f"{a} {n}" for a, n in bounces[:2])
                       + (" …" if len(bounces) > 2 else ""))
        out.append(st_)
        if not replies:
            out.append(Text("  none yet", style="dim"))
        for rec in reversed(replies):
            code = int(rec.get("code") or 0)
            row = Text(f"  {self.short(int(rec['t']))} ")
            row.append(f"{code} {rec.get('enhanced') or ''}", style="green" if code < 400 else
                       "yellow" if code < 500 else "red")
            spf = f" spf={rec['spf']}" if rec.get("spf") else ""
            said = f"→ {rec['folder']}" if rec["event"] == "email.delivered" else rec.get("text") or ""
            row.append(f" {rec.get('recipient')} {rec.get('invoice')}{spf} {said}")
            out.append(row)
        return [_fit(x, w) for x in out]

    @staticmethod
    def _cap(items: Iterable[Any], cap: int, what: str) -> tuple[list[Any], Text | None]:
        """At most ``cap`` rows: the first ``cap - 1`` and a '… N more' line when there are more."""
        items = list(items)
        if len(items) <= cap:
            return items, None
        shown = items[: max(0, cap - 1)]
        return shown, Text(f"  … {len(items) - len(shown)} more {what}", style="dim")

    def _user_row(self, uid: str) -> Text:
        world, now = self.sess.world, self.sess.now
        u = world.users[uid]
        row = Text(f"  {u.id:<6} ", style="bold")
        row.append(f"{u.email:<30} ")
        if not u.active:
            row.append("inactive ", style="red")
        st = world.sync.get(uid)
        if st is None:
            row.append("no sync (SMTP path)", style="dim")
            return row
        row.append(f"{st.provider} ")
        life = world.token_lifetime
        vd = verdict(st, now, life)
        if not st.supported:
            row.append("unsupported → SMTP", style="yellow")
            return row
        left = expires_at(st, life) - now
        if vd.reason == "sync-password-changed":
            row.append("password changed ", style="red")
        if left > 0:
            row.append(f"{_days(left)} to expiry", style="green" if vd.ok else "")
        else:
            row.append(f"EXPIRED {_days(-left)} ago", style="red")
        return row
