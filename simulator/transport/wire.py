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
import re
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from email.utils import format_datetime
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
    xmailsim_value,
)
from simulator.transport.base import Attempt, AttemptResult, Dsn, EnginePort

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
DNS_TIMEOUT = 1.0  # seconds a DNS question may take on loopback before it counts as a timeout
SMTP_TIMEOUT = 60.0
_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?: (.*))?$", re.DOTALL)


class SmtpDropped(Exception):
    """The server closed the connection without a reply."""


def parse_reply(code: int, msg: bytes | str) -> Reply:
    """An smtplib ``(code, message)`` as a ``Reply`` (enhanced code split off the text)."""
    text = msg.decode("utf-8", "surrogateescape") if isinstance(msg, bytes) else msg
    if code <= 0:
        return DROPPED
    m = _ENHANCED.match(text)
    if m is None:
        return Reply(code, "", text)
    return Reply(code, m.group(1), m.group(2) or "")


def _wire_body(body: bytes) -> bytes:
    """DATA payload: CRLF line ends (RFC 5321 §2.3.8), dot-stuffed (§4.5.2), terminated."""
    data = _EOL.sub(b"\r\n", body)
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


# --- the invoice message, fast ---------------------------------------------------------------
# ``render_invoice`` (the engine's) builds the message with the ``email`` package: ~1-3 ms a
# message, more than the whole SMTP transaction. For the plain inputs the engine produces it is a
# fixed layout; this renders that layout directly and returns None whenever an input could make
# the ``email`` package fold, encode or re-spell a header (the caller then renders the slow way).
_ATOM = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
_PLAIN_ADDR = re.compile(rf"{_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
_PLAIN_MID = re.compile(rf"<{_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z")
_PLAIN_INVOICE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
_MAX_LINE = 78  # email.policy.default.max_line_length: longer header lines would be folded


def fast_invoice(*, message_id: str, sender: str, rcpts: tuple[str, ...], invoice: str, start: datetime,
                 now: int) -> bytes | None:
    """``render_invoice``'s exact bytes for plain inputs, else None (tests compare the two)."""
    if not (_PLAIN_INVOICE.match(invoice) and _PLAIN_MID.match(message_id) and _PLAIN_ADDR.match(sender)
            and rcpts and all(_PLAIN_ADDR.match(r) for r in rcpts)):
        return None
    to = ", ".join(rcpts)
    body = f"Please find invoice {invoice} attached."
    date = format_datetime(start + timedelta(seconds=now))
    if max(len(sender) + 6, len(to) + 4, len(invoice) + 17, len(message_id) + 12, len(date) + 6,
           len(body)) > _MAX_LINE:
        return None
    return (f"From: {sender}\nTo: {to}\nSubject: Invoice {invoice}\nMessage-ID: {message_id}\nDate: {date}\n"
            f"Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: 7bit\nMIME-Version: 1.0\n"
            f"\n{body}\n").encode("ascii")


# a run's throw-away Maildir goes to RAM when there is room for it: creating a file costs ~30 µs
# there and 0.1-1.5 ms on a busy disk, which is the whole budget of an SMTP transaction
RAM_DIRS = ("/dev/shm",)
TMPFS_FILE_BYTES = 8192  # what one small message costs on tmpfs (a page for the data, the inode, the dentry)


def scratch_root(expected_files: int) -> str | None:
    """Where to make a run's temporary Maildir: a RAM-backed directory with room for
    ``expected_files`` (four times over), else None (the system's temporary directory)."""
    need = 4 * TMPFS_FILE_BYTES * max(expected_files, 1)
    for d in RAM_DIRS:
        try:
            st = os.statvfs(d)
        except OSError:
            continue
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize > need:
            return d
    return None


async def _bounded(coro: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wait_for(coro, SMTP_TIMEOUT)


class _Client:
    """A minimal asyncio SMTP client; it runs on the sink's own event loop (no thread hand-offs)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.dirty = False  # a transaction stopped before DATA: RSET before the next MAIL
        self.broken = False  # an exception left a transaction half-way: never reuse

    @classmethod
    async def open(cls, port: int, header: bytes) -> tuple[_Client, Reply]:
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError as e:
            raise SmtpDropped(str(e)) from None
        client = cls(reader, writer)
        writer.write(header)
        return client, await client.reply()

    @property
    def alive(self) -> bool:
        return not (self.broken or self.writer.is_closing() or self.reader.at_eof())

    async def reply(self) -> Reply:
        """One (possibly multi-line) reply, lines joined with "\n" as smtplib does."""
        texts: list[str] = []
        code = ""
        while True:
            try:
                raw = await self.reader.readline()
            except (OSError, ValueError) as e:
                raise SmtpDropped(str(e)) from None
            if not raw.endswith(b"\n"):
                raise SmtpDropped("connection closed")
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            code = line[:3]
            texts.append(line[4:])
            if line[3:4] != "-":
                break
        if not code.isdigit():
            raise SmtpDropped(f"not an SMTP reply: {raw!r}")
        return parse_reply(int(code), "\n".join(texts))

    async def send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (OSError, RuntimeError) as e:
            raise SmtpDropped(str(e)) from None

    async def cmd(self, line: str) -> Reply:
        await self.send(line.encode("utf-8", "surrogateescape") + b"\r\n")
        return await self.reply()

    async def data(self, body: bytes) -> Reply:
        r = await self.cmd("DATA")
        if r.code != 354:
            return r
        await self.send(_wire_body(body))
        return await self.reply()

    def _group(self, mail: str, rcpts: Sequence[str]) -> bytes:
        """The pipelined commands of one transaction (``RSET`` first when the last one stopped early)."""
        lines = ["RSET"] if self.dirty else []
        lines.append(mail)
        lines += [f"RCPT TO:<{r}>" for r in rcpts]
        lines.append("DATA")
        self.dirty = True
        return "".join(x + "\r\n" for x in lines).encode("utf-8", "surrogateescape")

    async def transaction(self, mail: str, rcpts: Sequence[str], body: Callable[[], bytes], *,
                          sent: bool = False, then: tuple[str, Sequence[str]] | None = None,
                          ) -> tuple[tuple[Reply, ...], bool, bool]:
        try:
            return await self._transaction(mail, rcpts, body, sent, then)
        except BaseException:
            self.broken = True  # whatever the server thinks the state is, this connection is done
            self.writer.close()
            raise

    async def _transaction(self, mail: str, rcpts: Sequence[str], body: Callable[[], bytes], sent: bool,
                           then: tuple[str, Sequence[str]] | None) -> tuple[tuple[Reply, ...], bool, bool]:
        """``mail``, one RCPT per recipient and DATA pipelined, then the message if DATA got 354.

        In :func:`run_transaction`'s terms: a refused MAIL decides every recipient; a RCPT
        refusal decides its recipient; DATA's final reply decides the accepted ones.
        ``sent``: the commands already went out (behind the previous message). ``then``:
        the next transaction's (MAIL line, recipients), sent right behind this message's
        content when it gets that far. Returns (replies, whether the content was sent,
        whether ``then`` was sent); SmtpDropped when the connection drops.
        """
        n = len(rcpts)
        rset = self.dirty and not sent  # commands sent ahead follow a content: no RSET
        if not sent:
            await self.send(self._group(mail, rcpts))
        if rset:
            r = await self.reply()
            if not r.ok:
                raise SmtpDropped(f"RSET refused: {r.line()}")
        r = await self.reply()
        if not r.ok:
            for _ in range(n + 1):  # the pipelined RCPTs and DATA: 503, nothing reached the receiver
                await self.reply()
            return (r,) * n, False, False
        replies: list[Reply | None] = []
        for _ in range(n):
            rr = await self.reply()
            replies.append(None if rr.ok else rr)
        d = await self.reply()
        if all(x is not None for x in replies):  # DATA got 503: no recipient left
            return tuple(x for x in replies if x is not None), False, False
        if d.code != 354:
            return tuple(d if x is None else x for x in replies), False, False
        payload = _wire_body(body())
        self.dirty = False  # the content ends the transaction, whatever the reply
        if then is not None:
            payload += self._group(*then)
        await self.send(payload)
        v = await self.reply()
        return tuple(v if x is None else x for x in replies), True, then is not None

    async def close(self) -> None:
        with contextlib.suppress(SmtpDropped, OSError, asyncio.TimeoutError):
            if self.alive:
                await asyncio.wait_for(self.cmd("QUIT"), SMTP_TIMEOUT)
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), SMTP_TIMEOUT)


def _mail_line(sender: str, size: int | None, ctx: MailContext | None) -> str:
    line = f"MAIL FROM:<{sender}>"
    if size is not None:
        line += f" SIZE={size}"
    if ctx is not None:
        line += f" {XMAILSIM}={xmailsim_value(ctx)}"
    return line


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
        self._pool: dict[tuple[str, str, str], _Client] = {}
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
            return self._run(_bounded(self._attempt(att, self._body(att, att.message_id))))
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
        mails = [_mail_line(a.mail_from, a.size, MailContext(a.message_id, a.attempt, a.now, a.domain, "msg", t))
                 for a, t in zip(atts, tokens, strict=True)]
        pooled = [not self._needs_own_connection(a) and len(m) <= PROXY_MAIL_LINE_LIMIT
                  for a, m in zip(atts, mails, strict=True)]
        out: list[AttemptResult] = []
        client: _Client | None = None  # set while the next message's commands are already on it
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
                out.append(await _bounded(self._own_connection(att, bodies[i], token)))
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
        mail = _mail_line(att.mail_from, att.size, MailContext(att.message_id, att.attempt, att.now, att.domain,
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
        client: _Client | None = None
        try:
            client, r = await _Client.open(self.sink.proxy_port, header)
            if r.ok:
                r = await client.cmd(f"EHLO {att.helo}")
            if r.code == 0:
                raise SmtpDropped("no reply")
            if not r.ok:
                return self._result((r,) * n, token, att)
            replies, data, _ = await client.transaction(_mail_line(att.mail_from, att.size, None), att.rcpts,
                                                        body)
        except SmtpDropped:
            return self._result((DROPPED,) * n, token, att, dropped=True)
        finally:
            if client is not None:
                await client.close()
        return self._result(replies, token, att, data=data)

    async def _pooled(self, key: tuple[str, str, str], client_ip: str, server_ip: str, helo: str,
                      ctx: MailContext) -> _Client | None:
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
            client, r = await _Client.open(self.sink.proxy_port, header)
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
        steps = self._run(_bounded(self._dsn(dsn)))
        bad = [s for s in steps if not s.ok]
        if bad:
            raise RuntimeError(f"sink refused the DSN {dsn.message_id} for {dsn.to}: {bad[0].line()}")

    async def _dsn(self, dsn: Dsn) -> list[Reply]:
        assert self.sink is not None
        helo = self.port.scenario.platform.helo
        domain = dsn.to.rpartition("@")[2]
        token = f"d{next(self._tokens)}"
        ctx = MailContext(dsn.message_id, 1, dsn.now, domain, "dsn", token)
        mail = _mail_line("", None, ctx)
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
        client, greeting = await _Client.open(self.sink.proxy_port, header)
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
                        asyncio.run_coroutine_threadsafe(_bounded(self._close_pool()), sink.loop).result()
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
