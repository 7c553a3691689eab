"""The wire transport: the engine's outgoing MTA speaks real SMTP to the loopback sink.

``simulate(scn, transport=wire_transport)`` (``mailsim run FILE --transport
wire``) starts, for the run:

- a loopback DNS server (:class:`~simulator.net.dns_server.DnsServerThread`)
  serving the engine's live ``Zone`` — timeline ``dns_set``/``dns_delete`` are
  seen at once — with the scenario's DNS faults judged at the virtual time;
- the engine's :class:`~simulator.net.dnsview.DnsView` is replaced by one
  resolving through a :class:`~simulator.net.resolver.WireResolver` pointed at
  that server, so MX routes and the platform's SPF gate come over UDP/TCP;
- a :class:`~simulator.net.sink.Sink` with the scenario's ``mailboxes:``,
  ``faults:`` and seed, whose receiver evaluates SPF through its own
  ``WireResolver`` against the same DNS server and files into the engine's own
  :class:`~simulator.net.receiver.MailStore` (so the mailbox counts the run
  reports are what the sink stored), and writes every message to a Maildir
  (a temporary one in RAM when there is room, see :func:`scratch_root`; a kept
  one on disk is written behind the replies, so a transaction never waits for
  the disk).

The SMTP client is a small asyncio client scheduled on the sink's own event
loop, so a request/reply exchange is not a thread hand-off; the engine's thread
waits once per :meth:`WireTransport.attempt`, or once for all the messages of
a cohort (:meth:`WireTransport.attempt_many`). Each message is its own SMTP
transaction, exactly as :func:`~simulator.transport.base.run_transaction`
drives the receiver in memory, and the real replies are parsed back into
``Reply`` objects (a dropped connection is code 0).

Connections are reused. The sink's PROXY listener takes a PROXY v2 header at
connect time (the simulated client IP, so SPF sees the scenario's sending IP)
and, per transaction, the context that makes fault draws and the clock match
memory mode — message id, attempt, virtual ``now``, recipient domain, kind and
a session token — as an ESMTP parameter only that listener advertises:
``MAIL FROM:<sender> XMAILSIM=<base32 JSON>``. One connection per (client IP,
HELO name) carries consecutive transactions (``RSET`` between them when one
stopped before DATA); commands up to ``DATA`` are pipelined (RFC 2920 style)
and the sink answers nothing after a fault dropped the connection. When a
``connect``- or ``helo``-stage fault could apply to the attempt's domain at its
virtual time, the attempt gets a fresh connection of its own whose PROXY TLVs
carry the context, so the greeting and HELO are judged per attempt as in
memory. A pooled connection the sink has closed meanwhile (idle timeout) is
told apart from a fault by the sink's session record: a transaction the sink
never saw is retried on a new connection.

What SMTP cannot carry — the virtual seconds a ``slow`` fault added, the
receiver's SPF verdict and the folder — is read from the sink's session record
for the token. Virtual time stays virtual: nobody sleeps. So a slow
transaction's 250 arrives at once on the wire while, in virtual time, the
server answers it ``delay`` later: the sink holds such a message unstored (in
the record) and :meth:`WireTransport.settle` stores it — mailbox counts and
Maildir file, with that later time — when the engine applies the reply, as
memory mode does; a run that ends inside the delay stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from simulator.domain.faults import SMTP_FAULT_KINDS, stage_of, targets_domain
from simulator.net.dns_server import DnsServerThread
from simulator.net.dnsview import DnsView
from simulator.net.messages import render_invoice
from simulator.net.receiver import DROPPED, ReceivingServer, Reply
from simulator.net.resolver import WireResolver
from simulator.net.sink import (
    PROXY_MAIL_LINE_LIMIT,
    XMAILSIM,
    MailContext,
    Sink,
    proxy_header,
)
from simulator.transport.base import Attempt, AttemptResult, Dsn, EnginePort
from simulator.transport.smtp_client import (
    LOOPBACK,
    SMTP_TIMEOUT,
    SmtpClient,
    SmtpDropped,
    bounded,
    fast_invoice,
    mail_line,
    scratch_root,
)

T = TypeVar("T")
DNS_TIMEOUT = 1.0  # seconds a DNS question may take on loopback before it counts as a timeout


class WireTransport:
    """Real SMTP to a loopback sink, DNS from a loopback server; see the module docstring.

    ``reuse=False`` opens one connection per attempt with the context in the PROXY
    header's TLVs (the behaviour before connections were reused; slower).
    """

    def __init__(self, port: EnginePort, *, maildir: str | Path | None = None,
                 dns_timeout: float = DNS_TIMEOUT, reuse: bool = True) -> None:
        self.port = port
        scn = port.scenario
        self.reuse = reuse
        self._now: int | None = None
        self._tokens = itertools.count(1)
        self._pool: dict[tuple[str, str, str], SmtpClient] = {}
        # faults judged at the greeting or HELO: while one could apply, an attempt needs its own connection
        self._session_faults = tuple(f for f in scn.faults
                                     if f.kind in SMTP_FAULT_KINDS and stage_of(f) in ("connect", "helo"))
        self._fast: bool | None = None  # fast_invoice verified against the engine's renderer (None: not yet)
        self.stats = {"connections": 0, "transactions": 0, "fresh": 0, "stale_retries": 0}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        in_ram = False
        if maildir is None:
            # at most one file per recipient of each invoice, plus a bounce each
            per = max((len(p.contacts) for p in scn.properties), default=1) + 1
            root = scratch_root(sum(b.count for b in scn.batches) * per)
            self._scratch = tempfile.TemporaryDirectory(prefix="mailsim-wire-", dir=root)
            maildir = self._scratch.name
            in_ram = root is not None
        self.dns_server = DnsServerThread(port.zone, LOOPBACK, 0, faults=scn.faults, seed=scn.seed,
                                          clock=self._clock)
        self.dns_server.start()
        self.sink: Sink | None = None
        try:
            dns_port = self.dns_server.port
            # the engine's own questions (MX routes, the platform's SPF gate) go over the wire too
            self.dns: DnsView | None = DnsView(port.zone, scn.faults, scn.seed,
                                               resolver=WireResolver(LOOPBACK, dns_port, timeout=dns_timeout))
            sink_dns = DnsView(port.zone, scn.faults, scn.seed,
                               resolver=WireResolver(LOOPBACK, dns_port, timeout=dns_timeout))
            # one client (this transport) waiting for every reply: stage work inline on the sink's loop;
            # Maildir files written on a writer thread unless they go to RAM (cheaper than the hand-off)
            self.sink = Sink(scn, maildir, host=LOOPBACK, store=port.store, spf=sink_dns.spf, plain=False,
                             inline=True, write_behind=not in_ram)
            self.sink.start()
        except BaseException:
            self.close()
            raise
        self.receiver: ReceivingServer | None = self.sink.receiver
        self.store = port.store
        self.dsns: list[Dsn] = []
        # slow transactions the sink accepted but has not stored yet, by (message id, domain, attempt):
        # stored (and written to the Maildir) by ``settle`` when the engine applies their 250
        self._held: dict[tuple[str, str, int], Callable[[int], list[Callable[[], object]]]] = {}

    def _clock(self) -> int:
        """The virtual time the DNS server judges faults at: the attempt's, else the engine's last question."""
        return self._now if self._now is not None else self.port.dns_now()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a client coroutine on the sink's loop and wait for it (one hand-off)."""
        assert self.sink is not None and self.sink.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.sink.loop).result()

    # -- the message bodies -----------------------------------------------------------------------
    def _body(self, att: Attempt, message_id: str) -> Callable[[], bytes]:
        """The rendered invoice ``message_id`` of ``att``'s envelope (``att.render`` is its own id's).

        The MTA renders with :func:`~simulator.net.messages.render_invoice`; for the
        other messages of a cohort this calls it the same way (the invoice comes from
        the engine's message id). :func:`fast_invoice` replaces it once it has given
        the same bytes in this run.
        """
        own = message_id == att.message_id

        def render() -> bytes:
            invoice = self.port.invoice_of(message_id)
            if invoice is None:
                if own:
                    return att.render()
                raise RuntimeError(f"wire transport: cannot render {message_id} (not an engine message id)")
            kw: dict[str, Any] = {"message_id": message_id, "sender": att.mail_from, "rcpts": att.rcpts,
                                  "invoice": invoice, "start": self.port.scenario.start, "now": att.now}
            if self._fast is not False:
                fast = fast_invoice(**kw)
                if fast is not None:
                    if self._fast:
                        return fast
                    slow = att.render() if own else render_invoice(**kw)
                    self._fast = fast == slow  # once a run: still the engine's layout?
                    return slow
            return att.render() if own else render_invoice(**kw)

        return render

    # -- attempts ---------------------------------------------------------------------------------
    def attempt(self, att: Attempt) -> AttemptResult:
        self._now = att.now
        try:
            return self._run(bounded(self._attempt(att, self._body(att, att.message_id))))
        finally:
            self._now = None

    def attempt_many(self, first: Attempt, message_ids: Sequence[str]) -> list[AttemptResult]:
        """One envelope, many messages: one SMTP transaction each, all in one hand-off to the sink's loop."""
        atts = [first if mid == first.message_id else _with_id(first, mid) for mid in message_ids]
        bodies = [self._body(first, mid) for mid in message_ids]
        self._now = first.now
        try:
            return self._run(self._attempts(atts, bodies))
        finally:
            self._now = None

    async def _attempts(self, atts: list[Attempt], bodies: list[Callable[[], bytes]]) -> list[AttemptResult]:
        """The messages in order, each its own transaction; on a pooled connection each one's
        commands go out right behind the previous message's content (one write per message)."""
        assert self.sink is not None
        tokens = [f"a{next(self._tokens)}" for _ in atts]
        mails = [mail_line(a.mail_from, a.size, MailContext(a.message_id, a.attempt, a.now, a.domain, "msg", t))
                 for a, t in zip(atts, tokens, strict=True)]
        pooled = [not self._needs_own_connection(a) and len(m) <= PROXY_MAIL_LINE_LIMIT
                  for a, m in zip(atts, mails, strict=True)]
        out: list[AttemptResult] = []
        client: SmtpClient | None = None  # set while the next message's commands are already on it
        ahead = False
        stale = 0
        i = 0
        while i < len(atts):
            att, token = atts[i], tokens[i]
            self.stats["transactions"] += 1
            key = ("msg", att.client_ip, att.helo)
            if client is None and pooled[i]:
                async with asyncio.timeout(SMTP_TIMEOUT):
                    client = await self._pooled(key, att.client_ip, att.mx_ip, att.helo,
                                                MailContext(att.message_id, att.attempt, att.now, att.domain))
            if client is None:
                out.append(await bounded(self._own_connection(att, bodies[i], token)))
                i += 1
                continue
            nxt = (mails[i + 1], atts[i + 1].rcpts) if i + 1 < len(atts) and pooled[i + 1] else None
            try:
                async with asyncio.timeout(SMTP_TIMEOUT):
                    replies, data, ahead = await client.transaction(mails[i], att.rcpts, bodies[i], sent=ahead,
                                                                    then=nxt)
            except (SmtpDropped, TimeoutError):
                client, ahead = None, False
                await self._discard(key)
                rec = self.sink.pop_record(token)
                if rec is None:  # the sink never saw it: the pooled connection was stale
                    stale += 1
                    if stale > 2:
                        raise RuntimeError(f"wire transport: the sink keeps closing the connection ({att.message_id})"
                                           ) from None
                    self.stats["stale_retries"] += 1
                    self.stats["transactions"] -= 1
                    continue
                out.append(AttemptResult((DROPPED,) * len(att.rcpts), None, rec.spf_result, rec.spf_explanation,
                                         rec.delay))
                stale = 0
                i += 1
                continue
            out.append(self._result(replies, token, att, data=data))
            i += 1
            stale = 0
            if not ahead:  # else the next message's commands are on this connection already
                client = None
        return out

    def _needs_own_connection(self, att: Attempt) -> bool:
        return not self.reuse or any(f.active_at(att.now) and targets_domain(f, att.domain)
                                     for f in self._session_faults)

    async def _attempt(self, att: Attempt, body: Callable[[], bytes]) -> AttemptResult:
        assert self.sink is not None
        n = len(att.rcpts)
        token = f"a{next(self._tokens)}"
        self.stats["transactions"] += 1
        mail = mail_line(att.mail_from, att.size, MailContext(att.message_id, att.attempt, att.now, att.domain,
                                                               "msg", token))
        if not self._needs_own_connection(att) and len(mail) <= PROXY_MAIL_LINE_LIMIT:
            key = ("msg", att.client_ip, att.helo)
            for _ in range(2):
                client = await self._pooled(key, att.client_ip, att.mx_ip, att.helo,
                                            MailContext(att.message_id, att.attempt, att.now, att.domain))
                if client is None:
                    break  # the pooled connection could not be opened: judge this attempt on its own
                try:
                    replies, data, _ = await client.transaction(mail, att.rcpts, body)
                except SmtpDropped:
                    await self._discard(key)
                    rec = self.sink.pop_record(token)
                    if rec is None:  # the sink never saw it: the connection was stale, not a fault
                        self.stats["stale_retries"] += 1
                        continue
                    return AttemptResult((DROPPED,) * n, None, rec.spf_result, rec.spf_explanation, rec.delay)
                return self._result(replies, token, att, data=data)
        return await self._own_connection(att, body, token)

    async def _own_connection(self, att: Attempt, body: Callable[[], bytes], token: str) -> AttemptResult:
        """One connection for this attempt; its PROXY TLVs carry the context the greeting and HELO are judged by."""
        assert self.sink is not None
        n = len(att.rcpts)
        self.stats["fresh"] += 1
        self.stats["connections"] += 1
        header = proxy_header(att.client_ip, att.mx_ip, message_id=att.message_id, attempt=att.attempt,
                              now=att.now, domain=att.domain, kind="msg", token=token, secret=self.sink.proxy_secret)
        client: SmtpClient | None = None
        try:
            client, r = await SmtpClient.open(self.sink.proxy_port, header)
            if r.ok:
                r = await client.cmd(f"EHLO {att.helo}")
            if r.code == 0:
                raise SmtpDropped("no reply")
            if not r.ok:
                return self._result((r,) * n, token, att)
            replies, data, _ = await client.transaction(mail_line(att.mail_from, att.size, None), att.rcpts,
                                                        body)
        except SmtpDropped:
            return self._result((DROPPED,) * n, token, att, dropped=True)
        finally:
            if client is not None:
                await client.close()
        return self._result(replies, token, att, data=data)

    async def _pooled(self, key: tuple[str, str, str], client_ip: str, server_ip: str, helo: str,
                      ctx: MailContext) -> SmtpClient | None:
        """The open connection for ``key``, opened (PROXY header, EHLO) when there is none."""
        assert self.sink is not None
        client = self._pool.get(key)
        if client is not None and client.alive:
            return client
        if client is not None:
            await self._discard(key)
        self.stats["connections"] += 1
        header = proxy_header(client_ip, server_ip, message_id=ctx.message_id, attempt=ctx.attempt, now=ctx.now,
                              domain=ctx.domain, kind=ctx.kind, token="", secret=self.sink.proxy_secret)
        try:
            client, r = await SmtpClient.open(self.sink.proxy_port, header)
        except SmtpDropped:
            return None
        try:
            if r.ok:
                r = await client.cmd(f"EHLO {helo}")
        except SmtpDropped:
            r = DROPPED
        if not r.ok or XMAILSIM not in r.text.upper().split("\n"):
            await client.close()
            return None
        self._pool[key] = client
        return client

    async def _discard(self, key: tuple[str, str, str]) -> None:
        client = self._pool.pop(key, None)
        if client is not None:
            await client.close()

    def _result(self, replies: tuple[Reply, ...], token: str, att: Attempt, *, data: bool = False,
                dropped: bool = False) -> AttemptResult:
        assert self.sink is not None
        rec = self.sink.pop_record(token)
        if rec is not None and rec.held is not None:
            self._held[(att.message_id, att.domain, att.attempt)] = rec.held
        delay = rec.delay if rec is not None else 0
        spf = rec.spf_result if rec is not None else None
        expl = rec.spf_explanation if rec is not None else ""
        if dropped:
            return AttemptResult(replies, None, spf, expl, delay)
        if not data:
            return AttemptResult(replies, None, None, delay=delay)
        return AttemptResult(replies, rec.folder if rec is not None else None, spf, expl, delay)

    def settle(self, att: Attempt, result: AttemptResult, message_ids: Sequence[str], at: int) -> None:
        """A slow transaction's 250 is applied at ``at``: the sink stores its copies (and writes the
        Maildir files) now, with that time — as memory mode files them. Held copies never settled
        (the run ended inside the delay) are never stored."""
        fns = [fn for mid in message_ids
               if (fn := self._held.pop((mid, att.domain, att.attempt), None)) is not None]
        if fns:
            self._run(self._file_held(fns, at))

    async def _file_held(self, fns: list[Callable[[int], list[Callable[[], object]]]], at: int) -> None:
        """On the sink's loop, the only thread touching the receiver's store."""
        assert self.sink is not None
        for fn in fns:
            for job in fn(at):
                self.sink.store_job(job)

    # -- bounces ------------------------------------------------------------------------------
    def deliver_dsn(self, dsn: Dsn) -> None:
        """§8: straight into the sender's mailbox on the sink — no MX lookup, no SPF filing."""
        assert self.sink is not None
        self.dsns.append(dsn)
        if not dsn.to:
            self.store.file(dsn.to, "bounce", dsn.message_id, dsn.now)
            return
        steps = self._run(bounded(self._dsn(dsn)))
        bad = [s for s in steps if not s.ok]
        if bad:
            raise RuntimeError(f"sink refused the DSN {dsn.message_id} for {dsn.to}: {bad[0].line()}")

    async def _dsn(self, dsn: Dsn) -> list[Reply]:
        assert self.sink is not None
        helo = self.port.scenario.platform.helo
        domain = dsn.to.rpartition("@")[2]
        token = f"d{next(self._tokens)}"
        ctx = MailContext(dsn.message_id, 1, dsn.now, domain, "dsn", token)
        mail = mail_line("", None, ctx)
        if self.reuse and len(mail) <= PROXY_MAIL_LINE_LIMIT:
            key = ("dsn", LOOPBACK, helo)
            for _ in range(2):
                client = await self._pooled(key, LOOPBACK, LOOPBACK, helo, ctx)
                if client is None:
                    break
                try:
                    replies, _, _ = await client.transaction(mail, (dsn.to,), dsn.render)
                except SmtpDropped:
                    await self._discard(key)
                    if self.sink.pop_record(token) is None:
                        continue
                    return [DROPPED]
                self.sink.pop_record(token)
                return list(replies)
        header = proxy_header(LOOPBACK, LOOPBACK, message_id=dsn.message_id, now=dsn.now, domain=domain,
                              kind="dsn", token="", secret=self.sink.proxy_secret)
        client, greeting = await SmtpClient.open(self.sink.proxy_port, header)
        try:
            steps = [greeting, await client.cmd(f"EHLO {helo}"),
                     await client.cmd("MAIL FROM:<>"), await client.cmd(f"RCPT TO:<{dsn.to}>")]
            steps.append(await client.data(dsn.render()))
            return steps
        finally:
            await client.close()

    # -- the end ------------------------------------------------------------------------------
    async def _close_pool(self) -> None:
        for key in list(self._pool):
            await self._discard(key)

    def close(self) -> None:
        """Stop the sink (every Maildir file written: a failed write raises here) and the DNS server."""
        self._held.clear()  # the run ended inside these messages' delay: never stored
        try:
            if self.sink is not None:
                sink, self.sink = self.sink, None
                if self._pool and sink.loop is not None:
                    with contextlib.suppress(Exception):
                        asyncio.run_coroutine_threadsafe(bounded(self._close_pool()), sink.loop).result()
                sink.stop()
        finally:
            self.dns_server.stop()
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None


def _with_id(att: Attempt, message_id: str) -> Attempt:
    # dataclasses.replace re-runs __init__ with every field; this is the hot path of a cohort
    return Attempt(att.now, message_id, att.attempt, att.client_ip, att.helo, att.mail_from, att.domain, att.mx_host,
                   att.mx_ip, att.rcpts, att.render, att.size)


def wire_transport(port: EnginePort) -> WireTransport:
    """The transport factory ``simulate(scn, transport=wire_transport)`` takes.

    The sink's Maildir is a temporary directory removed at the end of the run —
    in RAM (``/dev/shm``) when there is room, see :func:`scratch_root` — unless
    ``MAILSIM_WIRE_MAILDIR`` names a directory to keep it in.
    """
    keep = os.environ.get("MAILSIM_WIRE_MAILDIR") or None
    return WireTransport(port, maildir=keep)
