"""The commands of ``mailsim step``: moving, breakpoints, what-if injections, saving.

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

The vocabulary (replies, breakpoints, names) is in ``step_model.py``; the state view and the
``show`` details in ``step_view.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.text import Text

from simulator.domain.events import EVENT_KINDS, CompleteBatch, Event, UserEvent
from simulator.domain.vocabulary import EMAIL_STATUSES, REASON_CODES, RECIPIENT_OUTCOMES
from simulator.engine.run import simulate
from simulator.engine.session import Injection, Record, Session
from simulator.replay.step_model import (  # noqa: F401 - re-exported: the stepper's public names
    EVENT_NAMES,
    HELP,
    OUTCOME_WORDS,
    PIN_INVOICES,
    PIN_MAILBOXES,
    STATUS_STYLE,
    Break,
    CommandError,
    Reply,
    _allocate,
    event_matches,
    parse_status,
    status_reached,
)
from simulator.replay.step_view import StateView
from simulator.scenario.edit import ListEdit, ScenarioEdit, apply_edit
from simulator.scenario.edit import dump as _dump
from simulator.scenario.edit import flow as _flow
from simulator.scenario.edit import yaml_rt as _yaml
from simulator.scenario.errors import ScenarioError, TimeFormatError, did_you_mean
from simulator.scenario.loader import load_scenario, load_scenario_text
from simulator.scenario.model import Scenario
from simulator.scenario.times import format_offset, parse_duration, parse_time_required


class Stepper(StateView):
    """One stepping session over one scenario file."""

    def __init__(self, path: str | Path, *, width: int = 80, height: int = 24, seed: int | None = None) -> None:
        self.path = Path(path)
        self.text = self.path.read_text(encoding="utf-8-sig")
        loaded = load_scenario(self.path)
        self.scn: Scenario = loaded if seed is None else dataclasses.replace(loaded, seed=seed)
        self.sess = Session(self.scn)
        self.width = width
        self.height = height
        self.breaks: list[Break] = []
        self.inject_text: dict[Injection, str] = {}  # injection -> its event as one line of flow YAML
        self.seen: list[tuple[int, int, tuple[Injection, ...]]] = []  # (cursor, clock, injections) shown
        self.remember()

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
        for caption in s.captions_between(before, s.cursor) if n > 0 else ():
            reply.add(f"caption: {caption.text}", "bold yellow")  # the trainer's note: for this event
        if hit is not None and cur is not None:
            reply.add(f"stopped at breakpoint {self.breaks.index(hit) + 1} ({hit}): {self.record_line(cur)}",
                      "bold magenta")
        reply.state = True
        return reply

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
                s.until_time(s.end_time())  # the clock shows the run's end, as mailsim run reports it
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
            if self.sess.result().invoice_status(value) is None:
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
        return did_you_mean(word, self.sess.invoice_ids(), cutoff=0.5)

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

    def cmd_why(self, arg: str) -> Reply:
        from simulator.explain.explain import explain_run

        inv = arg.strip()
        if not inv:
            raise CommandError("why needs an invoice id, e.g. why INV-1004")
        if self.sess.result().invoice_status(inv) is None:
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


_COMMANDS = ("next", "until", "back", "goto", "break", "show", "why", "inject", "save", "help", "quit")
_ALIASES = {"n": "next", "b": "back", "u": "until", "g": "goto", "q": "quit", "exit": "quit", "?": "help",
            "h": "help", "s": "show", "w": "why", "step": "next", "run": "until"}
