"""The wire transport: the engine's outgoing MTA speaks real SMTP to the loopback sink.

``simulate(scn, transport=wire_transport)`` (``mailsim run FILE --transport
wire``) starts, for the run:

- a loopback DNS server (:class:`~simulator.net.dns_server.DnsServerThread`)
  serving the engine's live ``Zone`` — timeline ``dns_set``/``dns_delete`` are
  seen at once — with the scenario's DNS faults judged at the virtual time;
- the engine's :class:`~simulator.engine.dnsview.DnsView` is replaced by one
  resolving through a :class:`~simulator.net.resolver.WireResolver` pointed at
  that server, so MX routes and the platform's SPF gate come over UDP/TCP;
- a :class:`~simulator.net.sink.Sink` with the scenario's ``mailboxes:``,
  ``faults:`` and seed, whose receiver evaluates SPF through its own
  ``WireResolver`` against the same DNS server and files into the engine's own
  :class:`~simulator.net.receiver.MailStore` (so the mailbox counts the run
  reports are what the sink stored), and writes every message to a Maildir.

Each :meth:`WireTransport.attempt` is one SMTP session on the sink's PROXY
listener, spoken by a small asyncio client scheduled on the sink's own event
loop (so a request/reply exchange is not a thread hand-off each time; the
engine's thread waits once per session): a PROXY v2 header with the simulated client IP (the MX address the
engine resolved as destination — every fake MX address leads to this one
sink) and TLVs carrying the message id, attempt, virtual ``now``, recipient
domain and a session token; then EHLO, MAIL FROM, RCPT TO for each recipient,
DATA with the rendered message. The real replies are parsed back into
``Reply`` objects exactly as :func:`~simulator.transport.base.run_transaction`
would have produced them; a dropped connection is code 0. What SMTP cannot
carry — the virtual seconds a ``slow`` fault added, the receiver's SPF verdict
and the folder — is read from the sink's session record for the token.

Virtual time stays virtual: ``now`` travels in the PROXY header, nobody sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from simulator.engine.dnsview import DnsView
from simulator.net.dns_server import DnsServerThread
from simulator.net.receiver import DROPPED, Reply
from simulator.net.resolver import WireResolver
from simulator.net.sink import Sink, proxy_header
from simulator.transport.base import Attempt, AttemptResult, Dsn

if TYPE_CHECKING:
    from simulator.engine.sim import Engine

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


async def _bounded(coro: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wait_for(coro, SMTP_TIMEOUT)


class _Client:
    """A minimal asyncio SMTP client; it runs on the sink's own event loop (no thread hand-offs)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, header: bytes) -> tuple[_Client, Reply]:
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError as e:
            raise SmtpDropped(str(e)) from None
        client = cls(reader, writer)
        writer.write(header)
        return client, await client.reply()

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

    async def cmd(self, line: str) -> Reply:
        try:
            self.writer.write(line.encode("utf-8", "surrogateescape") + b"\r\n")
            await self.writer.drain()
        except OSError as e:
            raise SmtpDropped(str(e)) from None
        return await self.reply()

    async def data(self, body: bytes) -> Reply:
        r = await self.cmd("DATA")
        if r.code != 354:
            return r
        try:
            self.writer.write(_wire_body(body))
            await self.writer.drain()
        except OSError as e:
            raise SmtpDropped(str(e)) from None
        return await self.reply()

    async def close(self) -> None:
        with contextlib.suppress(SmtpDropped, OSError):
            if not self.writer.is_closing():
                await asyncio.wait_for(self.cmd("QUIT"), SMTP_TIMEOUT)
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), SMTP_TIMEOUT)


class WireTransport:
    """Real SMTP to a loopback sink, DNS from a loopback server; see the module docstring."""

    def __init__(self, engine: Engine, *, maildir: str | Path | None = None,
                 dns_timeout: float = DNS_TIMEOUT) -> None:
        self.engine = engine
        scn = engine.scn
        self._now: int | None = None
        self._tokens = itertools.count(1)
        self.dns_server = DnsServerThread(engine.zone, LOOPBACK, 0, faults=scn.faults, seed=scn.seed,
                                          clock=self._clock)
        self.dns_server.start()
        self.sink: Sink | None = None
        try:
            port = self.dns_server.port
            # the engine's own questions (MX routes, the platform's SPF gate) go over the wire too
            engine.dns = DnsView(engine.zone, scn.faults, scn.seed,
                                 resolver=WireResolver(LOOPBACK, port, timeout=dns_timeout))
            sink_dns = DnsView(engine.zone, scn.faults, scn.seed,
                               resolver=WireResolver(LOOPBACK, port, timeout=dns_timeout))
            # one client (this thread) waiting for every reply: stage work inline on the sink's loop
            self.sink = Sink(scn, maildir, host=LOOPBACK, store=engine.store, spf=sink_dns.spf, plain=False,
                             inline=True)
            self.sink.start()
        except BaseException:
            self.close()
            raise
        engine.receiver = self.sink.receiver
        self.store = engine.store
        self.dsns: list[Dsn] = []

    def _clock(self) -> int:
        """The virtual time the DNS server judges faults at: the attempt's, else the engine's last question."""
        return self._now if self._now is not None else self.engine.dns.now

    # -- one SMTP session -------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a client coroutine on the sink's loop and wait for it (one hand-off per session)."""
        assert self.sink is not None and self.sink.loop is not None
        return asyncio.run_coroutine_threadsafe(_bounded(coro), self.sink.loop).result()

    def attempt(self, att: Attempt) -> AttemptResult:
        n = len(att.rcpts)
        token = f"a{next(self._tokens)}"
        header = proxy_header(att.client_ip, att.mx_ip, message_id=att.message_id, attempt=att.attempt,
                              now=att.now, domain=att.domain, kind="msg", token=token)
        self._now = att.now
        try:
            replies, data = self._run(self._session(header, att))
        except SmtpDropped:
            return self._result((DROPPED,) * n, token, dropped=True)
        finally:
            self._now = None
        return self._result(replies, token, data=data)

    async def _session(self, header: bytes, att: Attempt) -> tuple[tuple[Reply, ...], bool]:
        """The transaction, in :func:`run_transaction`'s order; SmtpDropped for a dropped connection."""
        assert self.sink is not None
        n = len(att.rcpts)
        client, r = await asyncio.wait_for(_Client.open(self.sink.proxy_port, header), SMTP_TIMEOUT)
        try:
            if r.ok:
                r = await client.cmd(f"EHLO {att.helo}")
            if r.ok:
                r = await client.cmd(f"MAIL FROM:<{att.mail_from}>")
            if r.code == 0:
                raise SmtpDropped("no reply")
            if not r.ok:
                return (r,) * n, False
            replies: list[Reply | None] = []
            for rcpt in att.rcpts:
                rr = await client.cmd(f"RCPT TO:<{rcpt}>")
                replies.append(None if rr.ok else rr)
            if all(x is not None for x in replies):
                return tuple(x for x in replies if x is not None), False
            v = await client.data(att.render())
            return tuple(v if x is None else x for x in replies), True
        finally:
            await client.close()

    def _result(self, replies: tuple[Reply, ...], token: str, *, data: bool = False,
                dropped: bool = False) -> AttemptResult:
        assert self.sink is not None
        rec = self.sink.pop_record(token)
        delay = rec.delay if rec is not None else 0
        spf = rec.spf_result if rec is not None else None
        expl = rec.spf_explanation if rec is not None else ""
        if dropped:
            return AttemptResult(replies, None, spf, expl, delay)
        if not data:
            return AttemptResult(replies, None, None, delay=delay)
        return AttemptResult(replies, rec.folder if rec is not None else None, spf, expl, delay)

    # -- bounces ------------------------------------------------------------------------------
    def deliver_dsn(self, dsn: Dsn) -> None:
        """§8: straight into the sender's mailbox on the sink — no MX lookup, no SPF filing."""
        assert self.sink is not None
        self.dsns.append(dsn)
        if not dsn.to:
            self.store.file(dsn.to, "bounce", dsn.message_id, dsn.now)
            return
        header = proxy_header(LOOPBACK, LOOPBACK, message_id=dsn.message_id, now=dsn.now,
                              domain=dsn.to.rpartition("@")[2], kind="dsn", token="")
        steps = self._run(self._dsn_session(header, dsn))
        bad = [s for s in steps if not s.ok]
        if bad:
            raise RuntimeError(f"sink refused the DSN {dsn.message_id} for {dsn.to}: {bad[0].line()}")

    async def _dsn_session(self, header: bytes, dsn: Dsn) -> list[Reply]:
        assert self.sink is not None
        client, greeting = await asyncio.wait_for(_Client.open(self.sink.proxy_port, header), SMTP_TIMEOUT)
        try:
            steps = [greeting, await client.cmd(f"EHLO {self.engine.scn.platform.helo}"),
                     await client.cmd("MAIL FROM:<>"), await client.cmd(f"RCPT TO:<{dsn.to}>")]
            steps.append(await client.data(dsn.render()))
            return steps
        finally:
            await client.close()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        self.dns_server.stop()


def wire_transport(engine: Engine) -> WireTransport:
    """The transport factory ``simulate(scn, transport=wire_transport)`` takes.

    The sink's Maildir is a temporary directory removed at the end of the run,
    unless ``MAILSIM_WIRE_MAILDIR`` names a directory to keep it in.
    """
    keep = os.environ.get("MAILSIM_WIRE_MAILDIR") or None
    return WireTransport(engine, maildir=keep)
