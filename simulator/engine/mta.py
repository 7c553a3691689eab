"""The outgoing MTA: what happens to an email after it has left the platform (``Sent``).

Per recipient domain it resolves MX, opens one SMTP transaction through the
transport, and files each recipient's reply: 2xx inbox/junk, 4xx deferred and
retried on ``retry_schedule`` until ``max_queue_lifetime``, 5xx bounced with an
RFC 3464 DSN into the sender's own mailbox. Retries are grouped by wake-up time
so one SimPy event serves every unit due at that instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from hashlib import blake2b
from itertools import repeat
from operator import attrgetter, is_
from typing import Any, ClassVar, Protocol

from simulator.domain.sender import SenderDecision
from simulator.engine.state import Email, Rcpt, RcptSet, Slot
from simulator.net.dnsview import DnsView
from simulator.net.messages import render_dsn, render_invoice
from simulator.net.receiver import MessageIds, ReceivingServer, Reply
from simulator.scenario.model import Scenario
from simulator.transport.base import Attempt, AttemptResult, Dsn, Repeated, Results, Transport


class MtaHost(Protocol):
    """What the MTA needs of the engine driving it: the clock's scheduler, DNS, the receivers and the trace."""

    PRIO_MTA: ClassVar[int]
    scn: Scenario
    dns: DnsView
    receiver: ReceivingServer
    tracing: bool

    def call_at(self, t: int, prio: int, fn: Callable[[], None]) -> None: ...

    def emit(self, t: int, event: str, fields: dict[str, Any]) -> None: ...

    def on_bounced(self, email: Email, r: Rcpt, now: int, dsn_id: str) -> None: ...


def reason_for(reply: Reply, spf_result: str | None) -> str:
    """Map an SMTP reply to the reason code of DESIGN §4."""
    code, enh = reply.code, reply.enhanced
    if code == 0:
        return "remote-disconnect"
    if enh == "5.1.1":
        return "unknown-recipient"
    if enh == "4.2.2":
        return "mailbox-full"
    if enh == "4.7.1":
        return "greylisted"
    if enh == "4.7.28":
        return "rate-limited"
    if enh == "4.3.2" or code == 421:
        return "remote-outage"
    if enh == "5.7.23":
        return f"spf-{spf_result or 'fail'}-rejected"
    if enh == "4.7.24":
        return f"spf-{spf_result or 'temperror'}-deferred"
    if enh == "5.3.4":
        return "message-too-big"
    if enh in ("4.4.3", "5.1.2", "5.4.4"):
        return "mx-lookup-failed"
    return "remote-tempfail" if code < 500 else "remote-permfail"


OK, DEFER, BOUNCE = 0, 1, 2
_delay_of = attrgetter("delay")
# Rendered invoice messages are far smaller than this: below it a size limit can matter.
SIZE_CHECK_BOUND = 1_000_000


def _message_id(email: Email) -> str:
    """``email.message_id``, for :class:`MessageIds` (spelled only when read)."""
    return email.message_id


class Unit:
    """Emails that share one envelope towards one recipient domain, and so one retry clock.

    A cohort: every email of a poll with the same recipient plan (the same
    property's contacts) and client IP. ``positions`` are the indices, in each
    email's recipient list, of the recipients at ``domain``. ``sets``, when known,
    lists the shared recipient sets the emails hold, in order, and how many
    consecutive emails hold each (a cohort spans one slot per completed batch).
    """

    __slots__ = ("attempt", "decision", "domain", "emails", "first", "positions", "sets")

    def __init__(self, emails: list[Email], decision: SenderDecision, domain: str, positions: tuple[int, ...],
                 sets: list[tuple[RcptSet, int]] | None = None) -> None:
        self.emails = emails
        self.decision = decision
        self.domain = domain
        self.positions = positions
        self.sets = sets
        self.attempt = 0
        self.first: int | None = None


@dataclass(frozen=True, slots=True)
class MtaSettings:
    """The retry intervals, the queue lifetime and the name the MTA reports bounces as."""

    retry_schedule: tuple[int, ...]
    max_queue_lifetime: int
    reporting_mta: str


class Mta:
    """The outgoing MTA: per recipient domain, MX, one SMTP transaction through the transport, retries and DSNs."""

    def __init__(self, engine: MtaHost, transport: Transport, settings: MtaSettings) -> None:
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.pending = 0  # units waiting for a retry or a slow reply
        self._buckets: dict[int, list[Callable[[], None]]] = {}
        self._domains: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {}
        self._many = getattr(transport, "attempt_many", None)
        self.dsn_count = 0

    # -- scheduling ------------------------------------------------------------------------
    def _later(self, t: int, fn: Callable[[], None]) -> None:
        bucket = self._buckets.get(t)
        if bucket is None:
            self._buckets[t] = [fn]
            self.engine.call_at(t, self.engine.PRIO_MTA, lambda: self._run_bucket(t))
        else:
            bucket.append(fn)

    def _run_bucket(self, t: int) -> None:
        for fn in self._buckets.pop(t):
            fn()

    # -- sending ---------------------------------------------------------------------------
    def domains_of(self, email: Email) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """(domain, recipient positions) for the deliverable recipients, cached per shared plan."""
        key = id(email.plans)
        hit = self._domains.get(key)
        if hit is None:
            by: dict[str, list[int]] = {}
            for i, p in enumerate(email.plans):
                if p.skip_reason is None:
                    by.setdefault(p.domain, []).append(i)
            hit = self._domains[key] = tuple((d, tuple(ix)) for d, ix in by.items())
        return hit

    def submit(self, emails: list[Email], decision: SenderDecision, now: int) -> None:
        """Hand the emails sent at one poll by one sender to the MTA, as cohorts."""
        cohorts: dict[tuple[int, str | None], list[Email]] = {}
        for e in emails:
            key = (id(e.plans), e.client_ip)
            c = cohorts.get(key)
            if c is None:
                cohorts[key] = [e]
            else:
                c.append(e)
        for members in cohorts.values():
            for domain, positions in self.domains_of(members[0]):
                self.try_unit(Unit(members, decision, domain, positions), now)

    def submit_slots(self, cohorts: Iterable[list[Slot]], decision: SenderDecision, now: int) -> None:
        """Like :meth:`submit`, for cohorts already grouped from slots (one client IP): no per-email lookups."""
        for parts in cohorts:
            if len(parts) == 1:
                _plans, rs, members = parts[0]
                sets = [(rs, len(members))]
            else:
                members = [e for _plans, _rs, es in parts for e in es]
                sets = [(rs, len(es)) for _plans, rs, es in parts]
            for domain, positions in self.domains_of(members[0]):
                self.try_unit(Unit(members, decision, domain, positions, sets), now)

    def client_ip(self, email: Email, decision: SenderDecision) -> str:
        ips = decision.client_ips
        if len(ips) == 1:
            return ips[0]
        h = int.from_bytes(blake2b(email.invoice.encode(), digest_size=4).digest(), "big")
        return ips[h % len(ips)]

    def try_unit(self, unit: Unit, now: int) -> None:
        eng = self.engine
        unit.attempt += 1
        if unit.first is None:
            unit.first = now
        d = unit.decision
        first = unit.emails[0]
        route = eng.dns.mx(now, unit.domain)
        n = len(unit.positions)
        if route.error is not None:
            reply = (Reply(451, "4.4.3", f"MX lookup failed: {route.detail}") if route.error == "temp"
                     else Reply(550, "5.1.2", f"Bad destination domain: {route.detail}"))
            res = AttemptResult((reply,) * n, None, None)
            self._apply(unit, Repeated(res, len(unit.emails)), now, route.detail)
            return
        assert route.host is not None and route.ip is not None
        rcpt_addrs = tuple(first.recipients[i].address for i in unit.positions)
        sender = first.sender or ""
        start = eng.scn.start

        def render_for(email: Email) -> Callable[[], bytes]:
            def render() -> bytes:
                return render_invoice(message_id=email.message_id, sender=sender, rcpts=rcpt_addrs,
                                      invoice=email.invoice, start=start, now=now)
            return render

        att = Attempt(now=now, message_id=first.message_id, attempt=unit.attempt,
                      client_ip=first.client_ip or self.client_ip(first, d), helo=d.helo, mail_from=sender,
                      domain=unit.domain, mx_host=route.host, mx_ip=route.ip, rcpts=rcpt_addrs,
                      render=render_for(first))
        results: Sequence[AttemptResult]
        limit = eng.receiver.policy(unit.domain).size_limit
        if limit and limit < SIZE_CHECK_BOUND:
            # the declared size can decide the reply: each message declares its own, exactly
            results = []
            for e in unit.emails:
                render = render_for(e)
                results.append(self.transport.attempt(replace(att, message_id=e.message_id, render=render,
                                                              size=len(render()))))
        elif len(unit.emails) == 1:
            results = [self.transport.attempt(att)]
        elif self._many is not None:
            results = self._many(att, MessageIds(tuple(unit.emails), _message_id))
        else:
            results = [self.transport.attempt(replace(att, message_id=e.message_id, render=render_for(e)))
                       for e in unit.emails]
        distinct = _distinct(results)
        delays = set(map(_delay_of, results if distinct is None else distinct))
        if delays == {0}:
            self._apply(unit, results, now, route.detail)
            return
        for delay in sorted(delays):
            idx = [i for i, r in enumerate(results) if r.delay == delay]
            part = Unit([unit.emails[i] for i in idx], d, unit.domain, unit.positions)
            part.attempt, part.first = unit.attempt, unit.first
            part_results = [results[i] for i in idx]
            if delay == 0:
                self._apply(part, part_results, now, route.detail)
                continue
            self.pending += 1

            def finish(part: Unit = part, part_results: list[AttemptResult] = part_results,
                       at: int = now + delay) -> None:
                self.pending -= 1
                # the receiver answers 250 (and so stores the message) now, not when the transaction began
                self._settle(att, part.emails, part_results, at)
                self._apply(part, part_results, at, route.detail)

            self._later(now + delay, finish)

    def _settle(self, att: Attempt, emails: Sequence[Email], results: Sequence[AttemptResult], at: int) -> None:
        """Have the transport file a slow attempt's accepted copies at ``at``, one call per run of one result."""
        settle = self.transport.settle
        last: AttemptResult | None = None
        mids: list[str] = []
        for email, result in zip(emails, results, strict=True):
            if result.folder is None:
                continue
            if result is not last:
                if last is not None and mids:
                    settle(att, last, mids, at)
                last, mids = result, []
            mids.append(email.message_id)
        if last is not None and mids:
            settle(att, last, mids, at)

    def _prepare(self, result: AttemptResult, now: int, exhausted: bool) -> list[tuple[Any, ...]]:
        """What one result does to each recipient position, computed once per distinct result."""
        out: list[tuple[Any, ...]] = []
        for reply in result.replies:
            code, enh = reply.code or None, reply.enhanced or None
            if reply.ok:
                folder = result.folder or "inbox"
                reason = None if folder == "inbox" else f"spf-{result.spf_result}-junk"
                out.append((code, enh, OK, folder, reason, None, folder))
                continue
            why = reason_for(reply, result.spf_result)
            line = reply.line()
            if reply.transient and exhausted:
                out.append((code, enh, BOUNCE, "bounced", "retries-exhausted", f"last reply: {line} ({why})", None))
            elif reply.transient:
                out.append((code, enh, DEFER, "deferred", why, line, None))
            else:
                out.append((code, enh, BOUNCE, "bounced", why, line, None))
        return out

    @staticmethod
    def _update(recipients: list[Rcpt], positions: tuple[int, ...], prepared: list[tuple[Any, ...]],
                now: int) -> tuple[list[int] | None, list[Rcpt] | None]:
        """Write one attempt's outcome into the recipients; returns (deferred positions, bounced)."""
        deferred: list[int] | None = None
        bounced: list[Rcpt] | None = None
        for pos, (code, enh, kind, outcome, reason, evidence, folder) in zip(positions, prepared, strict=True):
            r = recipients[pos]
            r.attempts += 1
            r.code = code
            r.enhanced = enh
            r.at = now
            r.outcome = outcome
            r.reason = reason
            r.evidence = evidence
            if kind == OK:
                r.folder = folder
            elif kind == DEFER:
                if deferred is None:
                    deferred = [pos]
                else:
                    deferred.append(pos)
            elif bounced is None:
                bounced = [r]
            else:
                bounced.append(r)
        return deferred, bounced

    def _trace(self, unit: Unit, email: Email, result: AttemptResult, now: int, route: str) -> None:
        """One event per recipient: ``email.delivered`` (carrying the 2xx reply) or ``smtp.reply``."""
        eng = self.engine
        emit = eng.emit
        for pos, reply in zip(unit.positions, result.replies, strict=True):
            r = email.recipients[pos]
            if reply.ok:
                emit(now, "email.delivered", {"invoice": email.invoice, "recipient": r.address, "folder": r.folder,
                                              "spf": result.spf_result, "reason": r.reason, "attempt": unit.attempt,
                                              "code": reply.code, "enhanced": reply.enhanced, "mx": route})
            else:
                emit(now, "smtp.reply", {"invoice": email.invoice, "recipient": r.address, "attempt": unit.attempt,
                                         "code": reply.code, "enhanced": reply.enhanced, "text": reply.text,
                                         "mx": route, "spf": result.spf_result})

    def _apply(self, unit: Unit, results: Sequence[AttemptResult], now: int, route: str) -> None:
        """File one attempt's results into the unit's recipients, bounce and schedule retries.

        When every email got the same result and the unit holds every sharer of each
        recipient set its emails hold, each set is updated once: a million-email run is a
        few thousand such updates. Otherwise each email takes a private copy and is
        updated alone. Both ways write the trace in the same order.
        """
        tracing = self.engine.tracing
        positions = unit.positions
        emails = unit.emails
        retry: dict[tuple[int, ...], list[Email]] = {}
        exhausted_at = (now if unit.first is None else unit.first) + self.settings.max_queue_lifetime
        exhausted = now >= exhausted_at
        first = results[0]
        # one result for every email: a Repeated (one transaction shared by the cohort) or one transaction
        # per message that all answered alike (run_transactions hands out one object per distinct result)
        shared_tx = type(results) is Repeated
        distinct = _distinct(results)
        uniform = len(results) == 1 or (len(distinct) == 1 if distinct is not None
                                        else all(map(is_, results, repeat(first))))
        sets = unit.sets
        if sets is None and uniform:
            shared = emails[0].recipients
            if shared.sharers == len(emails) and all(e.recipients is shared for e in emails):
                sets = [(shared, len(emails))]
        shared_sets = sets if uniform and sets is not None and all(rs.sharers == k for rs, k in sets) else None
        if shared_sets is not None:
            sets = shared_sets
            # every email of each shared recipient set is here and all got one result: update each set once
            prepared = self._prepare(first, now, exhausted)
            outcome = [self._update(rs, positions, prepared, now) for rs, _k in sets]
            deferred = outcome[0][0]
            if len(sets) == 1 and (shared_tx or outcome[0][1] is None):
                # one transaction: its replies, then its bounces (per-message transactions: per email, below)
                bounced = outcome[0][1]
                if tracing:
                    for e in emails:
                        self._trace(unit, e, first, now, route)
                if bounced is not None:
                    for e in emails:
                        self._bounce(e, bounced, now)
            elif tracing or outcome[0][1] is not None:
                # per email, reply then bounce (the order the per-email path below writes them in)
                i = 0
                for (_rs, k), (_d, bounced) in zip(sets, outcome, strict=True):
                    for e in emails[i:i + k]:
                        if tracing:
                            self._trace(unit, e, first, now, route)
                        if bounced is not None:
                            self._bounce(e, bounced, now)
                    i += k
            if deferred is not None:
                retry[tuple(deferred)] = list(emails)
        else:
            runs = sets if (sets is not None and all(rs.sharers == k for rs, k in sets)
                            and len({id(rs) for rs, _k in sets}) == len(sets)) else None
            outcomes, eventful = self._update_grouped(emails, results, positions, now, exhausted, runs)
            # in email order: its replies, then (deferred) its place in a retry or (bounced) its DSN
            for i in range(len(emails)) if tracing else eventful:
                email = emails[i]
                deferred, bounced = outcomes[i]
                if tracing:
                    self._trace(unit, email, results[i], now, route)
                if deferred is not None:
                    retry.setdefault(tuple(deferred), []).append(email)
                if bounced is not None:
                    self._bounce(email, bounced, now)
        if retry:
            eng = self.engine
            sched = self.settings.retry_schedule
            nxt = min(now + sched[min(unit.attempt - 1, len(sched) - 1)], exhausted_at)
            for positions_left, emails in retry.items():
                # updated per shared set, every email was deferred alike: the retry holds the same sets
                again = Unit(emails, unit.decision, unit.domain, positions_left, shared_sets)
                again.attempt, again.first = unit.attempt, unit.first
                if tracing:
                    for e in emails:
                        for pos in positions_left:
                            r = e.recipients[pos]
                            eng.emit(now, "email.deferred", {"invoice": e.invoice, "recipient": r.address,
                                                             "reason": r.reason, "attempt": unit.attempt,
                                                             "retry_at": eng.scn.iso(nxt)})
                self.pending += 1

                def run_again(u: Unit = again) -> None:
                    self.pending -= 1
                    self.try_unit(u, nxt)

                self._later(nxt, run_again)

    def _update_grouped(self, emails: Sequence[Email], results: Sequence[AttemptResult], positions: tuple[int, ...],
                        now: int, exhausted: bool, runs: list[tuple[RcptSet, int]] | None = None,
                        ) -> tuple[list[tuple[list[int] | None, list[Rcpt] | None]], list[int]]:
        """Write differing results into the emails' recipients, once per (recipient set, result).

        The emails holding one shared set split by the result they got (one object per
        distinct result, see ``run_transactions``): the largest part keeps the set when the
        unit holds all its sharers, every other part moves to one fresh copy it shares.
        Copying per email instead (what a diverging email does alone, ``own_recipients``)
        cost more than the transaction. ``runs``, when given, says the emails are
        consecutive runs of every sharer of one set each (a unit built from slots): a run
        whose emails all got one result is then handled without looking at each email.
        Returns each email's (deferred positions, bounced) and, in order, the indices of
        the emails with either (what the caller must act on when not tracing).
        """
        groups: list[tuple[RcptSet, bool, dict[int, list[int] | range]]] = []  # (set, all sharers here, parts)
        if runs is not None:
            ids = list(map(id, results))
            pos = 0
            for rs, k in runs:
                seg = ids[pos:pos + k]
                if seg.count(seg[0]) == k:
                    groups.append((rs, True, {seg[0]: range(pos, pos + k)}))
                else:
                    by: dict[int, list[int] | range] = {}
                    for i, rid in enumerate(seg, pos):
                        part = by.get(rid)
                        if part is None:
                            by[rid] = [i]
                        else:
                            part.append(i)  # type: ignore[union-attr]
                    groups.append((rs, True, by))
                pos += k
        else:
            parts: dict[int, dict[int, list[int] | range]] = {}  # id(set) -> id(result) -> indices into emails
            sets: dict[int, RcptSet] = {}
            for i, (email, result) in enumerate(zip(emails, results, strict=True)):
                rs = email.recipients
                held = parts.get(id(rs))
                if held is None:
                    held = parts[id(rs)] = {}
                    sets[id(rs)] = rs
                held.setdefault(id(result), []).append(i)  # type: ignore[union-attr]
            for key, held in parts.items():
                rs = sets[key]
                groups.append((rs, sum(map(len, held.values())) == rs.sharers, held))
        prepared: dict[int, list[tuple[Any, ...]]] = {}
        out: list[tuple[list[int] | None, list[Rcpt] | None]] = [(None, None)] * len(emails)
        eventful: list[int] = []
        for rs, whole, by in groups:
            keeper = max(by, key=lambda r: len(by[r])) if whole else None
            rs.sharers -= sum(map(len, by.values()))
            targets: list[tuple[int, list[int] | range, RcptSet]] = []
            for rid, idx in by.items():  # every copy is taken before the kept set is written to
                if rid == keeper:
                    target = rs
                    rs.sharers += len(idx)
                else:
                    target = RcptSet((r.copy() for r in rs), len(idx))
                    for i in idx:
                        emails[i].recipients = target
                targets.append((rid, idx, target))
            for rid, idx, target in targets:
                prep = prepared.get(rid)
                if prep is None:
                    prep = prepared[rid] = self._prepare(results[idx[0]], now, exhausted)
                outcome = self._update(target, positions, prep, now)
                if isinstance(idx, range):
                    out[idx.start:idx.stop] = [outcome] * len(idx)
                else:
                    for i in idx:
                        out[i] = outcome
                if outcome[0] is not None or outcome[1] is not None:
                    eventful.extend(idx)
        eventful.sort()
        return out, eventful

    def _bounce(self, email: Email, bounced: list[Rcpt], now: int) -> None:
        eng = self.engine
        sender = email.sender or ""
        self.dsn_count += 1
        dsn_id = f"<dsn-{self.dsn_count}-{email.invoice}@{self.settings.reporting_mta}>"
        rows = tuple(
            (r.address, "failed", _dsn_status(r), r.evidence or r.reason or "") for r in bounced
        )
        start = eng.scn.start
        reporting = self.settings.reporting_mta

        def render() -> bytes:
            return render_dsn(dsn_id=dsn_id, original_id=email.message_id, sender=sender, reporting_mta=reporting,
                              recipients=rows, start=start, now=now,
                              original_headers=f"Message-ID: {email.message_id}\nSubject: Invoice {email.invoice}\n")

        dsn = Dsn(message_id=dsn_id, original_id=email.message_id, to=sender,
                  subject="Undelivered Mail Returned to Sender", recipients=rows, now=now, render=render)
        self.transport.deliver_dsn(dsn)
        for r in bounced:
            eng.on_bounced(email, r, now, dsn_id)


def _distinct(results: Sequence[AttemptResult]) -> tuple[AttemptResult, ...] | None:
    """The distinct result objects, when the transport said which (a Repeated, or run_transactions' Results)."""
    return results.distinct if type(results) is Repeated or type(results) is Results else None


def _dsn_status(r: Rcpt) -> str:
    if r.reason == "retries-exhausted":
        return "4.4.7" if r.enhanced in (None, "", "4.4.7") else r.enhanced
    return r.enhanced or "5.0.0"

