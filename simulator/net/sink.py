"""The SMTP sink: the recipients' mail servers over real SMTP (aiosmtpd).

Every decision is the :class:`~simulator.net.receiver.ReceivingServer`'s — the
same state machine the memory transport drives — so a scenario gets the same
replies in memory and over the wire. This module only carries SMTP:

- aiosmtpd's hooks (``handle_PROXY/EHLO/HELO/MAIL/RCPT/DATA/RSET``) call the
  receiver's stages; the greeting (the ``connect`` stage: outages, faults) is
  decided in :meth:`SinkSMTP.push` because aiosmtpd has no hook for it;
- every reply carries an RFC 3463 enhanced status code, aiosmtpd's own ones
  included (``500 Error: bad syntax`` goes out as ``500 5.5.2 Error: bad
  syntax``), except the greeting, the EHLO/HELO answer and ``354`` (RFC 2034);
- the DSN parameters (``RET``/``ENVID`` on MAIL, ``NOTIFY``/``ORCPT`` on RCPT)
  and ``SIZE``/``BODY=8BITMIME`` are accepted instead of aiosmtpd's 555;
- pipelined commands (RFC 2920) get their replies in one write; after a fault
  dropped the connection, commands already buffered behind it reach nothing;
- each accepted message is written once per recipient in Maildir layout,
  ``DIR/<recipient>/new/`` (junk: ``DIR/<recipient>/.Junk/new/``), via ``tmp/``
  and a rename, no fsync; the file name is derived from (time, message id,
  recipient). A message is stored when its 250 goes out: after a ``slow``
  fault's delay (really waited on the plain listener; on the PROXY listener the
  simulator's MTA settles it at the virtual time it applies the reply, see
  :class:`SessionRecord` ``held``).

Two listeners (DESIGN §7):

- the **PROXY listener** for the simulator's own MTA: every connection starts
  with a PROXY protocol v2 header whose source address is the simulated
  client IP and whose TLVs (type ``0xE0``–``0xE5``, see :func:`proxy_header`)
  carry the message id, attempt, virtual time ``now``, recipient domain, kind
  (message or DSN) and a session token, for the greeting and HELO. Each
  transaction on the connection may carry its own context as ``MAIL FROM:<...>
  XMAILSIM=<hex JSON>`` (:class:`MailContext`, advertised in EHLO on this
  listener only), so one connection serves many messages. So SPF sees the
  scenario's sending IP, the fault draws are keyed exactly as in memory, and
  the clock is virtual;
- the **plain listener** for ordinary clients (swaks, smtplib, smtp-source):
  the client IP is the peer's, the clock is the wall clock (seconds since the
  sink started, or an injected ``clock``), the message id is a counter until
  DATA, then the Message-ID header; attempt is always 1. A plain connection is
  not "for" one domain: connect/HELO/MAIL faults apply only when they have no
  ``target``; RCPT and DATA faults and policies use the recipient's domain. The
  plain listener also enforces each domain's ``size_limit`` on the declared
  ``SIZE`` at RCPT and on the received size at DATA (552 5.3.4); ``slow``
  faults really wait there. A null-sender ``multipart/report`` message on the
  plain listener is filed as a bounce (§8), like a DSN on the PROXY listener.

The :class:`Sink` runs both listeners on an event loop in its own thread. The
receiver's stages run on that thread, so its state (greylist, quotas, store) is
touched by one thread; the Maildir files are written by worker threads before
the 250 goes out (or on the loop, ``inline``, or behind the replies,
``write_behind``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.parser
import email.policy
import ipaddress
import itertools
import json
import os
import queue
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from email.message import Message
from functools import partial
from hashlib import blake2b
from pathlib import Path
from types import TracebackType
from typing import Any, AnyStr, TypeVar

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session

from simulator.domain.entities import MailboxDomain
from simulator.net.receiver import (
    TOO_BIG,
    MailStore,
    ReceivingServer,
    Reply,
    SpfFunc,
    Transaction,
)
from simulator.scenario.model import Scenario

T = TypeVar("T")

DEFAULT_HOSTNAME = "mx.mailsim.test"
DEFAULT_SIZE_LIMIT = MailboxDomain(domain="*").size_limit
IDENT = "ESMTP mailsim"
WRITERS = 2  # threads writing Maildir files for the plain listener

# PROXY v2 TLV types in the application range (0xE0-0xEF) carrying the simulator's context.
TLV_MESSAGE_ID = 0xE0
TLV_ATTEMPT = 0xE1
TLV_NOW = 0xE2
TLV_DOMAIN = 0xE3
TLV_KIND = 0xE4  # b"msg" | b"dsn"
TLV_TOKEN = 0xE5  # opaque key of the session record the wire transport reads back
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# ESMTP keyword and MAIL FROM parameter of the PROXY listener: the per-transaction context.
XMAILSIM = "XMAILSIM"
# A MAIL FROM line may be this long on the PROXY listener (aiosmtpd reads at most 1001 bytes a line).
PROXY_MAIL_LINE_LIMIT = 998

# a plain reverse-/forward-path and what follows it: "<local@domain> PARAMS"
_PLAIN_PATH = re.compile(r"<([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
                         r"(?:[ \t]+(?![ \t(])|\Z)(.*)\Z", re.DOTALL)
_ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?: |$)")
_DEFAULT_ENHANCED: dict[int, str] = {
    500: "5.5.2", 501: "5.5.4", 502: "5.5.1", 503: "5.5.1", 504: "5.5.4", 552: "5.3.4", 553: "5.1.3",
    555: "5.5.4", 421: "4.3.0",
}
DSN_MAIL_PARAMS = frozenset({"RET", "ENVID"})
DSN_RCPT_PARAMS = frozenset({"NOTIFY", "ORCPT"})
_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def reply_line(r: Reply) -> str:
    """A receiver ``Reply`` as the SMTP line the client sees."""
    return f"{r.code} {r.enhanced} {r.text}" if r.enhanced else f"{r.code} {r.text}"


def with_enhanced(line: str) -> str:
    """Add an RFC 3463 code to a reply line that lacks one (aiosmtpd's built-in replies)."""
    code_s, sep, text = line.partition(" ")
    if not (len(code_s) == 3 and code_s.isdigit()) or _ENHANCED_RE.match(text):
        return line
    code = int(code_s)
    if code == 500 and "not recognized" in text:
        enh = "5.5.1"
    else:
        enh = _DEFAULT_ENHANCED.get(code, f"{code // 100}.0.0")
    return f"{code_s} {enh} {text}" if sep else f"{code_s} {enh}"


def proxy_header(
    client_ip: str,
    server_ip: str = "",
    *,
    message_id: str = "",
    attempt: int = 1,
    now: int = 0,
    domain: str = "",
    kind: str = "msg",
    token: str = "",
    client_port: int = 25000,
    server_port: int = 25,
) -> bytes:
    """A PROXY protocol v2 header (TCP, ``PROXY`` command) with the simulator's TLVs.

    ``server_ip`` is the MX address the engine resolved; when it is missing or
    of the other family, the unspecified address of the client's family is sent.
    """
    src = ipaddress.ip_address(client_ip)
    try:
        dst: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(server_ip)
    except ValueError:
        dst = ipaddress.ip_address("0.0.0.0" if src.version == 4 else "::")
    if dst.version != src.version:
        dst = ipaddress.ip_address("0.0.0.0" if src.version == 4 else "::")
    fam = 0x11 if src.version == 4 else 0x21  # AF_INET|STREAM, AF_INET6|STREAM
    addrs = src.packed + dst.packed + struct.pack("!HH", client_port, server_port)
    tlvs = b""
    for typ, val in ((TLV_MESSAGE_ID, message_id), (TLV_ATTEMPT, str(attempt)), (TLV_NOW, str(now)),
                     (TLV_DOMAIN, domain), (TLV_KIND, kind), (TLV_TOKEN, token)):
        raw = val.encode("utf-8", "surrogateescape")
        tlvs += struct.pack("!BH", typ, len(raw)) + raw
    body = addrs + tlvs
    return PROXY_V2_SIGNATURE + struct.pack("!BBH", 0x21, fam, len(body)) + body


@dataclass(frozen=True, slots=True)
class MailContext:
    """The simulator's per-transaction context, carried by ``MAIL FROM:<...> XMAILSIM=<value>``."""

    message_id: str
    attempt: int = 1
    now: int = 0
    domain: str = ""
    kind: str = "msg"  # "msg" | "dsn"
    token: str = ""


def xmailsim_value(ctx: MailContext) -> str:
    """The ``XMAILSIM`` parameter's value: the context as compact JSON (UTF-8), in hex.

    Hex because aiosmtpd upper-cases MAIL parameters and an esmtp-value may not hold
    ``=`` or spaces (RFC 5321 §4.1.2).
    """
    raw = json.dumps([ctx.message_id, ctx.attempt, ctx.now, ctx.domain, ctx.kind, ctx.token],
                     separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")
    return raw.hex().upper()


def parse_xmailsim(value: str) -> MailContext:
    """Decode an ``XMAILSIM`` value (any case); ValueError when it is not one."""
    try:
        raw = bytes.fromhex(value.strip())
        items = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"bad XMAILSIM value: {e}") from None
    if not (isinstance(items, list) and len(items) == 6):
        raise ValueError("bad XMAILSIM value: not a 6-item list")
    mid, attempt, now, domain, kind, token = items
    if not (isinstance(mid, str) and isinstance(domain, str) and isinstance(token, str)
            and type(attempt) is int and type(now) is int and kind in ("msg", "dsn")):
        raise ValueError("bad XMAILSIM value: wrong field types")
    return MailContext(mid, attempt, now, domain, kind, token)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One file the sink wrote: a message for one recipient, in one folder."""

    recipient: str
    folder: str  # "inbox" | "junk" | "bounce" (bounces are files in the inbox's new/)
    path: Path
    message_id: str
    mail_from: str
    client_ip: str
    helo: str
    spf: str | None  # the receiver's SPF result (None for a bounce)
    now: int  # the sink's clock when it was stored (virtual for the simulator's MTA)
    size: int

    def read(self) -> bytes:
        return self.path.read_bytes()

    def message(self) -> Message:
        return email.parser.BytesParser(policy=email.policy.default).parsebytes(self.read())


@dataclass(slots=True)
class SessionRecord:
    """What one PROXY session did, for the wire transport: what SMTP replies cannot carry."""

    token: str
    delay: int = 0
    spf_result: str | None = None
    spf_explanation: str = ""
    folder: str | None = None
    # a slow transaction's accepted copies, not yet stored: called with the time its 250 is applied
    # (the simulator's virtual clock), it files them and returns the Maildir writes (see ``_data``)
    held: Callable[[int], list[Callable[[], object]]] | None = None


def mailbox_dirname(address: str) -> str:
    """A recipient address as one safe directory name (lower-case, no path separators)."""
    name = address.strip().lower()
    name = "".join("_" if c in "/\\\x00" or ord(c) < 32 else c for c in name)
    if not name or name.startswith("."):
        name = "_" + name
    return name[:200]


class Maildir:
    """Writes messages Maildir style: ``tmp/`` then an atomic rename into ``new/``.

    No fsync: a message is durable once the kernel has it (the sink is a test
    double, not a mail store). Names are unique within the directory: the names
    already in ``new/`` are read once per folder, and a name is never reused; a
    clash with a file another writer made meanwhile in ``tmp/`` is caught by
    ``O_EXCL``. Threads may deliver at once (names are reserved under a lock,
    files are written outside it); one process per Maildir.
    """

    def __init__(self, root: Path, hostname: str = DEFAULT_HOSTNAME) -> None:
        self.root = root
        self.hostname = hostname.replace("/", "_").replace(":", "_")
        self._names: dict[str, set[str]] = {}  # folder dir -> names taken in new/ and tmp/
        self._lock = threading.Lock()

    def folder_dir(self, recipient: str, folder: str) -> Path:
        base = self.root / mailbox_dirname(recipient)
        return base / ".Junk" if folder == "junk" else base

    def _taken(self, d: str) -> set[str]:
        names = self._names.get(d)
        if names is None:
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            names = set(os.listdir(os.path.join(d, "new"))) | set(os.listdir(os.path.join(d, "tmp")))
            self._names[d] = names
        return names

    def deliver(self, recipient: str, folder: str, message_id: str, now: int, data: bytes) -> Path:
        d = str(self.folder_dir(recipient, folder))
        digest = blake2b(f"{message_id}\x00{recipient.lower()}".encode("utf-8", "surrogateescape"),
                         digest_size=8).hexdigest()
        stem = f"{now}.M{digest}"
        name = f"{stem}.{self.hostname}"
        n = 1
        while True:
            with self._lock:
                taken = self._taken(d)
                while name in taken:
                    n += 1
                    name = f"{stem}_{n}.{self.hostname}"
                taken.add(name)
            tmp = f"{d}/tmp/{name}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileExistsError:
                continue
            break
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        final = f"{d}/new/{name}"
        os.rename(tmp, final)
        return Path(final)


# --- aiosmtpd plumbing ------------------------------------------------------------------------


class SinkSession(Session):
    """aiosmtpd's session plus the receiver's transaction and the PROXY context."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.tx: Transaction | None = None
        self.proxied = False
        self.kind = "msg"
        self.token = ""
        self.conn_id = ""
        self.delay_seen = 0
        self.declared_size: int | None = None


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with the greeting decided by the receiver, enhanced codes, DSN params."""

    def __init__(self, handler: SinkHandler, *, proxy: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink_handler = handler
        self.proxy = proxy  # the PROXY listener: XMAILSIM is advertised and accepted
        self._greeted = False
        self._dropped = False
        self._out: list[bytes] = []  # replies not written yet (pipelined commands pending)
        self._raw_ok = False  # inside EHLO/HELO: 2xx lines go out unchanged (RFC 2034)
        # aiosmtpd keeps these limits in one dict shared by every connection (and grows MAIL's
        # on each EHLO); give each connection its own, with room for XMAILSIM on the PROXY listener.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        if proxy:
            self.command_size_limits["MAIL"] = PROXY_MAIL_LINE_LIMIT

    @property
    def dropped(self) -> bool:
        """The connection was dropped (a fault): later pipelined commands must not reach the receiver."""
        return self._dropped or self.transport is None

    def _create_session(self) -> Session:
        return SinkSession(self.loop)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every address with the email package's RFC 5322 parser (and defines
        # a typing.Protocol class per call); a plain <local@domain> gets the same answer here.
        m = _PLAIN_PATH.match(arg) if arg else None
        if m is None:
            return super()._getaddr(arg)
        addr = m.group(1)
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, m.group(2)

    async def _push_line(self, line: str) -> None:
        """Write a reply; replies to pipelined commands go out together (RFC 2920 §3.2).

        A reply waits only while another complete command is already buffered (its reply
        follows at once); a closing reply (221/421) or the last pending one flushes.
        """
        data = line.encode("utf-8" if self.enable_SMTPUTF8 else "ascii", "surrogateescape") + b"\r\n"
        self._out.append(data)
        buffered = getattr(self._reader, "_buffer", None)
        if (isinstance(buffered, bytearray) and b"\n" in buffered and line[:3] not in ("221", "421", "502")
                and self.transport is not None and not self.transport.is_closing()):
            return
        self.flush_replies()
        assert self._writer is not None
        await self._writer.drain()

    def flush_replies(self) -> None:
        if self._out:
            out, self._out = b"".join(self._out), []
            if self.transport is not None and not self.transport.is_closing():
                assert self._writer is not None
                self._writer.write(out)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sink_handler.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink_handler.connections.discard(self)
        super().connection_lost(error)

    def drop(self) -> None:
        """Close the connection without a reply (a ``disconnect`` fault)."""
        self.flush_replies()  # the replies before the drop still go out
        self._dropped = True
        if self.transport is not None:
            self.transport.close()

    def _getparams(self, params: Any) -> Any:
        # aiosmtpd answers 555 to any parameter it does not know; the DSN ones are
        # validated by the handler's hooks instead.
        result = super()._getparams(params)
        if result is not None:
            for key in DSN_MAIL_PARAMS | DSN_RCPT_PARAMS:
                result.pop(key, None)
            if self.proxy:
                result.pop(XMAILSIM, None)
        return result

    async def smtp_EHLO(self, hostname: str) -> None:
        self._raw_ok = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_ok = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._raw_ok = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._raw_ok = False

    async def push(self, status: AnyStr) -> None:
        if self._dropped:
            return
        line = status.decode("utf-8", "surrogateescape") if isinstance(status, bytes) else str(status)
        if not self._greeted:
            self._greeted = True
            reply = await self.sink_handler.on_connect(self)
            if reply is not None:
                if reply.code == 0:
                    self.drop()
                    return
                await super().push(reply_line(reply))
                if self.transport is not None:
                    self.transport.close()
                self._dropped = True
                return
            await super().push(line)
            return
        if not (line.startswith("354") or (self._raw_ok and line[:1] == "2")):
            line = with_enhanced(line)
        await self._push_line(line)


def _tlv_text(proxy_data: ProxyData, typ: int) -> str | None:
    tlv = proxy_data.tlv
    if tlv is None:
        return None
    raw = tlv.get(f"x{typ:02X}")
    if raw is None:
        return None
    return bytes(raw).decode("utf-8", "surrogateescape")


def _params(options: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in options:
        k, _, v = opt.partition("=")
        out[k.upper()] = v
    return out


def _is_dsn(mail_from: str, content: bytes) -> bool:
    if mail_from not in ("", "<>"):
        return False
    head = email.parser.BytesHeaderParser().parsebytes(content)
    ctype = (head.get_content_type() or "").lower()
    report = head.get_param("report-type")
    return ctype == "multipart/report" and isinstance(report, str) and report.lower() == "delivery-status"


class SinkHandler:
    """The aiosmtpd handler: each hook is one receiver stage, run on the worker thread."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.receiver = sink.receiver
        self.connections: set[SinkSMTP] = set()
        self._conn_seq = itertools.count(1)
        self._msg_seq = itertools.count(1)

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        """A receiver stage: on the event loop thread, the only thread touching the receiver."""
        return fn(*args)

    async def _write(self, jobs: list[Callable[[], object]]) -> None:
        """Write the accepted copies before the reply: on the worker thread (or inline, or queued)."""
        if not jobs:
            return
        if self.sink.inline or self.sink.write_behind:
            for job in jobs:
                self.sink.store_job(job)
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.sink.executor, partial(_run_all, jobs))

    @staticmethod
    def _gone(server: SMTP) -> bool:
        """Dropped by a fault: commands the client had pipelined behind it are not answered."""
        return isinstance(server, SinkSMTP) and server.dropped

    @staticmethod
    def _session(server: SMTP) -> SinkSession:
        s = server.session
        assert isinstance(s, SinkSession)
        return s

    def _record(self, session: SinkSession) -> SessionRecord | None:
        if not session.token:
            return None
        return self.sink.record_for(session.token)

    async def _after(self, server: SMTP, session: SinkSession, reply: Reply) -> str | None:
        """Bookkeeping after a stage: slow faults, the session record, drops. None: no reply."""
        tx = session.tx
        assert tx is not None
        added = tx.delay - session.delay_seen
        session.delay_seen = tx.delay
        rec = self._record(session)
        if rec is not None:
            rec.delay = tx.delay
        if added > 0 and not session.proxied:
            await asyncio.sleep(added)  # a standalone sink is slow for real; the simulator's clock is virtual
        if reply.code == 0:
            assert isinstance(server, SinkSMTP)
            server.drop()
            return None
        return reply_line(reply)

    # -- PROXY and the greeting -----------------------------------------------------------
    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope, proxy_data: ProxyData) -> bool:
        s = self._session(server)
        if not proxy_data or proxy_data.src_addr is None:
            return False
        try:
            s.tx = Transaction(
                now=int(_tlv_text(proxy_data, TLV_NOW) or 0),
                client_ip=str(proxy_data.src_addr),
                domain=(_tlv_text(proxy_data, TLV_DOMAIN) or None),
                message_id=_tlv_text(proxy_data, TLV_MESSAGE_ID) or f"<proxy-{next(self._conn_seq)}@sink>",
                attempt=int(_tlv_text(proxy_data, TLV_ATTEMPT) or 1),
            )
        except ValueError:
            return False
        s.proxied = True
        s.kind = _tlv_text(proxy_data, TLV_KIND) or "msg"
        s.token = _tlv_text(proxy_data, TLV_TOKEN) or ""
        return True

    async def on_connect(self, server: SinkSMTP) -> Reply | None:
        """The ``connect`` stage; a reply replaces the greeting (outage 421, faults)."""
        s = self._session(server)
        if s.tx is None:  # plain listener
            peer = s.peer
            ip = str(peer[0]) if isinstance(peer, tuple) and peer else "127.0.0.1"
            s.conn_id = f"<conn-{next(self._conn_seq)}@{self.sink.hostname}>"
            s.tx = Transaction(now=self.sink.clock(), client_ip=ip, domain=None, message_id=s.conn_id)
        if s.kind == "dsn":
            return None
        reply = await self._work(self.receiver.connect, s.tx)
        line = await self._after(server, s, reply)
        if line is None:
            return Reply(0, "", "")
        return None if reply.ok else reply

    # -- HELO / EHLO ------------------------------------------------------------------------
    async def _helo(self, server: SMTP, session: SinkSession, hostname: str) -> tuple[Reply, str | None]:
        tx = session.tx
        assert tx is not None
        tx.rcpts.clear()
        if session.kind == "dsn":
            tx.helo = hostname
            return Reply(250, "", self.sink.hostname), ""
        if not session.proxied:
            tx.now = self.sink.clock()
        reply = await self._work(self.receiver.helo, tx, hostname)
        return reply, await self._after(server, session, reply)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        if self._gone(server):
            return []
        s = self._session(server)
        reply, line = await self._helo(server, s, hostname)
        if line is None:
            return []
        if not reply.ok:
            return [line]
        s.host_name = hostname
        out = [r for r in responses if not r.endswith(" HELP")]
        out += ["250-ENHANCEDSTATUSCODES", "250-DSN"]
        if isinstance(server, SinkSMTP) and server.proxy:
            out.append(f"250-{XMAILSIM}")
        out.append("250 HELP")
        return out

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        if self._gone(server):
            return ""
        s = self._session(server)
        reply, line = await self._helo(server, s, hostname)
        if line is None:
            return ""
        if reply.ok:
            s.host_name = hostname
            return f"250 {self.sink.hostname}"
        return line

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._gone(server):
            return ""
        s = self._session(server)
        if s.tx is not None:
            s.tx.rcpts.clear()
        return "250 2.0.0 OK"

    # -- MAIL / RCPT --------------------------------------------------------------------------
    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self._gone(server):
            return ""
        s = self._session(server)
        tx = s.tx
        assert tx is not None
        params = _params(mail_options)
        if s.proxied and XMAILSIM in params:
            # a new transaction on a reused connection: its own message id, attempt, clock, domain
            try:
                ctx = parse_xmailsim(params[XMAILSIM])
            except ValueError:
                return "501 5.5.4 Invalid XMAILSIM parameter"
            tx = s.tx = Transaction(now=ctx.now, client_ip=tx.client_ip, domain=ctx.domain or None,
                                    message_id=ctx.message_id or f"<proxy-{next(self._conn_seq)}@sink>",
                                    attempt=ctx.attempt, helo=tx.helo)
            s.kind = ctx.kind
            s.token = ctx.token
            s.delay_seen = 0
            if s.token:
                self.sink.record_for(s.token)  # the transaction reached the sink
        if "RET" in params and params["RET"] not in ("FULL", "HDRS"):
            return "501 5.5.4 Invalid RET parameter (FULL or HDRS)"
        if "ENVID" in params and not params["ENVID"]:
            return "501 5.5.4 Invalid ENVID parameter"
        size: int | None = None
        if params.get("SIZE", "").isdigit():
            size = int(params["SIZE"])
        s.declared_size = size
        if s.kind == "dsn":
            tx.mail_from = address
            tx.rcpts.clear()
            reply = Reply(250, "2.1.0", "Sender OK")
        else:
            if not s.proxied:
                tx.now = self.sink.clock()
                tx.domain = None
                tx.message_id = f"<sink-{next(self._msg_seq)}@{self.sink.hostname}>"
            reply = await self._work(self.receiver.mail, tx, address, size)
        line = await self._after(server, s, reply)
        if line is None:
            return ""
        if reply.ok:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return line

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self._gone(server):
            return ""
        s = self._session(server)
        tx = s.tx
        assert tx is not None
        params = _params(rcpt_options)
        if DSN_MAIL_PARAMS & params.keys():
            return "555 5.5.4 RET and ENVID belong on MAIL FROM"
        if XMAILSIM in params:
            return f"555 5.5.4 {XMAILSIM} belongs on MAIL FROM"
        if "NOTIFY" in params:
            vals = set(params["NOTIFY"].split(","))
            if not (vals == {"NEVER"} or (vals and vals <= _NOTIFY_VALUES)):
                return "501 5.5.4 Invalid NOTIFY parameter"
        if "ORCPT" in params and ";" not in params["ORCPT"]:
            return "501 5.5.4 Invalid ORCPT parameter (addr-type;address)"
        if s.kind == "dsn":
            tx.rcpts.append(address)
            reply = Reply(250, "2.1.5", "Recipient OK")
        else:
            domain = address.rpartition("@")[2].lower()
            if not s.proxied:
                tx.now = self.sink.clock()
                tx.domain = domain
                limit = self.receiver.policy(domain).size_limit
                if s.declared_size is not None and limit and s.declared_size > limit:
                    return reply_line(TOO_BIG)
            reply = await self._work(self.receiver.rcpt, tx, address)
        line = await self._after(server, s, reply)
        if line is None:
            return ""
        if reply.ok:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return line

    # -- DATA -----------------------------------------------------------------------------------
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._gone(server):
            return ""
        s = self._session(server)
        tx = s.tx
        assert tx is not None
        content = envelope.original_content or b""
        if not envelope.rcpt_tos or not tx.rcpts:
            return "503 5.5.1 Error: need RCPT command"
        if not s.proxied:
            for r in tx.rcpts:
                limit = self.receiver.policy(r.rpartition("@")[2]).size_limit
                if limit and len(content) > limit:
                    return reply_line(TOO_BIG)
        jobs: list[Callable[[], object]] = []
        if s.kind == "dsn" or (not s.proxied and _is_dsn(envelope.mail_from or "", content)):
            bounce_line = self._file_bounce(s, content, jobs)
            await self._write(jobs)
            return bounce_line
        reply, held = self._data(s, content, jobs)
        await self._write(jobs)
        line = await self._after(server, s, reply)  # a plain connection really waits out a slow fault here
        if held is not None:
            # stored as the 250 goes out: after the real wait (plain), or at the virtual end of the
            # transaction for a PROXY session nobody will settle (no token)
            await self._write(held(tx.now + tx.delay if s.proxied else self.sink.clock()))
        return "" if line is None else line

    def _file_bounce(self, s: SinkSession, content: bytes, jobs: list[Callable[[], object]]) -> str:
        tx = s.tx
        assert tx is not None
        if not s.proxied:
            tx.now = self.sink.clock()
            tx.message_id = _header_message_id(content) or tx.message_id
        for r in tx.rcpts:
            self.receiver.store.file(r, "bounce", tx.message_id, tx.now)
            jobs.append(self.sink.delivery(r, "bounce", tx, None, content, header=""))
        tx.rcpts.clear()
        return f"250 2.0.0 OK queued as {tx.message_id}"

    def _data(self, s: SinkSession, content: bytes, jobs: list[Callable[[], object]],
              ) -> tuple[Reply, Callable[[int], list[Callable[[], object]]] | None]:
        """End of DATA: the reply, and (slow fault) the copies' filing to run when the 250 goes out.

        Without a slow fault the receiver stored the copies at ``tx.now`` and their Maildir writes
        are added to ``jobs``. With one, nothing is stored yet: a PROXY session with a token leaves
        the filing in its record for the wire transport to run when the engine applies the reply
        (``WireTransport.settle``, at the same virtual time memory mode files them); otherwise it is
        returned for the caller to run once the 250 is due.
        """
        tx = s.tx
        assert tx is not None
        if not s.proxied:
            tx.now = self.sink.clock()
            tx.message_id = _header_message_id(content) or tx.message_id
            tx.domain = tx.rcpts[0].rpartition("@")[2].lower() if tx.rcpts else None
        verdict = self.receiver.data_end(tx, len(content))
        rec = self._record(s)
        if rec is not None:
            rec.spf_result = verdict.spf_result
            rec.spf_explanation = verdict.spf_explanation
            rec.folder = verdict.folder
        held: Callable[[int], list[Callable[[], object]]] | None = None
        if verdict.folder is not None:
            header = f"Received-SPF: {verdict.received_spf}"
            if tx.delay:
                held = partial(self._file_held, replace(tx, rcpts=list(tx.rcpts)), verdict.folder,
                               verdict.spf_result, content, header)
                if rec is not None:
                    rec.held, held = held, None
            else:
                for r in tx.rcpts:
                    jobs.append(self.sink.delivery(r, verdict.folder, tx, verdict.spf_result, content, header=header))
        tx.rcpts.clear()
        return verdict.reply, held

    def _file_held(self, tx: Transaction, folder: str, spf: str | None, content: bytes, header: str,
                   at: int) -> list[Callable[[], object]]:
        """Store a slow transaction's copies at ``at`` (its 250); returns their Maildir writes.

        Runs on the sink's loop thread, like every other touch of the receiver's store.
        """
        self.receiver.file_copies(tx.rcpts, folder, [tx.message_id], at)
        return [self.sink.delivery(r, folder, tx, spf, content, header=header, now=at) for r in tx.rcpts]


def _run_all(jobs: list[Callable[[], object]]) -> None:
    for job in jobs:
        job()


def _header_message_id(content: bytes) -> str | None:
    head = email.parser.BytesHeaderParser().parsebytes(content)
    mid = head.get("Message-ID")
    if mid is None:
        return None
    return str(mid).strip() or None


# --- the Sink ---------------------------------------------------------------------------------


def _no_spf(now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
    return "none", "no DNS data: the sink runs without a scenario"


@dataclass(slots=True)
class _Listener:
    server: asyncio.Server | None = None
    port: int = 0


@dataclass(slots=True)
class _Index:
    messages: list[StoredMessage] = field(default_factory=list)
    by_rcpt: dict[str, list[StoredMessage]] = field(default_factory=dict)


class _WriteBehind:
    """One thread writing the Maildir files in order, behind a bounded queue.

    The receiver has decided and counted a message before it is queued here, so
    a transaction never waits for the disk; :meth:`flush` waits until every
    queued file is written and indexed (the queue's bound holds the SMTP side
    back if the disk cannot keep up). A failed write is raised by the next
    :meth:`flush`.
    """

    def __init__(self, maxsize: int = 2048) -> None:
        self._q: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, name="mailsim-sink-writer", daemon=True)
        self._thread.start()

    def put(self, job: Callable[[], object]) -> None:
        self._q.put(job)

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                job()
            except BaseException as e:  # reported by flush()
                self._errors.append(e)
            finally:
                self._q.task_done()

    def flush(self) -> None:
        self._q.join()
        if self._errors:
            err, self._errors = self._errors[0], []
            raise OSError(f"the sink could not write a message: {err}") from err

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()


class Sink:
    """Both listeners on an event loop thread; ``with Sink(scn, maildir=d) as s: s.port``.

    ``scenario`` supplies ``mailboxes:`` policies, ``faults:`` and ``seed`` (None:
    accept-all, no faults). SPF is ``spf`` when given, else evaluated against the
    scenario's ``dns:`` in memory (standalone), else ``none``. ``store`` lets a
    caller (the wire transport) share the engine's :class:`MailStore`. ``clock``
    is the plain listener's time in seconds (default: since :meth:`start`).
    ``maildir`` None: a temporary directory removed on :meth:`stop`.
    The receiver's stages (and so a custom ``spf``) run on the event loop.
    ``inline`` writes the Maildir files there too instead of on a worker
    thread: no thread hand-off for a single client that waits for each reply
    (the wire transport, on a fast disk), but one slow disk write then holds up
    every other connection. ``write_behind`` writes
    the Maildir files on a writer thread behind a bounded queue instead of
    before the 250 reply: the receiver's counts (and so a simulator run) are
    unchanged, :meth:`messages`, :meth:`summary` and :meth:`stop` wait for the
    queue, and :meth:`wait_for` for the files it waits for.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        maildir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        proxy_port: int = 0,
        hostname: str = DEFAULT_HOSTNAME,
        store: MailStore | None = None,
        spf: SpfFunc | None = None,
        clock: Callable[[], int] | None = None,
        timeout: float = 300.0,
        proxy_timeout: float = 5.0,
        plain: bool = True,
        proxy: bool = True,
        inline: bool = False,
        write_behind: bool = False,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self.hostname = hostname
        self._want_port = port
        self._want_proxy_port = proxy_port
        self.timeout = timeout
        self.proxy_timeout = proxy_timeout
        self._plain_on = plain
        self._proxy_on = proxy
        self.inline = inline
        self.write_behind = write_behind
        self._writer: _WriteBehind | None = None
        if spf is None:
            if scenario is not None:
                from simulator.net.dnsview import DnsView
                from simulator.net.zone import Zone

                view = DnsView(Zone.from_scenario(scenario), scenario.faults, scenario.seed)
                spf = view.spf
            else:
                spf = _no_spf
        mailboxes = scenario.mailboxes if scenario is not None else ()
        faults = scenario.faults if scenario is not None else ()
        seed = scenario.seed if scenario is not None else 0
        self.receiver = ReceivingServer(mailboxes, faults, seed, spf, store, hostname=hostname)
        self.store = self.receiver.store
        self._tmpdir: Any = None
        if maildir is None:
            import tempfile

            self._tmpdir = tempfile.TemporaryDirectory(prefix="mailsim-sink-")
            maildir = self._tmpdir.name
        self.maildir = Path(maildir)
        self._maildir = Maildir(self.maildir, hostname)
        self._start_mono = time.monotonic()
        self.clock: Callable[[], int] = clock or (lambda: int(time.monotonic() - self._start_mono))
        self.size_limit = max([DEFAULT_SIZE_LIMIT, *(m.size_limit for m in mailboxes)])
        # Maildir writes of the plain listener's connections (several at once: file creation waits on the disk)
        self.executor = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="mailsim-sink-write")
        self._cond = threading.Condition()
        self._index = _Index()
        self._records: dict[str, SessionRecord] = {}
        self._records_lock = threading.Lock()
        self._plain = _Listener()
        self._proxy = _Listener()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.handler = SinkHandler(self)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The plain listener's port (ordinary SMTP clients)."""
        return self._plain.port

    @property
    def proxy_port(self) -> int:
        """The PROXY-protocol listener's port (the simulator's own MTA)."""
        return self._proxy.port

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The sink's event loop (running between :meth:`start` and :meth:`stop`)."""
        return self._loop

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Sink:
        if self._thread is not None:
            raise RuntimeError("sink already started")
        self._start_mono = time.monotonic()
        if self.write_behind:
            self._writer = _WriteBehind()
        self._thread = threading.Thread(target=self._run, name="mailsim-sink", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            self.executor.shutdown(wait=True)
            self._close_writer()
            raise self._error
        return self

    def flush(self) -> None:
        """Wait until every accepted message is written (write-behind); OSError if a write failed."""
        if self._writer is not None:
            self._writer.flush()

    def _close_writer(self) -> None:
        w, self._writer = self._writer, None
        if w is not None:
            try:
                w.flush()
            finally:
                w.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _factory(self, *, proxy: bool) -> Callable[[], SinkSMTP]:
        loop = self._loop

        def make() -> SinkSMTP:
            return SinkSMTP(
                self.handler,
                hostname=self.hostname,
                ident=IDENT,
                data_size_limit=None if proxy else self.size_limit,
                enable_SMTPUTF8=True,
                timeout=self.timeout,
                proxy_protocol_timeout=self.proxy_timeout if proxy else None,
                loop=loop,
                proxy=proxy,
            )

        return make

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            if self._plain_on:
                srv = await loop.create_server(self._factory(proxy=False), host=self.host, port=self._want_port)
                self._plain = _Listener(srv, int(srv.sockets[0].getsockname()[1]))
            if self._proxy_on:
                srv = await loop.create_server(self._factory(proxy=True), host=self.host,
                                               port=self._want_proxy_port)
                self._proxy = _Listener(srv, int(srv.sockets[0].getsockname()[1]))
        except BaseException as e:
            self._error = e
            await self._close_servers()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._close_servers()
            self.executor.shutdown(wait=True)  # pending stage work completes while the loop still runs

    async def _close_servers(self) -> None:
        for lst in (self._plain, self._proxy):
            if lst.server is not None:
                lst.server.close()
        for conn in list(self.handler.connections):
            if conn.transport is not None:
                conn.transport.close()
        for lst in (self._plain, self._proxy):
            if lst.server is not None:
                await lst.server.wait_closed()
        # let cancelled connection handlers finish
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._thread is None:
            return
        loop, ev = self._loop, self._stopping
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ev.set)
        self._thread.join()
        self._thread = None
        self.executor.shutdown(wait=True)
        try:
            self._close_writer()
        finally:
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- storing (worker thread) ----------------------------------------------------------------
    def deliver(self, recipient: str, folder: str, tx: Transaction, spf: str | None, content: bytes,
                *, header: str) -> StoredMessage | None:
        """Write one accepted message for one recipient and index it (None: queued, write-behind)."""
        job = self.delivery(recipient, folder, tx, spf, content, header=header)
        if self._writer is not None:
            self._writer.put(job)
            return None
        return job()

    def store_job(self, job: Callable[[], object]) -> None:
        """Run a :meth:`delivery` now, or queue it when writing behind."""
        if self._writer is not None:
            self._writer.put(job)
        else:
            job()

    def delivery(self, recipient: str, folder: str, tx: Transaction, spf: str | None, content: bytes,
                 *, header: str, now: int | None = None) -> Callable[[], StoredMessage]:
        """The write of one accepted message for one recipient, to run on any one thread.

        ``now``: when it was stored (default ``tx.now``; a slow transaction's copies at its 250).
        """
        body = content.replace(b"\r\n", b"\n")
        sender = tx.mail_from.strip()
        if sender.startswith("<") and sender.endswith(">"):  # aiosmtpd spells the null sender "<>"
            sender = sender[1:-1]
        lines = [f"Return-Path: <{sender}>", f"Delivered-To: {recipient}"]
        if header:
            lines.append(header)
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") + body
        return partial(self._store, recipient, folder, tx.message_id, sender, tx.client_ip, tx.helo, spf,
                       tx.now if now is None else now, data)

    def _store(self, recipient: str, folder: str, message_id: str, sender: str, client_ip: str, helo: str,
               spf: str | None, now: int, data: bytes) -> StoredMessage:
        path = self._maildir.deliver(recipient, folder, message_id, now, data)
        msg = StoredMessage(recipient.lower(), folder, path, message_id, sender, client_ip, helo, spf, now,
                            len(data))
        with self._cond:
            self._index.messages.append(msg)
            self._index.by_rcpt.setdefault(msg.recipient, []).append(msg)
            self._cond.notify_all()
        return msg

    def record_for(self, token: str) -> SessionRecord:
        with self._records_lock:
            rec = self._records.get(token)
            if rec is None:
                rec = self._records[token] = SessionRecord(token)
            return rec

    def pop_record(self, token: str) -> SessionRecord | None:
        """The record of a PROXY session (delay, SPF verdict, folder), removed once read."""
        with self._records_lock:
            return self._records.pop(token, None)

    # -- reading ------------------------------------------------------------------------------------
    def messages(self, recipient: str | None = None) -> list[StoredMessage]:
        self.flush()
        with self._cond:
            if recipient is None:
                return list(self._index.messages)
            return list(self._index.by_rcpt.get(recipient.strip().lower(), []))

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 10.0) -> list[StoredMessage]:
        """Block until ``recipient`` holds at least ``count`` messages; TimeoutError otherwise."""
        key = recipient.strip().lower()
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._index.by_rcpt.get(key, [])) >= count, timeout)
            got = list(self._index.by_rcpt.get(key, []))
        if not ok:
            raise TimeoutError(f"{recipient}: {len(got)} message(s) after {timeout}s, wanted {count}")
        return got

    def summary(self) -> dict[str, Any]:
        """JSON-able: per address the inbox/junk/bounce counts and the files (relative to the Maildir)."""
        boxes: dict[str, dict[str, Any]] = {}
        self.flush()
        with self._cond:
            msgs = list(self._index.messages)
        for m in sorted(msgs, key=lambda m: m.recipient):
            b = boxes.setdefault(m.recipient, {"inbox": 0, "junk": 0, "bounces": 0, "files": []})
            b["bounces" if m.folder == "bounce" else m.folder] += 1
            try:
                rel = str(m.path.relative_to(self.maildir))
            except ValueError:
                rel = str(m.path)
            b["files"].append(rel)
        return {
            "maildir": str(self.maildir),
            "listening": {"smtp": f"{self.host}:{self.port}" if self._plain_on else None,
                          "proxy": f"{self.host}:{self.proxy_port}" if self._proxy_on else None},
            "messages": len(msgs),
            "mailboxes": boxes,
        }
