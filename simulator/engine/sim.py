"""The SimPy model: timeline driver, queue worker, outgoing MTA, checkpoints.

A handful of long-lived processes and callback events, never one process per
email (DESIGN §7): the timeline process applies events at their times, the
queue worker polls on the ``queue_poll`` grid and decides each sender *group*
once per poll (cached until a setting, the DNS or the clock invalidates it),
and the MTA batches its retries by wake-up time. Event order at one instant is
fixed by priority: timeline, faults, poll, MTA, checkpoints — so "events at t
apply before the poll at t" and "the state at ``until`` includes everything
scheduled at ``until``" (DESIGN §8).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

import simpy
from simpy.events import Event as SimEvent
from simpy.events import EventPriority

from simulator.domain.entities import DAY, Branch, Contact, Organization, Property, Region, User
from simulator.domain.events import ChangePassword, Event, Login, RemoveSync, Resync, SetSync, SetTokenLifetime
from simulator.domain.pmap import flat
from simulator.domain.recipients import RecipientPlan, billing_contact_warnings, draft_status, plan_recipients
from simulator.domain.sender import SenderDecision, SenderWorld, decide_sender
from simulator.domain.statuses import BatchStatus, EmailStatus
from simulator.domain.sync import SyncState, expires_at, initial_state
from simulator.domain.world import Applied, World
from simulator.domain.world import apply as apply_event
from simulator.engine.emails import EmailDirectory, PropSlot, Tails, build_emails
from simulator.engine.mta import Mta, MtaSettings
from simulator.engine.state import (
    Email,
    Group,
    Origin,
    Rcpt,
    RcptSet,
    Send,
    Slot,
)
from simulator.net.dnsview import DnsView
from simulator.net.receiver import MailStore, ReceivingServer
from simulator.net.zone import Zone
from simulator.scenario.model import Scenario
from simulator.trace.writer import TraceWriter
from simulator.transport.base import EnginePort, Transport
from simulator.transport.memory import MemoryTransport

TransportFactory = Callable[[EnginePort], Transport]
MAX_DEFAULT_RUN = 30 * DAY
_SENT = EmailStatus.SENT.value  # a plain string for the per-email loops
# the events that write the user's sync history (explanations read it)
_SYNC_LOGGED = (Resync, SetSync, ChangePassword, RemoveSync)


def _no_emit(t: int, event: str, fields: dict[str, Any]) -> None:
    """``Engine.emit`` when not tracing."""


def _merge_notes(memo: dict[tuple[str, ...], tuple[str, ...]], notes: tuple[str, ...],
                 extra: tuple[str, ...]) -> tuple[str, ...]:
    """``notes`` plus ``extra`` without repeats; the emails of one poll share a handful of note sets."""
    hit = memo.get(notes)
    if hit is None:
        hit = memo[notes] = tuple(dict.fromkeys(notes + extra))
    return hit


class Engine:
    """The SimPy model of one run: schedules the timeline, polls, retries and expiries; the rules live in the domain."""

    # ClassVar: class constants in the compiled engine too (there, an unmarked one is an instance attribute)
    PRIO_TIMELINE: ClassVar[int] = 0
    PRIO_FAULT: ClassVar[int] = 1
    PRIO_POLL: ClassVar[int] = 2
    PRIO_MTA: ClassVar[int] = 3
    PRIO_MARK: ClassVar[int] = 4
    PRIO_CHECK: ClassVar[int] = 5

    def __init__(
        self,
        scn: Scenario,
        *,
        trace: TraceWriter | None = None,
        transport: TransportFactory | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.scn = scn
        self.settings = scn.settings
        self.env = simpy.Environment()
        self.trace = trace
        self.tracing = trace is not None
        # the trace writer's own ``emit`` when tracing (one call less per event), else a no-op; an attribute,
        # not a method replaced on the instance: the compiled engine's classes have no per-instance methods
        self.emit: Callable[[int, str, dict[str, Any]], None] = trace.emit if trace is not None else _no_emit
        self.progress = progress
        # -- the world: replaced by the domain's apply, never mutated here --
        self.world = World(
            start=scn.start,
            token_lifetime=scn.settings.token_lifetime,
            organization=scn.organization,
            branches={b.id: b for b in scn.organization.branches},
            regions={r.id: r for r in scn.organization.regions},
            users={u.id: u for u in scn.users},
            sync={u.id: (initial_state(u.sync) if u.sync else None) for u in scn.users},
            contacts={c.id: c for c in scn.contacts},
            properties={p.id: p for p in scn.properties},
            batch_status={b.id: BatchStatus.DRAFT.value for b in scn.batches},
        )
        self._providers = {p.name: p for p in scn.providers}
        self.initial_world = self.world  # the run's view replays events_applied from it (world_at)
        self._expiry_traced: dict[str, tuple[int, int]] = {}  # user -> (refresh, expiry) last traced
        self.version = 0  # bumped on every change that can alter a sender decision
        # batch id -> its emails, in invoice order; the directory finds invoices and emails by id
        self.directory = EmailDirectory(scn.batches)
        self.tails = Tails()  # the compact batches' Message-ID tails and invoice numbers (emails.Tails)
        self.emails: dict[str, list[Email]] = self.directory.emails
        self.locate = self.directory.locate
        self.email_of = self.directory.email_of
        self.iter_invoices = self.directory.iter_invoices
        self.invoice_of_message = self.directory.invoice_of_message
        self.invoice_index = self.directory.invoice_index
        self.zone = Zone.from_scenario(scn)
        self.dns = DnsView(self.zone, scn.faults, scn.seed)
        self.store = MailStore()
        self.receiver = ReceivingServer(scn.mailboxes, scn.faults, scn.seed, self.dns.spf, self.store)
        if transport is None:
            self.transport: Transport = MemoryTransport(
                self.receiver, state_key=lambda: (self.zone.version, self.dns.epoch()))
        else:
            self.transport = transport(EnginePort(scn, self.zone, self.store, self.invoice_of_message,
                                                  lambda: self.dns.now))
            # a transport that serves DNS itself: the engine asks its own questions the same way
            self.dns = self.transport.dns or self.dns
            self.receiver = self.transport.receiver or self.receiver
        self.mta = Mta(self, self.transport, MtaSettings(scn.settings.retry_schedule,
                                                         scn.settings.max_queue_lifetime, scn.platform.helo))
        # -- emails and the queue --
        self.groups: dict[str, Group] = {}
        self.queued = 0  # emails In Queue; with these two, every completed batch's email by status
        self.sent_count = 0
        self.na_count = 0
        self.total_invoices = sum(b.count for b in scn.batches)
        self._wake: SimEvent | None = None
        self._last_poll = -1
        # draft status per property (every Draft invoice of a property shares it)
        self.prop_plans: dict[str, tuple[RecipientPlan, ...]] = {}
        self.prop_status: dict[str, tuple[str, str]] = {}
        self.timeline_done = not scn.timeline
        self.events_applied: list[tuple[Event, str | None]] = []  # (event, refusal reason)
        self.login_log: dict[str, list[tuple[int, bool]]] = {u.id: [] for u in scn.users}
        self.sync_log: dict[str, list[tuple[int, str]]] = {u.id: [] for u in scn.users}
        # invoices named by ``never`` expectations: every state they pass through is recorded
        self.watch: dict[tuple[str, str | None], set[str]] = {}  # (invoice, recipient) -> states seen
        self.watcher: Callable[[], None] | None = None  # records ``watch`` after each model step
        self.batches = self.directory.batches

    # -- the world, by the names the engine's readers use (read-only views of ``self.world``) --
    @property
    def org(self) -> Organization:
        return self.world.organization

    @property
    def branches(self) -> Mapping[str, Branch]:
        return self.world.branches

    @property
    def regions(self) -> Mapping[str, Region]:
        return self.world.regions

    @property
    def users(self) -> Mapping[str, User]:
        return self.world.users

    @property
    def sync(self) -> Mapping[str, SyncState | None]:
        return self.world.sync

    @property
    def contacts(self) -> Mapping[str, Contact]:
        return self.world.contacts

    @property
    def properties(self) -> Mapping[str, Property]:
        return self.world.properties

    @property
    def batch_status(self) -> Mapping[str, str]:
        """The world's batch statuses as one plain dict: the outputs look one up per invoice."""
        return flat(self.world.batch_status)

    # -- plumbing ----------------------------------------------------------------------------
    def _at(self, delay: int, prio: int) -> SimEvent:
        ev = SimEvent(self.env)
        ev._ok = True
        ev._value = None
        self.env.schedule(ev, EventPriority(prio), delay)
        return ev

    def call_at(self, t: int, prio: int, fn: Callable[[], None]) -> None:
        ev = self._at(max(0, t - int(self.env.now)), prio)
        ev.callbacks.append(lambda _e: fn())

    @property
    def now(self) -> int:
        return int(self.env.now)

    # -- draft statuses ----------------------------------------------------------------------
    def _roles(self) -> tuple[str, ...]:
        return self.org.configuration.invoice_recipients

    def _refresh_property(self, pid: str, t: int) -> None:
        plans = plan_recipients(self.properties[pid], self.contacts, self._roles())
        self.prop_plans[pid] = plans
        status, reason = draft_status(plans)
        old = self.prop_status.get(pid)
        self.prop_status[pid] = (str(status), reason)
        if self.tracing and old is not None and old[0] != status:
            statuses = self.world.batch_status  # not flattened: this runs between completions
            for bid, b in self.batches.items():
                if statuses[bid] != BatchStatus.DRAFT:
                    continue
                for inv in b.invoices_of(pid):  # not every invoice of the batch: only this property's
                    self.emit(t, "invoice.status", {"invoice": inv, "batch": bid, "email_status": status,
                                                    "reason": reason})

    # -- the processes -----------------------------------------------------------------------
    def _timeline(self) -> Generator[SimEvent, Any, None]:
        for ev in sorted(self.scn.timeline, key=lambda e: (e.at, e.index)):
            if ev.at > self.now:
                yield self._at(ev.at - self.now, self.PRIO_TIMELINE)
            self.apply(ev)
        self.timeline_done = True

    def _worker(self) -> Generator[SimEvent, Any, None]:
        poll_every = self.settings.queue_poll
        while True:
            if self.queued == 0:
                self._wake = SimEvent(self.env)
                yield self._wake
                self._wake = None
            now = self.now
            nxt = -(-now // poll_every) * poll_every
            if nxt <= self._last_poll:
                nxt = self._last_poll + poll_every
            yield self._at(nxt - now, self.PRIO_POLL)
            self._last_poll = self.now
            self.poll(self.now)

    # -- timeline events ---------------------------------------------------------------------
    def apply(self, ev: Event) -> None:
        """Apply a timeline event through the domain's one rule (``world.apply``), then reschedule."""
        t = self.now if ev.at < 0 else ev.at
        before = self.world
        done = apply_event(before, ev)
        self.world = done.world
        if isinstance(ev, Login):
            self.login_log[ev.user].append((ev.at, bool(done.refreshed)))
        elif isinstance(ev, _SYNC_LOGGED) and done.refused is None:
            self.sync_log[ev.user].append((ev.at, ev.kind))
        for uid in done.expiry_users:
            self._schedule_expiry(uid)
        if done.dns is not None:
            if done.dns.value is None:
                self.zone.delete(done.dns.name, done.dns.type)
            else:
                self.zone.set(done.dns.name, done.dns.type, done.dns.value)
        for name, fields in done.records:
            self.emit(t, name, fields)
        if isinstance(ev, SetTokenLifetime):
            self._expire_now(t, done, before.token_lifetime)
        if done.sender_changed:
            self.version += 1
        if done.completes is not None:
            self.complete_batch(done.completes, t)
        for pid in done.properties:
            self._refresh_property(pid, t)
        self.events_applied.append((ev, done.refused))

    def _expire_now(self, t: int, done: Applied, previous_lifetime: int) -> None:
        """A shorter lifetime can kill tokens at once: their expiry is traced now, not in the past."""
        for uid in done.expiry_users:
            st = self.world.sync.get(uid)
            if st is not None and expires_at(st, self.world.token_lifetime) <= t < expires_at(st, previous_lifetime):
                self._trace_expiry(uid, st, t)

    def _trace_expiry(self, uid: str, st: SyncState, t: int) -> None:
        exp = expires_at(st, self.world.token_lifetime)
        if self._expiry_traced.get(uid) == (st.refreshed, exp):
            return  # §8: once per expiry (a login at the expiry instant must not trace it twice)
        self._expiry_traced[uid] = (st.refreshed, exp)
        if self.tracing:  # the fields cost a time formatting: only for a trace
            self.emit(t, "sync.expired", {"user": uid, "refreshed": self.scn.iso(st.refreshed),
                                          "refreshed_by": st.refreshed_by})

    def _schedule_expiry(self, uid: str) -> None:
        """A trace marker when a token dies; stale markers (refreshed or lifetime changed since) stay silent."""
        st = self.world.sync.get(uid)
        if st is None or not st.supported:
            return
        exp = expires_at(st, self.world.token_lifetime)
        if exp < self.now or exp > self._horizon:
            return

        def fire() -> None:
            # still the same token dying now: not refreshed since, and its expiry not moved by a new
            # lifetime (set_token_lifetime changes the World, not the sync state: identity is no proof)
            cur = self.world.sync.get(uid)
            if cur is not None and cur.refreshed == st.refreshed and expires_at(cur, self.world.token_lifetime) == exp:
                self.version += 1
                self._trace_expiry(uid, st, exp)

        self.call_at(exp, self.PRIO_FAULT, fire)

    # -- batch completion --------------------------------------------------------------------
    def complete_batch(self, bid: str, t: int) -> None:
        """Generate the batch's emails (the domain has marked it Sent): recipients are fixed now (§8)."""
        b = self.batches[bid]
        branch_ids = tuple(sorted({self.properties[p].branch for p in b.property_ids()}))
        key = "|".join(branch_ids)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, branch_ids)
        tracing = self.tracing
        self.emit(t, "batch.completed", {"batch": bid, "invoices": b.count, "branches": list(branch_ids)})
        # per property: the recipients are fixed now (§8); one plan tuple and one recipient set per
        # property, shared copy-on-write by its emails (see RcptSet)
        per_prop: dict[str, PropSlot] = {}
        for pid in b.property_ids():
            plans = self.prop_plans[pid]
            draft, why = draft_status(plans)
            warn: tuple[str, ...] = (("billing-contact-not-emailed",)
                                     if billing_contact_warnings(self.properties[pid], self._roles()) else ())
            rs = RcptSet((Rcpt(p, t) for p in plans), 0)
            if draft == EmailStatus.NA:
                per_prop[pid] = (Origin(bid, pid, t, None, plans, None), EmailStatus.NA.value, why, warn, rs)
            else:
                per_prop[pid] = (Origin(bid, pid, t, t, plans, group), EmailStatus.IN_QUEUE.value, None, warn, rs)
        emails, slots = build_emails(b, per_prop, self.tails)
        if tracing:
            for e in emails:
                self.emit(t, "invoice.status", {"invoice": e.invoice, "batch": bid, "email_status": e.status,
                                                "reason": e.reason})
        n_queued = sum(len(members) for _, _, members in slots)
        if n_queued == len(emails):
            group.queue.extend(emails)
        elif n_queued:
            group.queue.extend(e for e in emails if e.group is not None)
        group.slots.extend(slots)
        self.emails[bid] = emails
        self.queued += n_queued
        self.na_count += len(emails) - n_queued
        if n_queued and self._wake is not None and not self._wake.triggered:
            self._wake._ok = True
            self._wake._value = None
            self.env.schedule(self._wake, EventPriority(self.PRIO_TIMELINE), 0)

    # -- the queue worker --------------------------------------------------------------------
    def decide(self, group: Group, now: int) -> SenderDecision:
        self.dns.now = now  # the DNS fault epoch is part of the key: it must be read at this instant
        key = (self.version, self.zone.version, self.dns.epoch())
        d = group.decision
        if d is not None and group.decision_key == key and (d.valid_until is None or now < d.valid_until):
            return d
        d = self._decide(group, now)
        group.decision, group.decision_key = d, key
        return d

    def _decide(self, group: Group, now: int) -> SenderDecision:
        world = self.world
        scn = self.scn
        view = SenderWorld(world.organization, world.branches, world.regions, world.users, world.sync,
                           world.token_lifetime, scn.platform, self._providers,
                           scn.settings.smtp_path_requires_spf)
        return decide_sender(view, group.branch_ids, now, lambda ip, sender, helo: self.dns.spf(now, ip, sender, helo))

    def poll(self, now: int) -> None:
        stuck_after = self.settings.stuck_after
        tracing = self.tracing
        for group in self.groups.values():
            q = group.queue
            if not q:
                continue
            d = self.decide(group, now)
            if d.reason is None:
                self._send_group(group, d, now)
                continue
            if group.reason != d.reason:
                group.reason = d.reason
                group.history.append((now, d.reason, d.evidence))
                group.reason_applied = 0
            if group.reason_applied < len(q):
                merged: dict[tuple[str, ...], tuple[str, ...]] = {}
                for e in q[group.reason_applied:]:
                    e.reason = d.reason
                    if d.notes:
                        e.notes = _merge_notes(merged, e.notes, d.notes)
                    if tracing:
                        self.emit(now, "email.blocked", {"invoice": e.invoice, "reason": d.reason,
                                                         "sender": d.address, "evidence": d.evidence})
                group.reason_applied = len(q)
            i = group.stuck_upto
            while i < len(q) and q[i].queued_at is not None and now - (q[i].queued_at or 0) >= stuck_after:
                e = q[i]
                e.stuck_at = now
                if tracing:
                    self.emit(now, "email.stuck", {"invoice": e.invoice, "reason": e.reason,
                                                   "queued_at": self.scn.iso(e.queued_at or 0)})
                i += 1
            group.stuck_upto = i

    def _send_group(self, group: Group, d: SenderDecision, now: int) -> None:
        if group.reason is not None:
            group.history.append((now, None, f"sent by {d.address} via the {d.path} path"))
        q = group.queue
        slots = group.slots
        group.queue = []
        group.slots = []
        group.reason = None
        group.reason_applied = 0
        group.stuck_upto = 0
        self.queued -= len(q)
        self.sent_count += len(q)
        sends: dict[str, Send] = {}
        for ip in d.client_ips or (self.scn.platform.helo,):
            sends[ip] = Send(now, d.address, d.path, d.helo, ip, d.provider)
        if len(sends) > 1:
            self._send_each(q, d, now, sends)
            return
        # one client IP: a slot's emails share everything the send decides, so it is decided per slot
        send = next(iter(sends.values()))
        notes = d.notes
        merged_notes: dict[tuple[str, ...], tuple[str, ...]] = {}
        deliverable_plans: dict[int, bool] = {}
        cohorts: dict[int, list[Slot]] = {}
        for slot in slots:
            plans, _rs, members = slot
            key = id(plans)
            deliverable = deliverable_plans.get(key)
            if deliverable is None:
                deliverable = deliverable_plans[key] = any(p.skip_reason is None for p in plans)
            reason = None if deliverable else "no-deliverable-recipient"
            for e in members:
                e.status = _SENT
                e.send = send
                e.reason = reason
            if notes:
                for e in members:
                    e.notes = _merge_notes(merged_notes, e.notes, notes)
            if deliverable:
                c = cohorts.get(key)
                if c is None:
                    cohorts[key] = [slot]
                else:
                    c.append(slot)
        if self.tracing:
            ip = send.client_ip
            for e in q:
                self.emit(now, "email.sent", {"invoice": e.invoice, "sender": d.address, "path": d.path,
                                              "provider": d.provider, "client_ip": ip, "reason": e.reason})
        if cohorts:
            self.mta.submit_slots(cohorts.values(), d, now)

    def _send_each(self, q: list[Email], d: SenderDecision, now: int, sends: dict[str, Send]) -> None:
        """Several sending IPs: each email's client IP is drawn from its invoice id, so this goes per email."""
        tracing = self.tracing
        mta = self.mta
        deliverable_plans: dict[int, bool] = {}
        merged_notes: dict[tuple[str, ...], tuple[str, ...]] = {}
        out: list[Email] = []
        for e in q:
            e.status = _SENT
            e.send = sends[mta.client_ip(e, d)]
            if d.notes:
                e.notes = _merge_notes(merged_notes, e.notes, d.notes)
            key = id(e.plans)
            deliverable = deliverable_plans.get(key)
            if deliverable is None:
                deliverable = deliverable_plans[key] = any(p.skip_reason is None for p in e.plans)
            e.reason = None if deliverable else "no-deliverable-recipient"
            if tracing:
                self.emit(now, "email.sent", {"invoice": e.invoice, "sender": d.address, "path": d.path,
                                              "provider": d.provider, "client_ip": e.send.client_ip,
                                              "reason": e.reason})
            if deliverable:
                out.append(e)
        if out:
            mta.submit(out, d, now)

    # -- outcomes (called by the MTA) --------------------------------------------------------
    def on_bounced(self, email: Email, r: Rcpt, now: int, dsn_id: str) -> None:
        if self.tracing:
            self.emit(now, "email.bounced", {"invoice": email.invoice, "recipient": r.address,
                                             "reason": r.reason, "code": r.code, "enhanced": r.enhanced,
                                             "dsn": dsn_id, "dsn_to": email.sender})

    # -- running -----------------------------------------------------------------------------
    def _must_reach(self) -> int:
        ts = [e.at for e in self.scn.timeline] + [x.when for x in self.scn.expect if x.when is not None]
        return max([0, *ts])

    def busy(self) -> bool:
        return self.queued > 0 or self.mta.pending > 0 or not self.timeline_done

    def setup(self) -> None:
        scn = self.scn
        self._must = self._must_reach()
        self._horizon = scn.until if scn.until is not None else max(MAX_DEFAULT_RUN, self._must)
        for pid in self.properties:
            self._refresh_property(pid, 0)
        if self.tracing:
            for b in scn.batches:
                counts: dict[str, int] = {}
                for pid in b.property_ids():
                    st = self.prop_status[pid][0]
                    counts[st] = counts.get(st, 0) + b.count_for(pid)
                self.emit(0, "batch.draft", {"batch": b.id, "invoices": b.count, "email_status": counts})
        for uid in self.users:
            self._schedule_expiry(uid)
        for f in scn.faults:
            if f.kind == "slow" or f.at is not None or f.for_ is not None:
                start = f.at or 0
                self.call_at(max(0, start), self.PRIO_FAULT, self._marker(max(0, start), "fault.started", {
                    "fault": f.index, "kind": f.kind, "target": f.target, "stage": f.stage,
                    "probability": f.probability}))
                if f.for_ is not None and start + f.for_ <= self._horizon:
                    self.call_at(start + f.for_, self.PRIO_FAULT, self._marker(start + f.for_, "fault.ended", {
                        "fault": f.index, "kind": f.kind}))
        self.env.process(self._timeline())
        self.env.process(self._worker())
        if self.watch:
            self.observe()

    def _marker(self, t: int, event: str, fields: dict[str, Any]) -> Callable[[], None]:
        return lambda: self.emit(t, event, fields)

    def due(self, until: int | None = None) -> bool:
        """Is there an event the run should still process (before ``until``, if given)?"""
        t = self.env.peek()
        hard = self._horizon if until is None else min(until, self._horizon)
        if t == float("inf") or t > hard:
            return False
        return not (self.scn.until is None and until is None and t > self._must and not self.busy())

    def step(self) -> None:
        """Process one SimPy event (which may emit several trace events, or none)."""
        self.env.step()
        if self.watch:
            self.observe()

    def finish(self, until: int | None = None) -> int:
        """The virtual end time of a run stopped here (DESIGN §8: ``until`` is inclusive)."""
        if until is not None:
            self.end = min(until, self._horizon)
        elif self.scn.until is not None:
            self.end = self.scn.until
        else:
            self.end = min(self._horizon, max(int(self.env.now), self._must))
        return self.end

    def run(self, until: int | None = None) -> int:
        """Run to the end (or to ``until``, for stepping); returns the virtual end time."""
        if not hasattr(self, "_horizon"):
            self.setup()
        hard = self._horizon if until is None else min(until, self._horizon)
        last_report = -1
        progress = self.progress
        while self.due(until):
            self.step()
            if progress is not None and int(self.env.now) // 3600 != last_report:
                last_report = int(self.env.now) // 3600
                progress(int(self.env.now), hard)
        return self.finish(until)

    def observe(self) -> None:
        """Let the watcher (``never … until`` expectations, installed by ``engine.run``) record this instant."""
        if self.watcher is not None:
            self.watcher()
