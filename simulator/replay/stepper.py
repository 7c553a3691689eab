"""The logic of ``mailsim step``: commands, breakpoints, what-if injections, saving, the state view.

Terminal-free on purpose: :meth:`Stepper.execute` takes one command line and returns a
:class:`Reply` of rich ``Text`` lines; the CLI either draws them (with the state view) on a
full screen or prints them as plain text, so lessons and bug reports can be scripted and
tested without a terminal.

Time semantics a trainer should know (docs/training.md):

* the unit of ``next``/``back``/``goto`` is one trace event (``#seq``); ``back`` re-runs the
  deterministic model from the start, so the state it shows is exact;
* ``inject`` applies the event one second after every event of the current instant (the
  clock moves on to a second at which nothing else is scheduled). A timeline entry at that
  second in a scenario file does exactly the same thing, so ``save`` reproduces the branch
  event for event;
* ``save`` first finishes the current instant (a scenario's ``until`` includes everything
  scheduled at that time), then pins what the invoices show.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from simulator.domain.entities import DAY
from simulator.domain.events import EVENT_KINDS, CompleteBatch, Event, UserEvent
from simulator.domain.sync import expires_at, verdict
from simulator.domain.vocabulary import EMAIL_STATUSES, REASON_CODES, RECIPIENT_OUTCOMES
from simulator.engine.run import simulate
from simulator.engine.session import Injection, Record, Session
from simulator.scenario.edit import ListEdit, ScenarioEdit, apply_edit
from simulator.scenario.edit import dump as _dump
from simulator.scenario.edit import flow as _flow
from simulator.scenario.edit import yaml_rt as _yaml
from simulator.scenario.errors import ScenarioError, TimeFormatError, did_you_mean
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_duration, format_offset, parse_duration, parse_time_required

#: Every trace event the engine emits (for ``until EVENT`` / ``break on event`` and their hints).
EVENT_NAMES: tuple[str, ...] = (
    "batch.draft", "batch.completed", "batch.already_completed", "invoice.status", "email.blocked", "email.stuck",
    "email.sent", "smtp.reply", "email.deferred", "email.delivered", "email.bounced", "user.login",
    "user.password_changed", "user.deactivated", "user.activated", "sync.expired", "sync.resynced", "sync.set",
    "sync.removed", "contact.changed", "contact.refused", "property.changed", "settings.changed", "dns.changed",
    "fault.started", "fault.ended",
)
#: ``until``/``break on status`` also accept recipient outcomes: the event that shows each.
OUTCOME_WORDS: tuple[str, ...] = ("inbox", "junk", "bounced", "deferred")
STATUS_STYLE = {"Sent": "green", "In Queue": "yellow", "Pending": "cyan", "N/A": "red"}
PIN_INVOICES = 200  # save: pin at most this many invoices one by one (the rest by counts)
PIN_MAILBOXES = 50
MODEL_PRIORITY = {0: "timeline", 1: "fault/token marker", 2: "queue poll", 3: "MTA delivery attempt",
                  4: "marker", 5: "checkpoint"}

HELP = """\
next [N]            reveal the next N trace events (default 1)
until WHAT          run until TIME (ISO), +DURATION (from now), an EVENT
                    name (email.stuck), a STATUS any invoice reaches (Sent,
                    In Queue, N/A, Pending) or an outcome (inbox, junk,
                    bounced, deferred); 'until end' runs to the end
back [N]            go back N events (exact: re-runs the model)
goto SEQ            go to event #SEQ (back or forward)
break on invoice INV | reason CODE | event NAME | status S
break list | break clear [N]     breakpoints stop next N and until
show invoice|user|queue|mailbox X   details; 'show events [N]' recent events
why INV             the explanation of INV at this instant
inject EVENT        what-if, e.g. inject resync: nora  (undo with back)
save FILE           a scenario that reproduces this run, outcomes pinned
help, quit          (Enter redraws the screen)"""


class CommandError(Exception):
    """A bad command: its message is the one-line hint shown to the user."""


@dataclass
class Reply:
    lines: list[Text] = field(default_factory=list)
    state: bool = False  # the state view follows (a move happened)
    quit: bool = False
    error: bool = False

    def add(self, line: str | Text, style: str = "") -> Reply:
        self.lines.append(line if isinstance(line, Text) else Text(line, style=style))
        return self


@dataclass(frozen=True)
class Break:
    kind: str  # invoice | reason | event | status
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"

    def matches(self, rec: Record) -> bool:
        if self.kind == "invoice":
            return rec.get("invoice") == self.value
        if self.kind == "reason":
            return rec.get("reason") == self.value
        if self.kind == "event":
            return event_matches(self.value, str(rec["event"]))
        return status_reached(self.value, rec)


def event_matches(pattern: str, name: str) -> bool:
    """``email.stuck`` exactly; ``email.`` or ``email.*`` any event of that family."""
    if pattern.endswith(".*"):
        pattern = pattern[:-1]
    return name.startswith(pattern) if pattern.endswith(".") else name == pattern


def status_reached(status: str, rec: Record) -> bool:
    """Does this trace event show an invoice (or a recipient) reaching ``status``?"""
    ev = rec["event"]
    if status in OUTCOME_WORDS:
        if status in ("inbox", "junk"):
            return ev == "email.delivered" and rec.get("folder") == status
        return ev == f"email.{status}"
    if status == "Sent":
        return ev == "email.sent"
    return ev == "invoice.status" and rec.get("email_status") == status


def parse_status(word: str) -> str | None:
    """``in queue``, ``InQueue``, ``in-queue`` → ``In Queue``; ``n/a``, ``na`` → ``N/A``; outcomes too."""
    key = re.sub(r"[\s_\-/]", "", word).lower()
    for s in EMAIL_STATUSES:
        if re.sub(r"[\s/]", "", s).lower() == key:
            return s
    return word.lower() if word.lower() in OUTCOME_WORDS else None


def _fit(text: Text, width: int) -> Text:
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width, overflow="ellipsis")
    return text


def _days(seconds: int) -> str:
    return f"{seconds / DAY:.1f}d"


_MIN_ROWS = {"inv": 3, "queue": 1, "users": 2, "smtp": 1}
_SHRINK_ORDER = ("users", "smtp", "queue", "inv")


def _allocate(budget: int, need: dict[str, int]) -> dict[str, int]:
    """Rows per section of the state view: what each needs, shrunk to fit ``budget``."""
    caps = {k: max(0, n) for k, n in need.items()}
    while sum(caps.values()) > budget:
        # shrink the section with the most rows to spare; invoice rows count half (they matter most)
        slack = {k: (caps[k] - _MIN_ROWS[k]) * (0.5 if k == "inv" else 1.0) for k in _SHRINK_ORDER}
        k = max(_SHRINK_ORDER, key=lambda x: slack[x])
        if slack[k] <= 0:
            break
        caps[k] -= 1
    return caps


class Stepper:
    """One stepping session over one scenario file."""

    def __init__(self, path: str | Path, *, width: int = 80, height: int = 24) -> None:
        self.path = Path(path)
        self.text = self.path.read_text(encoding="utf-8-sig")
        self.scn: Scenario = load_scenario(self.path)
        self.sess = Session(self.scn)
        self.width = width
        self.height = height
        self.breaks: list[Break] = []
        self.inject_text: dict[Injection, str] = {}  # injection -> its event as one line of flow YAML
        self.seen: list[tuple[int, int, tuple[Injection, ...]]] = []  # (cursor, clock, injections) shown
        self.remember()

    # -- the clock ------------------------------------------------------------------------------------
    def iso(self, t: int) -> str:
        return self.scn.iso(t).replace("T", " ")

    def short(self, t: int) -> str:
        """``10:00:00`` on the clock's day, else ``11-03 10:00``."""
        iso = self.scn.iso(t)
        if iso[:10] == self.scn.iso(self.sess.now)[:10]:
            return iso[11:19]
        return f"{iso[5:10]} {iso[11:16]}"

    def remember(self) -> None:
        s = self.sess
        self.seen.append((s.cursor, s.now, tuple(s.injections)))
        del self.seen[:-500]

    def _restore(self, new: Session) -> Session:
        """After a re-run: if this event was last seen with the clock moved on (``until TIME``), move it too."""
        key = tuple(new.injections)
        for cursor, now, injs in reversed(self.seen):
            if cursor == new.cursor and injs == key:
                if now > new.now:
                    new.until_time(now)
                break
        return new

    # -- entry point ----------------------------------------------------------------------------------
    def execute(self, line: str) -> Reply:
        """Run one command; a bad one gives a one-line hint (``Reply.error``), never an exception."""
        line = line.strip()
        if not line or line.startswith("#"):
            return Reply(state=not line)
        word, _, arg = line.partition(" ")
        word = word.lower()
        arg = arg.strip()
        cmd = _ALIASES.get(word, word)
        handler: Callable[[str], Reply] | None = getattr(self, f"cmd_{cmd}", None)
        if handler is None or cmd not in _COMMANDS:
            hint = did_you_mean(word, _COMMANDS)
            return Reply(error=True).add(f"unknown command {word!r}{hint} (type help)", "red")
        snapshot = (self.sess.cursor, self.sess.now, tuple(self.sess.injections))
        try:
            reply = handler(arg)
        except CommandError as exc:
            return Reply(error=True).add(str(exc), "red")
        except KeyboardInterrupt:
            self._rebuild(snapshot)
            return Reply(error=True, state=True).add("interrupted: back where the command started", "red")
        except Exception as exc:  # a bug must not end a class: report it in one line, keep the state
            self._rebuild(snapshot)
            return Reply(error=True, state=True).add(
                f"internal error in {cmd!r}: {type(exc).__name__}: {exc} (state restored)", "red")
        if reply.state:
            self.remember()
        return reply

    def _rebuild(self, snapshot: tuple[int, int, tuple[Injection, ...]]) -> None:
        cursor, now, injs = snapshot
        new = Session(self.scn, injs)
        new.next(cursor)
        if now > new.now:
            new.until_time(now)
        self.sess = new

    # -- moving ---------------------------------------------------------------------------------------
    def _hit(self, rec: Record) -> Break | None:
        for b in self.breaks:
            if b.matches(rec):
                return b
        return None

    def _moved(self, reply: Reply, before: int, hit: Break | None = None) -> Reply:
        s = self.sess
        n = s.cursor - before
        what = f"moved {n} event{'s' if n != 1 else ''}" if n >= 0 else f"back {-n} event{'s' if n != -1 else ''}"
        cur = s.current()
        where = f" → #{cur['seq']}" if cur else " → the start"
        reply.add(what + where + ("" if not s.done else " (the run is over)"))
        if hit is not None and cur is not None:
            reply.add(f"stopped at breakpoint {self.breaks.index(hit) + 1} ({hit}): {self.record_line(cur)}",
                      "bold magenta")
        reply.state = True
        return reply

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

    def cmd_next(self, arg: str) -> Reply:
        n = self._count(arg, 1, "next")
        before = self.sess.cursor
        hit: Break | None = None
        if not self.breaks:
            self.sess.next(n)
        else:
            for _ in range(n):
                if self.sess.next(1) == 0:
                    break
                cur = self.sess.current()
                hit = self._hit(cur) if cur is not None else None
                if hit is not None:
                    break
        return self._moved(Reply(), before, hit)

    def cmd_back(self, arg: str) -> Reply:
        n = self._count(arg, 1, "back")
        before = self.sess.cursor
        reply = Reply()
        if n > before:
            reply.add(f"only {before} events behind: going to the start")
            n = before
        self.sess = self._restore(self.sess.back(n))
        return self._moved(reply, before)

    def cmd_goto(self, arg: str) -> Reply:
        if not arg:
            raise CommandError("goto needs an event number, e.g. goto 12 (0: the start)")
        seq = self._count(arg.lstrip("#"), 0, "goto")
        before = self.sess.cursor
        self.sess = self._restore(self.sess.goto(seq))
        reply = Reply()
        if self.sess.cursor < seq:
            reply.add(f"the run has only {self.sess.cursor} events", "yellow")
        return self._moved(reply, before)

    def _event_name(self, word: str) -> str:
        base = word[:-1] if word.endswith("*") else word
        if base.endswith("."):
            if any(n.startswith(base) for n in EVENT_NAMES):
                return base
        elif base in EVENT_NAMES:
            return base
        raise CommandError(f"unknown event {word!r}{did_you_mean(word, EVENT_NAMES, cutoff=0.5)}"
                           f" (events: email.stuck, email.sent, smtp.reply, sync.expired, …)")

    def cmd_until(self, arg: str) -> Reply:
        if not arg:
            raise CommandError("until needs a target: +2h, 2026-11-02T11:00:00Z, email.stuck, Sent, … (see help)")
        s = self.sess
        before = s.cursor
        bp = self._hit if self.breaks else None
        target: Callable[[Record], bool] | None = None
        t: int | None = None
        status = parse_status(arg)
        if arg.lower() == "end":
            target = None
        elif arg.startswith("+"):
            try:
                t = s.now + parse_duration(arg[1:])
            except (TimeFormatError, ValueError) as exc:
                raise CommandError(f"until: {exc}") from None
        elif status is not None:
            target = lambda r: status_reached(status, r)  # noqa: E731
        elif arg[:1].isdigit():
            try:
                t = parse_time_required(arg, self.scn.start)
            except (TimeFormatError, ValueError) as exc:
                raise CommandError(f"until: {exc}") from None
            if t < s.now:
                raise CommandError(f"until: {self.iso(t)} is before the clock ({self.iso(s.now)});"
                                   " use back or goto to go back")
        elif "." in arg:
            name = self._event_name(arg)
            target = lambda r: event_matches(name, str(r["event"]))  # noqa: E731
        else:
            words = [*EMAIL_STATUSES, *OUTCOME_WORDS, "end", *EVENT_NAMES]
            raise CommandError(f"until: {arg!r} is not a time (+2h, ISO), event, status or outcome"
                               f"{did_you_mean(arg, words, cutoff=0.5)}")
        if t is not None:
            rec = s.until_time(t, stop=(lambda r: self._hit(r) is not None) if bp is not None else None)
            reply = self._moved(Reply(), before, self._hit(rec) if rec is not None else None)
            return reply
        if target is None:  # until end
            rec = None
            if bp is not None:
                rec = s.until(lambda r: bp(r) is not None)
            else:
                s.next(10**12)
            if rec is None:
                s.until_time(s.eng.finish())  # the clock shows the run's end, as mailsim run reports it
            return self._moved(Reply(), before, self._hit(rec) if rec is not None else None)
        goal = target

        def stop(r: Record) -> bool:
            return goal(r) or (bp is not None and bp(r) is not None)

        rec = s.until(stop)
        reply = Reply()
        if rec is None:
            reply.add(f"not reached: {arg} — the run ended", "yellow")
            return self._moved(reply, before)
        hit = None if goal(rec) else self._hit(rec)
        if hit is None:
            reply.add(f"reached {arg}: {self.record_line(rec)}", "bold")
        return self._moved(reply, before, hit)

    # -- breakpoints ----------------------------------------------------------------------------------
    def cmd_break(self, arg: str) -> Reply:
        words = arg.split(None, 2)
        reply = Reply()
        if not words or words[0] in ("list", "ls"):
            if not self.breaks:
                return reply.add("no breakpoints (break on invoice INV | reason CODE | event NAME | status S)")
            for i, b in enumerate(self.breaks, 1):
                reply.add(f"{i}. {b}")
            return reply
        if words[0] in ("clear", "delete", "del"):
            if len(words) == 1:
                n = len(self.breaks)
                self.breaks.clear()
                return reply.add(f"cleared {n} breakpoint{'s' if n != 1 else ''}")
            try:
                i = int(words[1])
                b = self.breaks.pop(i - 1)
            except (ValueError, IndexError):
                raise CommandError(f"break clear: no breakpoint {words[1]!r} (break list shows them)") from None
            return reply.add(f"cleared breakpoint {i} ({b})")
        rest = arg.split(None, 1)[1] if words[0] == "on" and len(words) > 1 else "" if words[0] == "on" else arg
        kind, _, value = rest.partition(" ")
        kind, value = kind.lower(), value.strip()
        if not value:
            raise CommandError("break on invoice INV | reason CODE | event NAME | status S")
        if kind == "invoice":
            if self.sess.eng.locate(value) is None:
                raise CommandError(f"no invoice {value!r}{self._invoice_hint(value)}")
        elif kind == "reason":
            if value not in REASON_CODES:
                raise CommandError(f"unknown reason code {value!r}{did_you_mean(value, REASON_CODES, cutoff=0.5)}")
        elif kind == "event":
            value = self._event_name(value)
        elif kind == "status":
            st = parse_status(value)
            if st is None:
                raise CommandError(f"unknown status {value!r}; statuses: {', '.join(EMAIL_STATUSES)};"
                                   f" outcomes: {', '.join(OUTCOME_WORDS)}")
            value = st
        else:
            raise CommandError(f"break on {kind!r}?{did_you_mean(kind, ('invoice', 'reason', 'event', 'status'))}"
                               " use: break on invoice INV | reason CODE | event NAME | status S")
        b = Break(kind, value)
        if b not in self.breaks:
            self.breaks.append(b)
        return reply.add(f"breakpoint {self.breaks.index(b) + 1}: {b}")

    # -- looking --------------------------------------------------------------------------------------
    def _invoice_hint(self, word: str) -> str:
        return did_you_mean(word, self.sess.eng.invoice_index(), cutoff=0.5)

    def cmd_show(self, arg: str) -> Reply:
        what, _, x = arg.partition(" ")
        what, x = what.lower(), x.strip()
        kinds = ("invoice", "user", "queue", "mailbox", "events", "state", "breaks")
        if not what or what == "state":
            return Reply(state=True)
        if what not in kinds and what.rstrip("s") in kinds:
            what = what.rstrip("s")
        if what == "invoice":
            return self.show_invoice(x)
        if what == "user":
            return self.show_user(x)
        if what == "queue":
            return self.show_queue(x)
        if what == "mailbox":
            return self.show_mailbox(x)
        if what in ("events", "event"):
            return self.show_events(x)
        if what == "breaks":
            return self.cmd_break("list")
        raise CommandError(f"show {what!r}?{did_you_mean(what, kinds)} use: show invoice|user|queue|mailbox X")

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
        eng = self.sess.eng
        if not uid:
            raise CommandError(f"show user needs a user id: {', '.join(list(eng.users)[:8])}")
        u = eng.users.get(uid)
        if u is None:
            by_mail = [x for x in eng.users.values() if x.email.lower() == uid.lower()]
            if not by_mail:
                raise CommandError(f"no user {uid!r}{did_you_mean(uid, eng.users, cutoff=0.5)}")
            u = by_mail[0]
        r = Reply().add(Text(f"{u.id}  {u.email}" + ("" if u.active else "  (inactive)"), style="bold"))
        st = eng.sync.get(u.id)
        life = eng.settings.token_lifetime
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
        for g in eng.groups.values():
            d = g.decision
            if d is not None and d.user == u.id:
                r.add(f"  sends for {g.key or '(no branch)'}: {len(g.queue)} in queue")
        logins = eng.login_log.get(u.id, [])
        if logins:
            r.add("  logins this run: " + ", ".join(f"{self.short(t)}{'' if ok else ' (too late)'}"
                                                    for t, ok in logins[-5:]))
        return r

    def show_queue(self, key: str) -> Reply:
        eng = self.sess.eng
        groups = [g for g in eng.groups.values() if not key or g.key == key or key in g.branch_ids]
        if key and not groups:
            raise CommandError(f"no queue group {key!r}{did_you_mean(key, eng.groups, cutoff=0.5)}")
        r = Reply().add(f"queue: poll every {format_duration(eng.settings.queue_poll)}, stuck after"
                        f" {format_duration(eng.settings.stuck_after)}; {eng.queued} email(s) waiting")
        for g in groups:
            d = g.decision
            r.add(Text(f"{g.key or '(no branch)'}: {len(g.queue)} in queue", style="bold"))
            if d is not None:
                r.add(f"  sender {d.address or '(none)'} from {d.source}; user {d.user or '-'}; path {d.path}"
                      + (f" ({d.provider})" if d.provider else ""))
                if d.reason:
                    r.add(f"  blocked: {d.reason} — {d.evidence}", "red")
            if g.queue:
                oldest = g.queue[0].queued_at or 0
                stuck = sum(1 for e in g.queue if e.stuck_at is not None)
                r.add(f"  oldest queued {self.short(oldest)} ({format_duration(self.sess.now - oldest)} ago);"
                      f" stuck {stuck}")
                ids = [e.invoice for e in g.queue[:10]]
                r.add("  " + " ".join(ids) + (f" … {len(g.queue) - 10} more" if len(g.queue) > 10 else ""))
        return r

    def show_mailbox(self, addr: str) -> Reply:
        store = self.sess.eng.store
        if not addr:
            boxes = sorted(store.boxes)
            if not boxes:
                return Reply().add("no mail stored yet")
            r = Reply()
            for a in boxes:
                box = store.boxes[a]
                r.add(f"{a}: inbox {box.inbox} · junk {box.junk} · bounces {box.bounces}")
            return r
        b = store.boxes.get(addr.strip().lower())
        if b is None:
            known = [*store.boxes, *(u.email.lower() for u in self.sess.eng.users.values())]
            hint = did_you_mean(addr, known, cutoff=0.5)
            return Reply(error=bool(hint)).add(f"{addr}: nothing stored yet{hint}")
        r = Reply().add(Text(f"{addr}: inbox {b.inbox} · junk {b.junk} · bounces {b.bounces}", style="bold"))
        for mid, folder, t in b.messages[-10:]:
            r.add(f"  {self.short(t)} {folder:<6} {mid}")
        if len(b.messages) > 10:
            r.add(f"  … {len(b.messages) - 10} earlier")
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

    def cmd_why(self, arg: str) -> Reply:
        from simulator.explain.explain import explain_run

        inv = arg.strip()
        if not inv:
            raise CommandError("why needs an invoice id, e.g. why INV-1004")
        if self.sess.eng.locate(inv) is None:
            raise CommandError(f"no invoice {inv!r}{self._invoice_hint(inv)}")
        exps = explain_run(self.sess.result(), invoice=inv)
        r = Reply()
        for x in exps:
            head = Text(f"{x.invoice}  ", style="bold")
            headline = x.headline
            if headline.endswith("— None"):  # queued, not polled yet: no reason exists yet
                headline = headline[:-4] + "waiting for the next queue poll (no blocking reason yet)"
            head.append(headline, style=STATUS_STYLE.get(x.status, ""))
            r.add(head)
            for c in x.chain:
                r.add(f"  • {c}")
            for w in x.warnings:
                r.add(f"  ! {w}", "yellow")
            r.add(f"  guide: {x.guide_steps}", "cyan")
            if x.fix:
                r.add(f"  fix: {x.fix}")
        return r

    def cmd_help(self, arg: str) -> Reply:
        r = Reply()
        for line in HELP.splitlines():
            r.add(line)
        return r

    def cmd_quit(self, arg: str) -> Reply:
        return Reply(quit=True)

    # -- what-if --------------------------------------------------------------------------------------
    def parse_event(self, text: str) -> tuple[Event, str]:
        """``resync: nora`` → the Event (validated by the scenario loader) and its flow-YAML text."""
        from ruamel.yaml.error import YAMLError

        y = _yaml()
        try:
            doc = y.load(text)
        except YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CommandError(f"inject: not YAML ({problem}); e.g. inject resync: nora") from None
        example = "e.g. inject resync: nora, inject dns_set: {name: x.example, type: TXT, value: \"v=spf1 -all\"}"
        if not isinstance(doc, dict) or len(doc) != 1:
            raise CommandError(f"inject takes one timeline event without at: — {example}")
        kind = str(next(iter(doc)))
        if kind == "at":
            raise CommandError("inject applies the event now: leave out at:")
        if kind not in EVENT_KINDS:
            raise CommandError(f"inject: unknown event {kind!r}{did_you_mean(kind, EVENT_KINDS, cutoff=0.5)};"
                               f" events: {', '.join(EVENT_KINDS)}")
        entry = f"{{at: +0s, {kind}: {_flow(doc[kind])}}}"
        # validate through the scenario loader itself: the same ids, hints and messages as a file
        full = y.load(self.text)
        full["timeline"] = y.load(f"[{entry}]")
        full["expect"] = []
        try:
            scn = load_scenario_text(_dump(y, full), "inject")
        except ScenarioError as exc:
            msg = re.sub(r"\btimeline\[0\]\.?", "", exc.message).replace(" in  (an event)", "").strip(" :")
            raise CommandError(f"inject: {msg}") from None
        return scn.timeline[0], f"{kind}: {_flow(doc[kind])}"

    def cmd_inject(self, arg: str) -> Reply:
        if not arg:
            raise CommandError("inject needs an event, e.g. inject resync: nora (help lists the forms)")
        ev, text = self.parse_event(arg)
        s = self.sess
        before = s.cursor
        t0 = s.now
        s.until_time(s.now)  # finish this instant: the injection comes after everything scheduled now
        t = s.now + 1
        for _ in range(100_000):
            nxt = s.upcoming_time()
            if nxt is None or nxt > t:
                break
            s.until_time(t)
            t = s.now + 1
        finished = s.cursor - before
        inj = s.inject(ev, at=t)
        self.inject_text[inj] = text
        r = Reply()
        if finished:
            r.add(f"finished {self.short(t0)} first ({finished} more event{'s' if finished != 1 else ''})")
        r.add(f"injected {text} at {self.iso(inj.at)} ({format_offset(inj.at)}); back {s.cursor - inj.position}"
              " undoes it", "bold")
        for rec in s.records[inj.position:s.cursor]:
            r.add("  " + self.record_line(rec))
        r.state = True
        return r

    # -- save -----------------------------------------------------------------------------------------
    def cmd_save(self, arg: str) -> Reply:
        if not arg:
            raise CommandError("save needs a file name, e.g. save what-if.yaml")
        try:
            parts = shlex.split(arg)
        except ValueError:
            parts = [arg]
        out = Path(parts[0] if len(parts) == 1 else arg).expanduser()
        if out.resolve() == self.path.resolve():
            raise CommandError("save: that is the scenario being stepped; choose another file name")
        s = self.sess
        before = s.cursor
        s.until_time(s.now)  # a scenario's until includes everything scheduled at that time
        text, n_expect = self.scenario_text()
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"save: cannot write {out}: {exc.strerror or exc}") from None
        r = Reply(state=s.cursor != before)
        if s.cursor != before:
            r.add(f"finished {self.short(s.now)} first ({s.cursor - before} more events)")
        r.add(f"saved {out}: until {format_offset(s.now)}, {len(s.injections)} injected event"
              f"{'s' if len(s.injections) != 1 else ''}, {n_expect} expectations", "bold")
        # check the claim: the file must reproduce this state (mailsim run exits 0)
        try:
            res = simulate(load_scenario(out))
        except ScenarioError as exc:
            return r.add(f"warning: the saved file does not load: {exc}", "red")
        bad = [x for x in res.expectations if not x.ok]
        if bad:
            r.error = True
            r.add(f"warning: {len(bad)} of {len(res.expectations)} expectations fail when it runs;"
                  f" first: {bad[0].text} — {bad[0].detail}", "red")
        else:
            r.add(f"checked: mailsim run {out} → {len(res.expectations)}/{len(res.expectations)} hold", "green")
        return r

    def pins(self) -> list[str]:
        """``expect:`` entries (flow YAML) pinning what every invoice and recipient shows now."""
        res = self.sess.result()
        out: list[str] = []
        status_n: Counter[str] = Counter()
        outcome_n: Counter[str] = Counter()
        total = 0
        for v in res.invoices():
            total += 1
            status_n[v.email_status] += 1
            for rc in v.recipients:
                outcome_n[rc.outcome] += 1
            if total > PIN_INVOICES:
                continue
            reason = f", reason: {v.reason}" if v.reason in REASON_CODES else ""
            out.append(f"{{invoice: {_flow(v.id)}, email_status: {_flow(v.email_status)}{reason}}}")
            for rc in v.recipients:
                why = f", reason: {rc.reason}" if rc.reason in REASON_CODES else ""
                out.append(f"{{invoice: {_flow(v.id)}, recipient: {json.dumps(rc.email)}, outcome: {rc.outcome}{why}}}")
        for st in EMAIL_STATUSES:
            out.append(f"{{count: {{email_status: {_flow(st)}}}, equals: {status_n[st]}}}")
        for oc in RECIPIENT_OUTCOMES:
            if outcome_n[oc]:
                out.append(f"{{count: {{outcome: {oc}}}, equals: {outcome_n[oc]}}}")
        for i, (addr, box) in enumerate(res.mailboxes().items()):
            if i >= PIN_MAILBOXES:
                break
            out.append(f"{{mailbox: {json.dumps(addr)}, inbox: {box['inbox']}, junk: {box['junk']},"
                       f" bounces: {box['bounces']}}}")
        return out

    def scenario_text(self) -> tuple[str, int]:
        """The original file with the injected events, ``until`` now and the pinned ``expect``.

        Edited as text when the file's top-level layout allows (every byte and comment of the rest
        stays as written); otherwise through ruamel.yaml's round-trip dumper (comments kept).
        """
        s = self.sess
        injected = [f"{{at: {format_offset(inj.at)}, {self.inject_text.get(inj) or self._event_text(inj.event)}}}"
                    for inj in s.injections]
        until = format_offset(s.now)
        pins = self.pins()
        header = (f"# saved by `mailsim step {self.path}` at {self.scn.iso(s.now)} (event #{s.cursor})\n"
                  f"# until = that moment; {len(injected)} what-if event(s) added to the timeline;\n"
                  "# expect pins every invoice's email status and each recipient's outcome then\n")
        header += "".join(f"#   injected: {e}\n" for e in injected)
        edit = ScenarioEdit(scalars=(("until", until),), lists=(ListEdit("timeline", append=tuple(injected)),
                                                                 ListEdit("expect", replace=tuple(pins))))
        body = apply_edit(self.text, edit, str(self.path))
        return header + body, len(pins)

    @staticmethod
    def _event_text(ev: Event) -> str:
        arg = ev.subject() if isinstance(ev, (CompleteBatch, UserEvent)) else ""
        return f"{ev.kind}: {_flow(arg)}"

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
        try:
            prio = int(s.eng.env._queue[0][1])  # SimPy exposes no public peek of the priority
            what = MODEL_PRIORITY.get(prio, "model step")
        except (AttributeError, IndexError, TypeError, ValueError):
            what = "model step"
        line.append(f"{what} at {self.short(t)} ({format_offset(t)})")
        applied = {id(ev) for ev, _ in s.eng.events_applied}
        for ev in sorted(self.scn.timeline, key=lambda e: (e.at, e.index)):
            if id(ev) not in applied:
                arg = ev.subject()
                line.append(f" · timeline {format_offset(ev.at)} {ev.kind} {arg}", style="dim")
                break
        return line

    def _invoice_rows(self) -> tuple[Counter[str], list[tuple[str, str, int, list[str]]]]:
        """Counts by email status, and (status, label, count, first ids) per status+reason group."""
        eng = self.sess.eng
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

        for b in self.scn.batches:
            es = eng.emails.get(b.id)
            if es is None:
                for inv, pid in b.iter_invoices():
                    st, reason = eng.prop_status[pid]
                    add(st, reason or "", inv)
                continue
            for e in es:
                if e.status == "Sent" and e.reason is None:
                    outs = sorted({r.outcome + (f" {r.reason}" if r.reason else "") for r in e.recipients})
                    label = ", ".join("in flight" if o == "none" else o for o in outs)
                elif e.status == "In Queue":
                    label = (e.reason or "awaiting the next poll") + (" · STUCK" if e.stuck_at is not None else "")
                else:
                    label = e.reason or ""
                add(e.status, label, e.invoice)
        order = {s: i for i, s in enumerate(EMAIL_STATUSES)}
        rows = sorted(((st, lab, g[0], g[1]) for (st, lab), g in groups.items()),
                      key=lambda x: (order.get(x[0], 9), -x[2], x[1]))
        return by_status, rows

    def render_state(self, rows: int | None = None) -> list[Text]:
        """The compact view: clock, next event, invoices, queue, senders, SMTP replies (fits 80×24)."""
        s, eng, w = self.sess, self.sess.eng, self.width
        budget = (rows if rows is not None else self.height - 5) - 6  # six lines: header, next, 4 titles
        by_status, inv_rows = self._invoice_rows()
        live = [g for g in eng.groups.values() if g.queue]
        replies: list[Record] = []
        for rec in reversed(s.records[max(0, s.cursor - 20_000):s.cursor]):
            if rec["event"] == "smtp.reply" or (rec["event"] == "email.delivered" and rec.get("code")):
                replies.append(rec)
                if len(replies) >= max(2, budget):
                    break
        caps = _allocate(budget, {"inv": len(inv_rows), "queue": len(live), "users": len(eng.users),
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
        stuck_after = eng.settings.stuck_after
        qt.append(f"{eng.queued} waiting" + (f" in {len(live)} groups" if len(live) > 1 else "")
                  + f" · poll {format_duration(eng.settings.queue_poll)}, stuck after {format_duration(stuck_after)}")
        out.append(qt)
        shown, more = self._cap(live, caps["queue"], "groups")
        for g in shown:
            age = s.now - (g.queue[0].queued_at or s.now)
            stuck = any(e.stuck_at is not None for e in g.queue) or age >= stuck_after
            row = Text(f"  {g.key or '-'}: {len(g.queue)} · oldest {format_duration(max(0, age))} ")
            if stuck:
                row.append("STUCK ", style="bold red")
            d = g.decision
            row.append(f"{g.reason or (d.reason if d else None) or 'awaiting poll'}"
                       + (f" · from {d.address}" if d is not None and d.address else ""), style="dim")
            out.append(row)
        if more is not None:
            out.append(more)
        # senders
        out.append(Text(f"Senders (token lifetime {format_duration(eng.settings.token_lifetime)})", style="bold"))
        sending = [d.user for g in live if (d := g.decision) is not None and d.user]
        order = {u: i for i, u in enumerate(dict.fromkeys(sending))}
        users = sorted(eng.users.values(), key=lambda u: (order.get(u.id, len(order)),
                                                           eng.sync.get(u.id) is None))
        shown, more = self._cap(users, caps["users"], "users")
        for u in shown:
            out.append(self._user_row(u.id))
        if more is not None:
            out.append(more)
        # SMTP replies
        bounces = [(a, b.bounces) for a, b in sorted(eng.store.boxes.items()) if b.bounces]
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
        eng, now = self.sess.eng, self.sess.now
        u = eng.users[uid]
        row = Text(f"  {u.id:<6} ", style="bold")
        row.append(f"{u.email:<30} ")
        if not u.active:
            row.append("inactive ", style="red")
        st = eng.sync.get(uid)
        if st is None:
            row.append("no sync (SMTP path)", style="dim")
            return row
        row.append(f"{st.provider} ")
        life = eng.settings.token_lifetime
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


_COMMANDS = ("next", "until", "back", "goto", "break", "show", "why", "inject", "save", "help", "quit")
_ALIASES = {"n": "next", "b": "back", "u": "until", "g": "goto", "q": "quit", "exit": "quit", "?": "help",
            "h": "help", "s": "show", "w": "why", "step": "next", "run": "until"}

