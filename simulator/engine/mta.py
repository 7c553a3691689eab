"""The outgoing MTA: what happens to an email after it has left the platform (``Sent``).

Per recipient domain it resolves MX, opens one SMTP transaction through the
transport, and files each recipient's reply: 2xx inbox/junk, 4xx deferred and
retried on ``retry_schedule`` until ``max_queue_lifetime``, 5xx bounced with an
RFC 3464 DSN into the sender's own mailbox. Retries are grouped by wake-up time
so one SimPy event serves every unit due at that instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from simulator.engine.dsn import render_dsn, render_invoice
from simulator.engine.state import Email, Rcpt, SenderDecision
from simulator.net.receiver import Reply
from simulator.transport.base import Attempt, AttemptResult, Dsn, Transport

if TYPE_CHECKING:
    from simulator.engine.sim import Engine


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


class Unit:
    """One (message, recipient domain) pair the MTA is responsible for."""

    __slots__ = ("attempt", "decision", "domain", "email", "first", "rcpts")

    def __init__(self, email: Email, decision: SenderDecision, domain: str, rcpts: list[Rcpt]) -> None:
        self.email = email
        self.decision = decision
        self.domain = domain
        self.rcpts = rcpts
        self.attempt = 0
        self.first: int | None = None


@dataclass(frozen=True, slots=True)
class MtaSettings:
    retry_schedule: tuple[int, ...]
    max_queue_lifetime: int
    reporting_mta: str


class Mta:
    def __init__(self, engine: Engine, transport: Transport, settings: MtaSettings) -> None:
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.pending = 0  # units waiting for a retry or a slow reply
        self._buckets: dict[int, list[Callable[[], None]]] = {}
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
    def submit(self, email: Email, decision: SenderDecision, now: int) -> None:
        by_domain: dict[str, list[Rcpt]] = {}
        for r in email.recipients:
            if r.outcome == "none":
                by_domain.setdefault(r.domain, []).append(r)
        for domain, rcpts in by_domain.items():
            self.try_unit(Unit(email, decision, domain, rcpts), now)

    def client_ip(self, email: Email, decision: SenderDecision) -> str:
        ips = decision.client_ips
        if len(ips) == 1:
            return ips[0]
        h = int.from_bytes(blake2b(email.message_id.encode(), digest_size=4).digest(), "big")
        return ips[h % len(ips)]

    def try_unit(self, unit: Unit, now: int) -> None:
        eng = self.engine
        unit.attempt += 1
        if unit.first is None:
            unit.first = now
        email, d = unit.email, unit.decision
        route = eng.dns.mx(now, unit.domain)
        if route.error is not None:
            reply = (Reply(451, "4.4.3", f"MX lookup failed: {route.detail}") if route.error == "temp"
                     else Reply(550, "5.1.2", f"Bad destination domain: {route.detail}"))
            self._apply(unit, AttemptResult((reply,) * len(unit.rcpts), None, None), now, route.detail)
            return
        assert route.host is not None and route.ip is not None
        rcpt_addrs = tuple(r.address for r in unit.rcpts)
        sender = email.sender or ""
        start = eng.scn.start

        def render() -> bytes:
            return render_invoice(message_id=email.message_id, sender=sender, rcpts=rcpt_addrs,
                                  invoice=email.invoice, start=start, now=now)

        att = Attempt(now=now, message_id=email.message_id, attempt=unit.attempt,
                      client_ip=email.client_ip or self.client_ip(email, d), helo=d.helo, mail_from=sender,
                      domain=unit.domain, mx_host=route.host, mx_ip=route.ip, rcpts=rcpt_addrs, render=render)
        result = self.transport.attempt(att)
        if result.delay > 0:
            self.pending += 1

            def finish() -> None:
                self.pending -= 1
                self._apply(unit, result, now + result.delay, route.detail)

            self._later(now + result.delay, finish)
        else:
            self._apply(unit, result, now, route.detail)

    def _apply(self, unit: Unit, result: AttemptResult, now: int, route: str) -> None:
        eng = self.engine
        deferred: list[Rcpt] = []
        bounced: list[Rcpt] = []
        tracing = eng.tracing
        for r, reply in zip(unit.rcpts, result.replies, strict=True):
            r.attempts += 1
            r.code = reply.code or None
            r.enhanced = reply.enhanced or None
            r.at = now
            r.evidence = reply.line()
            if tracing:
                eng.emit(now, "smtp.reply", {"invoice": unit.email.invoice, "recipient": r.address,
                                             "attempt": unit.attempt, "code": reply.code,
                                             "enhanced": reply.enhanced, "text": reply.text, "mx": route,
                                             "spf": result.spf_result})
            if reply.ok:
                folder = result.folder or "inbox"
                r.outcome = folder
                r.folder = folder
                r.reason = None if folder == "inbox" else f"spf-{result.spf_result}-junk"
                eng.on_delivered(unit.email, r, now, result.spf_result)
            elif reply.transient:
                r.outcome = "deferred"
                r.reason = reason_for(reply, result.spf_result)
                deferred.append(r)
            else:
                r.outcome = "bounced"
                r.reason = reason_for(reply, result.spf_result)
                bounced.append(r)
        if deferred:
            assert unit.first is not None
            expiry = unit.first + self.settings.max_queue_lifetime
            if now >= expiry:
                for r in deferred:
                    r.evidence = f"last reply: {r.evidence} ({r.reason})"
                    r.outcome = "bounced"
                    r.reason = "retries-exhausted"
                    r.enhanced = "4.4.7" if r.enhanced is None else r.enhanced
                    bounced.append(r)
            else:
                sched = self.settings.retry_schedule
                nxt = min(now + sched[min(unit.attempt - 1, len(sched) - 1)], expiry)
                if tracing:
                    for r in deferred:
                        eng.emit(now, "email.deferred", {"invoice": unit.email.invoice, "recipient": r.address,
                                                         "reason": r.reason, "attempt": unit.attempt,
                                                         "retry_at": eng.scn.iso(nxt)})
                retry = Unit(unit.email, unit.decision, unit.domain, deferred)
                retry.attempt, retry.first = unit.attempt, unit.first
                self.pending += 1

                def again() -> None:
                    self.pending -= 1
                    self.try_unit(retry, nxt)

                self._later(nxt, again)
        if bounced:
            self._bounce(unit, bounced, now)

    def _bounce(self, unit: Unit, bounced: list[Rcpt], now: int) -> None:
        eng = self.engine
        email = unit.email
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


def _dsn_status(r: Rcpt) -> str:
    if r.reason == "retries-exhausted":
        return "4.4.7" if r.enhanced in (None, "", "4.4.7") else r.enhanced
    return r.enhanced or "5.0.0"


Fields = dict[str, Any]
