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

from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import Any

import simpy
from simpy.events import Event as SimEvent
from simpy.events import EventPriority

from simulator.domain.contacts import domain_of, find_duplicate
from simulator.domain.entities import DAY, Batch, User
from simulator.domain.events import Event
from simulator.domain.recipients import RecipientPlan, billing_contact_warnings, draft_status, plan_recipients
from simulator.domain.sender import find_sender_user, resolve_sender_address, sending_path, spf_gate_reason
from simulator.domain.statuses import EmailStatus
from simulator.domain.sync import SyncState, change_password, expires_at, initial_state, login, resync
from simulator.engine.mta import Mta, MtaSettings
from simulator.engine.state import (
    MESSAGE_ID_HEAD,
    MESSAGE_ID_TAIL,
    Email,
    Group,
    Origin,
    Rcpt,
    RcptSet,
    Send,
    SenderDecision,
    Slot,
    message_id_of,
)
from simulator.net.dnsview import DnsView
from simulator.net.receiver import MailStore, ReceivingServer
from simulator.net.zone import Zone
from simulator.scenario.model import Scenario
from simulator.trace.writer import TraceWriter
from simulator.transport.base import Transport
from simulator.transport.memory import MemoryTransport

TransportFactory = Callable[["Engine"], Transport]
MAX_DEFAULT_RUN = 30 * DAY
# what every email of one batch and property starts with: (origin, status, reason, notes, shared recipients)
PropSlot = tuple[Origin, str, str | None, tuple[str, ...], RcptSet]


def numbered_tails(n: int) -> list[str]:
    """``-0001@mailsim.invalid>`` … for 1…n, zero-padded to the width of ``n`` (``Batch.invoice_id``'s numbering).

    Joined from two-digit blocks: formatting each number (≈0.3 µs) made this table a
    visible part of a small run's fixed cost.
    """
    width = len(str(n))
    if width < 3:
        fmt = f"-%0{width}d{MESSAGE_ID_TAIL}"
        return [fmt % i for i in range(1, n + 1)]
    low = [f"{i:02d}{MESSAGE_ID_TAIL}" for i in range(100)]
    out: list[str] = []
    for hundreds in range(n // 100 + 1):
        high = f"-{hundreds:0{width - 2}d}"
        out += [high + x for x in low]
    return out[1:n + 1]


def _merge_notes(memo: dict[tuple[str, ...], tuple[str, ...]], notes: tuple[str, ...],
                 extra: tuple[str, ...]) -> tuple[str, ...]:
    """``notes`` plus ``extra`` without repeats; the emails of one poll share a handful of note sets."""
    hit = memo.get(notes)
    if hit is None:
        hit = memo[notes] = tuple(dict.fromkeys(notes + extra))
    return hit


class Engine:
    PRIO_TIMELINE = 0
    PRIO_FAULT = 1
    PRIO_POLL = 2
    PRIO_MTA = 3
    PRIO_MARK = 4
    PRIO_CHECK = 5

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
        if trace is not None:
            self.emit = trace.emit  # type: ignore[method-assign]
        self.progress = progress
        # -- the world (replaced, never mutated: domain functions see frozen data) --
        self.org = scn.organization
        self.branches = {b.id: b for b in scn.organization.branches}
        self.regions = {r.id: r for r in scn.organization.regions}
        self.users: dict[str, User] = {u.id: u for u in scn.users}
        self.sync: dict[str, SyncState | None] = {
            u.id: (initial_state(u.sync) if u.sync else None) for u in scn.users
        }
        self.contacts = {c.id: c for c in scn.contacts}
        self.properties = {p.id: p for p in scn.properties}
        self.version = 0  # bumped on every change that can alter a sender decision
        self.zone = Zone.from_scenario(scn)
        self.dns = DnsView(self.zone, scn.faults, scn.seed)
        self.store = MailStore()
        self.receiver = ReceivingServer(scn.mailboxes, scn.faults, scn.seed, self.dns.spf, self.store)
        self.transport: Transport = transport(self) if transport else MemoryTransport(
            self.receiver, state_key=lambda: (self.zone.version, self.dns.epoch()))
        self.mta = Mta(self, self.transport, MtaSettings(scn.settings.retry_schedule,
                                                         scn.settings.max_queue_lifetime, scn.platform.helo))
        # -- emails and the queue --
        self.batch_status: dict[str, str] = {b.id: "Draft" for b in scn.batches}
        self.emails: dict[str, list[Email]] = {}  # batch id -> its emails, in invoice order
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
        self._invoice_index: dict[str, tuple[Batch, int]] | None = None
        # invoices named by ``never`` expectations: every state they pass through is recorded
        self.watch: dict[tuple[str, str | None], set[str]] = {}  # (invoice, recipient) -> states seen
        self.batches = {b.id: b for b in scn.batches}
        self._id_tails: dict[int, list[str]] = {}  # compact batch size -> "-0001@mailsim.invalid>", …

    # -- plumbing ----------------------------------------------------------------------------
    def emit(self, t: int, event: str, fields: dict[str, Any]) -> None:
        """Replaced by the trace writer's own ``emit`` when tracing (one call less per event)."""
        return None

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
            for bid, b in self.batches.items():
                if self.batch_status[bid] != "Draft":
                    continue
                for inv, p in b.iter_invoices():
                    if p == pid:
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
        qp = self.settings.queue_poll
        while True:
            if self.queued == 0:
                self._wake = SimEvent(self.env)
                yield self._wake
                self._wake = None
            now = self.now
            nxt = -(-now // qp) * qp
            if nxt <= self._last_poll:
                nxt = self._last_poll + qp
            yield self._at(nxt - now, self.PRIO_POLL)
            self._last_poll = self.now
            self.poll(self.now)

    # -- timeline events ---------------------------------------------------------------------
    def apply(self, ev: Event) -> None:
        t = self.now if ev.at < 0 else ev.at
        k = ev.kind
        refused: str | None = None
        fields: dict[str, Any] = {"kind": k, "line": ev.loc}
        if k == "complete_batch":
            assert ev.batch is not None
            self.complete_batch(ev.batch, t)
        elif k in ("login", "resync", "change_password", "deactivate_user", "activate_user", "remove_sync",
                   "set_sync"):
            assert ev.user is not None
            uid = ev.user
            st = self.sync.get(uid)
            lifetime = self.settings.token_lifetime
            if k == "login":
                if st is None:
                    self.login_log[uid].append((ev.at, False))
                else:
                    st2, refreshed = login(st, ev.at, lifetime)
                    self.sync[uid] = st2
                    self.login_log[uid].append((ev.at, refreshed))
                    fields.update(refreshed=refreshed, expires=self.scn.iso(expires_at(st2, lifetime)))
                    self._schedule_expiry(uid)
                self.emit(t, "user.login", {"user": uid, **fields})
            elif k in ("resync", "set_sync"):
                self.sync[uid] = resync(st, ev.provider, ev.at)
                self.sync_log[uid].append((ev.at, k))
                self._schedule_expiry(uid)
                new = self.sync[uid]
                self.emit(t, "sync.resynced" if k == "resync" else "sync.set",
                          {"user": uid, "provider": new.provider if new else None})
            elif k == "change_password":
                if st is not None:
                    self.sync[uid] = change_password(st, ev.at)
                self.sync_log[uid].append((ev.at, k))
                self.emit(t, "user.password_changed", {"user": uid})
            elif k == "remove_sync":
                self.sync[uid] = None
                self.sync_log[uid].append((ev.at, k))
                self.emit(t, "sync.removed", {"user": uid})
            else:
                self.users[uid] = replace(self.users[uid], active=(k == "activate_user"))
                self.emit(t, "user.deactivated" if k == "deactivate_user" else "user.activated", {"user": uid})
            self.version += 1
        elif k == "set_contact_email":
            assert ev.contact is not None and ev.email is not None
            dup = find_duplicate(self.contacts.values(), ev.email, ignore_id=ev.contact)
            if dup is not None:
                refused = "duplicate-email-rejected"
                self.emit(t, "contact.refused", {"contact": ev.contact, "email": ev.email, "reason": refused,
                                                 "existing_contact": dup.id, "existing_active": dup.active})
            else:
                self.contacts[ev.contact] = replace(self.contacts[ev.contact], email=ev.email)
                self.emit(t, "contact.changed", {"contact": ev.contact, "email": ev.email})
                self._contact_changed(ev.contact, t)
        elif k == "set_contact_active":
            assert ev.contact is not None
            self.contacts[ev.contact] = replace(self.contacts[ev.contact], active=bool(ev.active))
            self.emit(t, "contact.changed", {"contact": ev.contact, "active": bool(ev.active)})
            self._contact_changed(ev.contact, t)
        elif k == "set_property_contact":
            assert ev.property is not None and ev.contact is not None
            prop = self.properties[ev.property]
            pcs = list(prop.contacts)
            for i, pc in enumerate(pcs):
                if pc.contact == ev.contact:
                    ei = pc.email_invoice if ev.email_invoice is None else ev.email_invoice
                    pcs[i] = replace(pc, email_invoice=ei,
                                     primary=pc.primary if ev.primary is None else ev.primary,
                                     billing=pc.billing if ev.billing is None else ev.billing)
                    break
            else:
                from simulator.domain.entities import PropertyContact

                pcs.append(PropertyContact(ev.contact, bool(ev.email_invoice), bool(ev.primary), bool(ev.billing)))
            self.properties[ev.property] = replace(prop, contacts=tuple(pcs))
            self.emit(t, "property.changed", {"property": ev.property, "contact": ev.contact,
                                              "email_invoice": ev.email_invoice})
            self._refresh_property(ev.property, t)
        elif k == "set_invoicing_email_from":
            if ev.branch is not None:
                self.branches[ev.branch] = replace(self.branches[ev.branch], invoicing_email_from=ev.email)
                where = f"branch:{ev.branch}"
            elif ev.region is not None:
                self.regions[ev.region] = replace(self.regions[ev.region], invoicing_email_from=ev.email)
                where = f"region:{ev.region}"
            else:
                self.org = replace(self.org, configuration=replace(self.org.configuration,
                                                                   invoice_email_from=ev.email))
                where = "configuration"
            self.version += 1
            self.emit(t, "settings.changed", {"where": where, "invoicing_email_from": ev.email})
        elif k in ("dns_set", "dns_delete"):
            assert ev.name is not None and ev.type is not None
            if k == "dns_set":
                assert ev.value is not None
                self.zone.set(ev.name, ev.type, ev.value)
            else:
                self.zone.delete(ev.name, ev.type)
            val = list(ev.value) if isinstance(ev.value, tuple) else ev.value
            self.emit(t, "dns.changed", {"name": ev.name, "type": ev.type, "value": val,
                                         "op": "set" if k == "dns_set" else "delete"})
        else:  # pragma: no cover - the loader only produces known kinds
            raise ValueError(f"unknown timeline event {k!r}")
        self.events_applied.append((ev, refused))

    def _contact_changed(self, cid: str, t: int) -> None:
        for pid, prop in self.properties.items():
            if any(pc.contact == cid for pc in prop.contacts):
                self._refresh_property(pid, t)

    def _schedule_expiry(self, uid: str) -> None:
        """A trace marker when a token dies; stale markers (refreshed since) stay silent."""
        st = self.sync.get(uid)
        if st is None or not st.supported:
            return
        exp = expires_at(st, self.settings.token_lifetime)
        if exp < self.now or exp > self._horizon:
            return

        def fire() -> None:
            cur = self.sync.get(uid)
            if cur is st or (cur is not None and expires_at(cur, self.settings.token_lifetime) == exp
                             and cur.refreshed == st.refreshed):
                self.version += 1
                self.emit(exp, "sync.expired", {"user": uid, "refreshed": self.scn.iso(st.refreshed),
                                                "refreshed_by": st.refreshed_by})

        self.call_at(exp, self.PRIO_FAULT, fire)

    # -- batch completion --------------------------------------------------------------------
    def complete_batch(self, bid: str, t: int) -> None:
        if self.batch_status[bid] != "Draft":
            self.emit(t, "batch.already_completed", {"batch": bid})
            return
        b = self.batches[bid]
        self.batch_status[bid] = "Sent"
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
                per_prop[pid] = (Origin(bid, pid, t, None, plans, None), "N/A", why, warn, rs)
            else:
                per_prop[pid] = (Origin(bid, pid, t, t, plans, group), "In Queue", None, warn, rs)
        emails, slots = self._build_emails(b, per_prop)
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

    def _build_emails(self, b: Batch, per_prop: dict[str, PropSlot]) -> tuple[list[Email], list[Slot]]:
        """The batch's emails in invoice order, and its queued ones as slots (one per property, see Slot).

        A compact batch assigns properties round-robin (DESIGN §3), so position ``j`` of the
        cycle holds the invoices ``j, j + P, j + 2P, …``: each position's emails are built in
        one go and put in place with a slice assignment, with no per-invoice dispatch.
        """
        if b.compact is None:
            emails: list[Email] = []
            for inv in b.invoices:
                origin, status, reason, notes, rs = per_prop[inv.property]
                rs.sharers += 1
                emails += Email.many((message_id_of(inv.id),), origin, status, reason, notes, rs)
            return emails, self._slots_of(emails)
        ids = self._message_ids(b)
        n = len(ids)
        cycle = b.compact.properties
        period = len(cycle)
        built: list[Email] = [None] * n  # type: ignore[list-item]  # every position is filled below
        slots: list[Slot] = []
        for j in range(min(period, n)):
            origin, status, reason, notes, rs = per_prop[b.property_of(j)]
            part = Email.many(ids[j::period], origin, status, reason, notes, rs)
            built[j::period] = part
            rs.sharers += len(part)
            if origin.group is not None:
                slots.append((origin.plans, rs, part))
        if len(set(cycle)) < period:  # a property listed twice: its emails interleave, so slot them per email
            slots = self._slots_of(built)
        return built, slots

    @staticmethod
    def _slots_of(emails: list[Email]) -> list[Slot]:
        """Group the queued ones of a batch's ``emails`` by property (per email: explicit batches are small)."""
        by: dict[str, list[Email]] = {}
        for e in emails:
            if e.group is not None:
                by.setdefault(e.property, []).append(e)
        return [(es[0].plans, es[0].recipients, es) for es in by.values()]

    def _message_ids(self, b: Batch) -> list[str]:
        """A compact batch's Message-IDs: ``<`` + batch id + a zero-padded number and tail cached per count.

        ``Batch.invoice_id`` formats each id with a nested width spec (≈0.8 µs an id, a
        fifth of the whole per-email cost before); joining a cached tail costs ≈0.1 µs.
        ``Batch.invoice_id`` stays the definition: each batch's first, middle and last ids
        are checked against it, and any difference falls back to it for the whole batch.
        """
        assert b.compact is not None
        n = b.compact.count
        tails = self._id_tails.get(n)
        if tails is None:
            tails = self._id_tails[n] = numbered_tails(n)
        head = MESSAGE_ID_HEAD + b.id
        ids = [head + x for x in tails]
        if n and any(ids[i] != message_id_of(b.invoice_id(i)) for i in (0, n // 2, n - 1)):  # pragma: no cover
            ids = [message_id_of(b.invoice_id(i)) for i in range(n)]
        return ids

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
        scn = self.scn
        sa = resolve_sender_address(group.branch_ids, self.org, self.branches, self.regions)
        helo = scn.platform.helo
        if sa.address is None:
            return SenderDecision(None, sa.source, None, "blocked", None, (), helo, "sender-not-configured",
                                  sa.notes, f"no Invoicing Email From on {' / '.join(group.branch_ids) or 'branch'},"
                                            " its region, or Configuration")
        user = find_sender_user(sa.address, self.users)
        if user is None:
            return SenderDecision(sa.address, sa.source, None, "blocked", None, (), helo, "sender-not-a-user",
                                  sa.notes, f"{sa.address} (from {sa.source}) is not the email of an active user")
        st = self.sync.get(user.id)
        path = sending_path(st, now, self.settings.token_lifetime)
        notes = sa.notes + path.notes
        if path.kind == "blocked":
            return SenderDecision(sa.address, sa.source, user.id, "blocked", st.provider if st else None, (), helo,
                                  path.reason, notes, path.evidence)
        if path.kind == "sync":
            assert st is not None
            prov = scn.provider(st.provider)
            ips = prov.sending_ips if prov else ()
            phelo = (prov.helo if prov and prov.helo else f"mail.{prov.spf_include}" if prov and prov.spf_include
                     else helo)
            return SenderDecision(sa.address, sa.source, user.id, "sync", st.provider, ips, phelo, None, notes,
                                  path.evidence, (), path.valid_until)
        ips = scn.platform.sending_ips
        spf_rows: list[tuple[str, str, str]] = []
        if self.settings.smtp_path_requires_spf:
            results: dict[str, str] = {}
            for ip in ips:
                res, expl = self.dns.spf(now, ip, sa.address, helo)
                results[ip] = res
                spf_rows.append((ip, res, expl))
            reason = spf_gate_reason(results)
            if reason is not None:
                bad = "; ".join(f"{ip}: {res} ({expl})" for ip, res, expl in spf_rows if res != "pass")
                return SenderDecision(sa.address, sa.source, user.id, "blocked", None, ips, helo, reason, notes,
                                      f"SPF of {domain_of(sa.address)} for the platform IPs: {bad}",
                                      tuple(spf_rows))
        return SenderDecision(sa.address, sa.source, user.id, "smtp", None, ips, helo, None, notes,
                              path.evidence, tuple(spf_rows))

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
                e.status = "Sent"
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
            e.status = "Sent"
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
        """Record the current state of each watched invoice (for ``never … until``)."""
        from simulator.engine.result import view_of

        for (inv, rcpt), seen in self.watch.items():
            v = view_of(self, inv)
            if v is None:
                continue
            seen.add(f"email_status={v.email_status}")
            seen.add(f"batch_status={v.batch_status}")
            if v.reason:
                seen.add(f"reason={v.reason}")
            key = rcpt.strip().lower() if rcpt else None
            for r in v.recipients:
                if key is not None and r.email.strip().lower() != key:
                    continue
                seen.add(f"outcome={r.outcome}")
                if r.reason:
                    seen.add(f"reason={r.reason}")

    # -- reading the state -------------------------------------------------------------------
    def invoice_index(self) -> dict[str, tuple[Batch, int]]:
        if self._invoice_index is None:
            idx: dict[str, tuple[Batch, int]] = {}
            for b in self.scn.batches:
                if b.compact is None:
                    for i, inv in enumerate(b.invoices):
                        idx[inv.id] = (b, i)
            self._invoice_index = idx
        return self._invoice_index

    def locate(self, invoice: str) -> tuple[Batch, int] | None:
        hit = self.invoice_index().get(invoice)
        if hit is not None:
            return hit
        b = self.batches.get(invoice.rpartition("-")[0])
        i = b.index_of(invoice) if b is not None and b.compact is not None else None
        return (b, i) if b is not None and i is not None else None

    def email_of(self, invoice: str) -> Email | None:
        loc = self.locate(invoice)
        if loc is None:
            return None
        b, i = loc
        es = self.emails.get(b.id)
        return es[i] if es is not None else None

    def iter_invoices(self) -> Iterator[tuple[Batch, int, str, str, Email | None]]:
        """(batch, index, invoice id, property id, email or None while Draft) in file order."""
        for b in self.scn.batches:
            es = self.emails.get(b.id)
            if es is not None:  # an email knows its invoice id and property: no need to format the ids again
                for i, e in enumerate(es):
                    yield b, i, e.invoice, e.property, e
                continue
            for i, (inv, pid) in enumerate(b.iter_invoices()):
                yield b, i, inv, pid, None
