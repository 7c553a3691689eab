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
listener: a PROXY v2 header with the simulated client IP (the MX address the
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

import itertools
import os
import re
import smtplib
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.engine.dnsview import DnsView
from simulator.net.dns_server import DnsServerThread
from simulator.net.receiver import DROPPED, Reply
from simulator.net.resolver import WireResolver
from simulator.net.sink import Sink, proxy_header
from simulator.transport.base import Attempt, AttemptResult, Dsn

if TYPE_CHECKING:
    from simulator.engine.sim import Engine

LOOPBACK = "127.0.0.1"
DNS_TIMEOUT = 1.0  # seconds a DNS question may take on loopback before it counts as a timeout
SMTP_TIMEOUT = 60.0
_BARE_LF = re.compile(rb"(?<!\r)\n")
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


class _ProxySMTP(smtplib.SMTP):
    """smtplib's client that sends a PROXY header first on the socket it opens."""

    def __init__(self, header: bytes, *, timeout: float = SMTP_TIMEOUT) -> None:
        self._proxy_header = header
        super().__init__(timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout)
        sock.sendall(self._proxy_header)
        return sock


def _checked(code: int, msg: bytes) -> Reply:
    if code == -1:
        raise SmtpDropped(msg)
    return parse_reply(code, msg)


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
            self.sink = Sink(scn, maildir, host=LOOPBACK, store=engine.store, spf=sink_dns.spf, plain=False)
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
    def _open(self, header: bytes) -> tuple[_ProxySMTP, Reply]:
        assert self.sink is not None
        client = _ProxySMTP(header)
        try:
            code, msg = client.connect(LOOPBACK, self.sink.proxy_port)
        except smtplib.SMTPServerDisconnected:
            client.close()
            raise SmtpDropped("no greeting") from None
        return client, parse_reply(code, msg)

    def attempt(self, att: Attempt) -> AttemptResult:
        assert self.sink is not None
        n = len(att.rcpts)
        token = f"a{next(self._tokens)}"
        header = proxy_header(att.client_ip, att.mx_ip, message_id=att.message_id, attempt=att.attempt,
                              now=att.now, domain=att.domain, kind="msg", token=token)
        self._now = att.now
        client: _ProxySMTP | None = None
        try:
            try:
                client, greeting = self._open(header)
                r = greeting
                if r.ok:
                    r = _checked(*client.ehlo(att.helo))
                if r.ok:
                    r = _checked(*client.mail(att.mail_from))
                if not r.ok:
                    return self._result((r,) * n, token)
                replies: list[Reply | None] = []
                for rcpt in att.rcpts:
                    rr = _checked(*client.rcpt(rcpt))
                    replies.append(None if rr.ok else rr)
                if all(r is not None for r in replies):
                    return self._result(tuple(r for r in replies if r is not None), token)
                v = self._data(client, att.render())
            except (SmtpDropped, smtplib.SMTPServerDisconnected, ConnectionError):
                return self._result((DROPPED,) * n, token, dropped=True)
            final = tuple(v if r is None else r for r in replies)
            return self._result(final, token, data=True)
        finally:
            self._now = None
            if client is not None:
                self._quit(client)

    @staticmethod
    def _data(client: _ProxySMTP, body: bytes) -> Reply:
        try:
            # smtplib sends bytes as they are: the wire wants CRLF line ends (RFC 5321 §2.3.8)
            code, msg = client.data(_BARE_LF.sub(b"\r\n", body))
        except smtplib.SMTPDataError as e:  # DATA itself refused (never by this sink)
            return parse_reply(e.smtp_code, e.smtp_error)
        return _checked(code, msg)

    @staticmethod
    def _quit(client: _ProxySMTP) -> None:
        try:
            if client.sock is not None:
                client.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            client.close()

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
        client, greeting = self._open(header)
        try:
            steps = [greeting]
            steps.append(_checked(*client.ehlo(self.engine.scn.platform.helo)))
            steps.append(_checked(*client.mail("")))
            steps.append(_checked(*client.rcpt(dsn.to)))
            steps.append(self._data(client, dsn.render()))
            bad = [s for s in steps if not s.ok]
            if bad:
                raise RuntimeError(f"sink refused the DSN {dsn.message_id} for {dsn.to}: {bad[0].line()}")
        finally:
            self._quit(client)

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
