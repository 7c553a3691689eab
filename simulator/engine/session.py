"""A run you can step through, rewind and branch: the engine behind ``step``, ``timeline`` and ``diff``.

Rewinding is exact because the model is deterministic: ``goto(k)`` re-runs the
scenario from the start (re-applying the what-if injections at the same points)
until the trace holds ``k`` events. The unit a person steps through is one
trace event; the model advances one SimPy event at a time, so when one SimPy
event emits many trace events (a poll sending a thousand emails) the state
shown is the state after that SimPy event, and the trace events are revealed
one by one. The timeline player steps by model step instead (``advance``).

Layers above the engine read a session only through its public members: the
records, ``result()``, ``world``/``initial_world``, ``applied_events()``,
``queues()``, ``captions`` and the moves; SimPy's internals are touched here
alone (``_move_clock``, ``upcoming_kind``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from simulator.domain.events import Event
from simulator.domain.world import World
from simulator.engine.records import SenderView, queue_view
from simulator.engine.result import RunResult
from simulator.engine.sim import Engine
from simulator.scenario.model import Scenario
from simulator.trace.writer import TraceWriter

Record = dict[str, Any]

#: What the model runs next, by the SimPy priority the engine schedules it with.
STEP_KINDS = {Engine.PRIO_TIMELINE: "timeline", Engine.PRIO_FAULT: "fault/token marker", Engine.PRIO_POLL: "queue poll",
              Engine.PRIO_MTA: "MTA delivery attempt", Engine.PRIO_MARK: "marker", Engine.PRIO_CHECK: "checkpoint"}


@dataclass(frozen=True, slots=True)
class Caption:
    """A trainer's ``note:`` reached by the run: shown from trace position ``position`` on.

    ``position`` is how many trace events existed before the step that reached it (the caption
    belongs to the events that step produced; -1: shown from the start, for a fault that is on
    all the run); ``source`` names the timeline event or fault.
    """

    position: int
    at: int
    text: str
    source: str


class _NullIO(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(b)


@dataclass(frozen=True, slots=True)
class Injection:
    """A what-if event applied when the model's trace held ``position`` events (at time ``at``).

    ``steps``: how many model (SimPy) steps had run when it was applied. A re-run applies it
    after exactly that many steps — not merely once the trace is as long again, which can be
    earlier when steps emit nothing — and moves an idle clock on to ``at`` first. ``None``
    (injections made without it) keeps the by-position rule.
    """

    position: int
    at: int
    event: Event
    steps: int | None = None


@dataclass(frozen=True, slots=True)
class WaitingQueue:
    """One queue of the worker as it stands now: the emails of one branch set waiting to be sent.

    ``key`` names it (the branch set, as ``show queue`` takes it); ``reason`` is what blocks it
    now (None: nothing, or not polled yet); ``decision`` the worker's latest sender decision;
    ``waiting``: (invoice, queued at, stuck) in queue order.
    """

    key: str
    branch_ids: tuple[str, ...]
    reason: str | None
    decision: SenderView | None
    waiting: tuple[tuple[str, int | None, bool], ...]


class Session:
    """One scenario's run, stepped on demand; ``goto`` re-runs it to go back (see the module's text)."""

    """A run that can be stepped, rewound and changed (what-if injections), for the stepper and the timeline."""

    def __init__(self, scn: Scenario, injections: tuple[Injection, ...] = ()) -> None:
        self.scn = scn
        self.records: list[Record] = []
        self.writer = TraceWriter(_NullIO(), scn, records=self.records)  # type: ignore[arg-type]
        self.eng = Engine(scn, trace=self.writer)
        #: the world before any timeline event (replaying ``domain.world.apply`` from here gives every later one)
        self.initial_world: World = self.eng.world
        self.eng.setup()
        #: captions reached so far, in order (faults on all the run have theirs at position -1)
        self.captions: list[Caption] = [
            Caption(-1, 0, f.note, f"fault #{f.index + 1}") for f in scn.faults
            if f.note and not (f.kind == "slow" or f.at is not None or f.for_ is not None)]
        self.injections: list[Injection] = list(injections)
        self._next_injection = 0
        self.steps = 0  # model (SimPy) steps run so far
        self.cursor = 0  # trace events revealed to the viewer (≤ len(records))
        self._apply_due_injections()

    # -- where we are ------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.eng.now

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.records) and not self.eng.due()

    def current(self) -> Record | None:
        return self.records[self.cursor - 1] if self.cursor else None

    def upcoming_time(self) -> int | None:
        """When the next SimPy event happens (None: the run is over)."""
        if not self.eng.due():
            return None
        return int(self.eng.env.peek())

    def result(self) -> RunResult:
        return RunResult(self.eng, self.eng.now)

    @property
    def world(self) -> World:
        """The world as it stands now (users, sync states, contacts, settings; read-only)."""
        return self.eng.world

    def applied_events(self) -> list[tuple[Event, str | None]]:
        """Every timeline event applied so far (injections included), in order, with its refusal code."""
        return list(self.eng.events_applied)

    def end_time(self) -> int:
        """When a run stopped now ends (the scenario's ``until``, else its natural end); see ``Engine.finish``."""
        return self.eng.finish()

    def queues(self) -> list[WaitingQueue]:
        """Every queue of the worker (those that ever held an email), in the engine's order."""
        out = []
        for group in self.eng.groups.values():
            out.append(WaitingQueue(group.key, group.branch_ids, group.reason, queue_view(group).decision,
                                    tuple((e.invoice, e.queued_at, e.stuck_at is not None) for e in group.queue)))
        return out

    def invoice_ids(self) -> list[str]:
        """The ids of the invoices listed one by one (compact batches' generated ids left out): for hints."""
        return list(self.eng.invoice_index())

    def upcoming_kind(self) -> str | None:
        """What the model runs next ("queue poll", "timeline", …); None when nothing is scheduled.

        SimPy has no public peek of the next event's priority: read its queue here, in one place
        inside the engine layer, so nothing above the engine touches SimPy's internals.
        """
        if not self.eng.due():
            return None
        try:
            prio = int(self.eng.env._queue[0][1])
        except (AttributeError, IndexError, TypeError, ValueError):
            return "model step"
        return STEP_KINDS.get(prio, "model step")

    # -- moving forward ------------------------------------------------------------------------
    def _apply_due_injections(self) -> None:
        while self._next_injection < len(self.injections):
            inj = self.injections[self._next_injection]
            if inj.steps is not None:
                if inj.steps > self.steps:
                    break
                if self.eng.env.now < inj.at:
                    self._move_clock(inj.at)  # the clock had been moved on (until_time / inject at)
            elif inj.position > len(self.records):
                break
            self.eng.apply(replace(inj.event, at=self.eng.now))
            self._next_injection += 1

    def _model_step(self) -> bool:
        if not self.eng.due():
            return False
        position, applied = len(self.records), len(self.eng.events_applied)
        self.eng.step()
        self.steps += 1
        self._note_captions(position, applied)
        self._apply_due_injections()
        return True

    def _note_captions(self, position: int, applied: int) -> None:
        """Record the ``note:`` of every timeline event applied and fault started by the last step."""
        for ev, _refused in self.eng.events_applied[applied:]:
            if ev.note:
                self.captions.append(Caption(position, self.eng.now, ev.note, f"{ev.kind} ({ev.loc or 'timeline'})"))
        for rec in self.records[position:]:
            if rec["event"] == "fault.started":
                fault = self.scn.faults[int(rec["fault"])]
                if fault.note:
                    self.captions.append(Caption(position, int(rec["t"]), fault.note, f"fault #{fault.index + 1}"))

    def captions_between(self, a: int, b: int) -> list[Caption]:
        """The captions first shown while the cursor moved from ``a`` to ``b`` revealed events (a < b)."""
        return [c for c in self.captions if a <= c.position < b]

    def caption_at(self, cursor: int) -> Caption | None:
        """The latest caption reached when ``cursor`` trace events have been revealed (it stays until the next)."""
        out = None
        for c in self.captions:
            if c.position < cursor:
                out = c
        return out

    def advance(self) -> bool:
        """Run the model one step and reveal every trace event it produced (False: the run is over).

        The unit of the timeline player: the state after each step is exact (a step may emit
        nothing, many events, or a whole poll's sends).
        """
        self.cursor = len(self.records)
        if not self._model_step():
            return False
        self.cursor = len(self.records)
        return True

    def next(self, n: int = 1) -> int:
        """Reveal up to ``n`` more trace events; returns how many were revealed."""
        moved = 0
        while moved < n:
            if self.cursor < len(self.records):
                self.cursor += 1
                moved += 1
                continue
            if not self._model_step():
                break
        return moved

    def until(self, pred: Callable[[Record], bool], limit: int = 10_000_000) -> Record | None:
        """Step until a revealed event satisfies ``pred`` (None: the run ended first)."""
        for _ in range(limit):
            if self.next(1) == 0:
                return None
            rec = self.records[self.cursor - 1]
            if pred(rec):
                return rec
        return None

    def until_time(self, t: int, stop: Callable[[Record], bool] | None = None) -> Record | None:
        """Advance the clock to ``t`` (everything scheduled at ``t`` included).

        With ``stop``: halt early on the first revealed event it accepts and return it.
        """
        while True:
            if self.cursor < len(self.records):
                if self.records[self.cursor]["t"] > t:
                    return None
                self.cursor += 1
                if stop is not None and stop(self.records[self.cursor - 1]):
                    return self.records[self.cursor - 1]
                continue
            if not self.eng.due(t):
                break
            self._model_step()
        if self.eng.env.now < t and self.eng.due():
            # nothing happened in between: the clock still moves to t
            self._move_clock(t)
        elif not self.eng.due():
            self._move_clock(max(self.eng.env.now, min(t, self.eng.finish())))
        return None

    def _move_clock(self, t: float) -> None:
        """Move an idle clock on to ``t``: SimPy has no public API for it, so it is done here alone."""
        self.eng.env._now = t

    # -- moving back (exact re-run) ------------------------------------------------------------
    def goto(self, seq: int) -> Session:
        """A session positioned at trace event ``seq`` (re-run from the start when going back)."""
        seq = max(0, seq)
        target: Session = self
        if seq < self.cursor:
            kept = tuple(i for i in self.injections if i.position < seq)  # its own trace event is position+1
            target = Session(self.scn, kept)
        target.next(seq - target.cursor)
        return target

    def back(self, n: int = 1) -> Session:
        return self.goto(self.cursor - n)

    # -- branching -----------------------------------------------------------------------------
    def inject(self, event: Event, at: int | None = None) -> Injection:
        """Apply a timeline event now. Later injections of an abandoned branch are dropped.

        ``at`` (optional, ≥ now): apply it at that time instead, moving an idle clock on; nothing
        may be scheduled before it (raises ValueError otherwise).
        """
        # reveal the rest of the current SimPy event first: injections sit on model boundaries
        self.cursor = len(self.records)
        if at is not None and at > self.eng.now:
            nxt = self.upcoming_time()
            if nxt is not None and nxt < at:
                raise ValueError(f"an event is scheduled at {nxt}, before {at}")
            self._move_clock(at)
        self.injections = [i for i in self.injections if i.position <= len(self.records)]
        inj = Injection(len(self.records), self.eng.now, replace(event, at=self.eng.now), self.steps)
        self.injections.append(inj)
        self._next_injection = len(self.injections)
        self.eng.apply(inj.event)
        self.cursor = len(self.records)
        return inj
