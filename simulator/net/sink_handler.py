"""The sink's aiosmtpd handler: each SMTP hook is one receiver stage (policy lives in
:class:`~simulator.net.receiver.ReceivingServer`, transport in :mod:`simulator.net.sink_smtp`)."""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol, TypeVar

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session

from simulator.net.maildir import StoredMessage
from simulator.net.proxy import (
    TLV_ATTEMPT,
    TLV_DOMAIN,
    TLV_KIND,
    TLV_MESSAGE_ID,
    TLV_NOW,
    TLV_TOKEN,
    XMAILSIM,
    parse_xmailsim,
    tlv_text,
    verify_header,
)
from simulator.net.receiver import (
    TOO_BIG,
    MailStore,
    ReceivingServer,
    Reply,
    Transaction,
)
from simulator.net.sink_smtp import (
    DSN_MAIL_PARAMS,
    NOTIFY_VALUES,
    SinkSession,
    SinkSMTP,
    register_handler_class,
    reply_line,
)


class SinkPort(Protocol):
    """What the handler needs from the :class:`~simulator.net.sink.Sink` that runs it."""

    hostname: str
    proxy_secret: bytes
    inline: bool
    write_behind: bool
    receiver: ReceivingServer

    @property
    def executor(self) -> Executor: ...

    def clock(self) -> int: ...

    def delivery(self, rcpts: Sequence[str], folder: str, tx: Transaction, spf: str | None, content: bytes,
                 *, received_spf: str, now: int | None = None) -> Callable[[], list[StoredMessage]]: ...

    def store_job(self, job: Callable[[], object]) -> None: ...

    def write_here(self, jobs: Sequence[Callable[[], object]], size: int) -> bool: ...

    @property
    def max_recipients(self) -> int: ...

    @property
    def proxy_max_recipients(self) -> int: ...

    def record_for(self, token: str, owner: int = 0) -> SessionRecord: ...

    def forget_records(self, owner: int) -> None: ...

T = TypeVar("T")

RECORD_GRACE = 60.0  # seconds a closed connection's unread session records are kept
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
LOCAL_ERROR = "451 4.3.0 Requested action aborted: local error in processing"
# a Message-ID the plain listener may echo in its 250: one angle-bracketed run of printable ASCII
_SAFE_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}>\Z")
log = logging.getLogger("mailsim.sink")

@dataclass(slots=True)
class SessionRecord:
    """What one PROXY session did, for the wire transport: what SMTP replies cannot carry."""

    token: str
    owner: int = 0  # the connection (SinkSession.owner) the record is freed with
    delay: int = 0
    spf_result: str | None = None
    spf_explanation: str = ""
    folder: str | None = None
    # a slow transaction's accepted copies, not yet stored: called with the time its 250 is applied
    # (the simulator's virtual clock), it files them and returns the Maildir writes (see ``_data``)
    held: Callable[[int], list[Callable[[], object]]] | None = None


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
    """The aiosmtpd handler: each hook is one receiver stage, run on the sink's event loop thread."""

    def __init__(self, sink: SinkPort) -> None:
        self.sink = sink
        self.receiver = sink.receiver
        self.connections: set[SinkSMTP] = set()
        self._conn_seq = itertools.count(1)
        self._msg_seq = itertools.count(1)

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        """A receiver stage: on the event loop thread, the only thread touching the receiver."""
        return fn(*args)

    async def _write(self, jobs: list[Callable[[], object]], size: int) -> None:
        """Write the accepted copies (``size`` bytes each) before the reply: on the loop while that is
        cheap (``Sink.write_here``), else on a worker thread (or always inline, or queued)."""
        if not jobs:
            return
        if self.sink.inline or self.sink.write_behind:
            for job in jobs:
                self.sink.store_job(job)
            return
        if self.sink.write_here(jobs, size):
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
        return self.sink.record_for(session.token, session.owner)

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
        if not proxy_data or not verify_header(proxy_data, self.sink.proxy_secret):
            log.warning("PROXY header refused (not v2, or not signed with this sink's secret)")
            return False
        try:
            s.tx = Transaction(
                now=int(tlv_text(proxy_data, TLV_NOW) or 0),
                client_ip=str(proxy_data.src_addr),
                domain=(tlv_text(proxy_data, TLV_DOMAIN) or None),
                message_id=tlv_text(proxy_data, TLV_MESSAGE_ID) or f"<proxy-{next(self._conn_seq)}@sink>",
                attempt=int(tlv_text(proxy_data, TLV_ATTEMPT) or 1),
            )
        except ValueError:
            return False
        s.proxied = True
        s.kind = tlv_text(proxy_data, TLV_KIND) or "msg"
        s.token = tlv_text(proxy_data, TLV_TOKEN) or ""
        return True

    def on_close(self, server: SinkSMTP) -> None:
        """A PROXY connection's session records go with it, after a grace period: the wire transport
        reads a dropped transaction's record right after it sees the drop, never later."""
        s = server.session
        if isinstance(s, SinkSession) and s.proxied:
            with contextlib.suppress(RuntimeError):  # the loop is closing: the records go with the sink
                server.loop.call_later(RECORD_GRACE, self.sink.forget_records, s.owner)

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
                self.sink.record_for(s.token, s.owner)  # the transaction reached the sink
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
            if not (vals == {"NEVER"} or (vals and vals <= NOTIFY_VALUES)):
                return "501 5.5.4 Invalid NOTIFY parameter"
        if "ORCPT" in params and ";" not in params["ORCPT"]:
            return "501 5.5.4 Invalid ORCPT parameter (addr-type;address)"
        if len(envelope.rcpt_tos) >= (self.sink.proxy_max_recipients if s.proxied else self.sink.max_recipients):
            return TOO_MANY_RCPTS
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
        rcpts = list(tx.rcpts)
        if s.kind == "dsn" or (not s.proxied and _is_dsn(envelope.mail_from or "", content)):
            bounce_line = self._file_bounce(s, content, jobs)
            if not await self._write_or_unfile(jobs, rcpts, "bounce", tx.message_id, len(content)):
                return LOCAL_ERROR
            return bounce_line
        reply, held, folder = self._data(s, content, jobs)
        if folder is not None and not await self._write_or_unfile(jobs, rcpts, folder, tx.message_id,
                                                                  len(content)):
            return LOCAL_ERROR
        line = await self._after(server, s, reply)  # a plain connection really waits out a slow fault here
        if held is not None and folder is not None:
            # stored as the 250 goes out: after the real wait (plain), or at the virtual end of the
            # transaction for a PROXY session nobody will settle (no token)
            writes = held(tx.now + tx.delay if s.proxied else self.sink.clock())
            if not await self._write_or_unfile(writes, rcpts, folder, tx.message_id, len(content)):
                return "" if line is None else LOCAL_ERROR
        return "" if line is None else line

    async def _write_or_unfile(self, jobs: list[Callable[[], object]], rcpts: list[str], folder: str,
                               message_id: str, size: int) -> bool:
        """Write the copies; when that fails, take the message back out of the receiver's counts.

        The Maildir stores a message for all its recipients or for none, so the client is told
        451 and no mailbox (on disk or in the counts) holds it. The reason goes to the log only:
        a reply never shows the sink's paths.
        """
        try:
            await self._write(jobs, size)
        except OSError as e:
            log.warning("cannot store %s: %s", message_id, e.strerror or type(e).__name__)
            _unfile(self.receiver.store, rcpts, folder, message_id)
            return False
        return True

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's last resort: a short 451 (its default names the exception and any path in it)."""
        log.error("sink error: %s", type(error).__name__)
        return LOCAL_ERROR

    def _file_bounce(self, s: SinkSession, content: bytes, jobs: list[Callable[[], object]]) -> str:
        tx = s.tx
        assert tx is not None
        if not s.proxied:
            tx.now = self.sink.clock()
            tx.message_id = _header_message_id(content) or tx.message_id
        for r in tx.rcpts:
            self.receiver.store.file(r, "bounce", tx.message_id, tx.now)
        jobs.append(self.sink.delivery(tx.rcpts, "bounce", tx, None, content, received_spf=""))
        tx.rcpts.clear()
        return f"250 2.0.0 OK queued as {tx.message_id}"

    def _data(self, s: SinkSession, content: bytes, jobs: list[Callable[[], object]],
              ) -> tuple[Reply, Callable[[int], list[Callable[[], object]]] | None, str | None]:
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
            if tx.delay:
                held = partial(self._file_held, replace(tx, rcpts=list(tx.rcpts)), verdict.folder,
                               verdict.spf_result, content, verdict.received_spf)
                if rec is not None:
                    rec.held, held = held, None
            else:
                jobs.append(self.sink.delivery(tx.rcpts, verdict.folder, tx, verdict.spf_result, content,
                                               received_spf=verdict.received_spf))
        tx.rcpts.clear()
        return verdict.reply, held, verdict.folder

    def _file_held(self, tx: Transaction, folder: str, spf: str | None, content: bytes, received_spf: str,
                   at: int) -> list[Callable[[], object]]:
        """Store a slow transaction's copies at ``at`` (its 250); returns their Maildir writes.

        Runs on the sink's loop thread, like every other touch of the receiver's store.
        """
        self.receiver.file_copies(tx.rcpts, folder, [tx.message_id], at)
        return [self.sink.delivery(tx.rcpts, folder, tx, spf, content, received_spf=received_spf, now=at)]


def _run_all(jobs: list[Callable[[], object]]) -> None:
    for job in jobs:
        job()


def _header_message_id(content: bytes) -> str | None:
    """The message's own ``Message-ID`` (the first, unfolded) if it is one plain ``<…>`` token.

    A scan of the header lines, not the ``email`` parser: this runs for every message on the
    plain listener, and parsing the whole header block costs more than the rest of the stage.
    """
    value: bytes | None = None
    for line in content.split(b"\n", 200)[:200]:
        line = line.rstrip(b"\r")
        if value is not None:
            if line[:1] in (b" ", b"\t"):
                value += b" " + line.strip()
                continue
            break
        if not line:
            break
        if line[:11].lower() == b"message-id:":
            value = line[11:].strip()
    if value is None:
        return None
    text = " ".join(value.decode("utf-8", "surrogateescape").split())
    return text if _SAFE_MESSAGE_ID.match(text) else None



def _unfile(store: MailStore, rcpts: list[str], folder: str, message_id: str) -> None:
    """Undo what the receiver filed for a message whose files could not be written."""
    attr = {"junk": "junk", "bounce": "bounces"}.get(folder, "inbox")
    for r in rcpts:
        box = store.box(r)
        setattr(box, attr, max(0, getattr(box, attr) - 1))
        for i in range(len(box.messages) - 1, -1, -1):
            if box.messages[i][0] == message_id and box.messages[i][1] == folder:
                del box.messages[i]
                break


register_handler_class(SinkHandler)
