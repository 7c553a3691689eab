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
- each accepted message is held once and stored once
  (:meth:`~simulator.net.maildir.Maildir.deliver_all`: one file hard-linked into
  every recipient's ``DIR/<folder>/new/``, junk ``DIR/<folder>/.Junk/new/``, via
  ``tmp/`` and a rename, no fsync, all recipients or none, no symlink followed);
  the file name is derived from (time, message id, recipient). A message is
  stored when its 250 goes out: after a ``slow`` fault's delay (really waited
  on the plain listener; on the PROXY listener the simulator's MTA settles it
  at the virtual time it applies the reply, see :class:`SessionRecord` ``held``).

Two listeners (DESIGN §7):

- the **PROXY listener** for the simulator's own MTA: every connection starts
  with a PROXY protocol v2 header whose source address is the simulated
  client IP, signed with this sink's :attr:`Sink.proxy_secret` (TLV ``0xE6``;
  anything else is refused, docs/security.md), and whose TLVs (type
  ``0xE0``–``0xE5``, see :func:`proxy_header`) carry the message id, attempt,
  virtual time ``now``, recipient domain, kind (message or DSN) and a session token, for the greeting and HELO. Each
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
touched by one thread; the Maildir files are written before the 250 goes out,
on the loop while that is cheap and on worker threads when it is not (a large
message, a slow disk: :meth:`Sink.write_here`), or behind the replies
(``write_behind``).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator.domain.entities import MailboxDomain
from simulator.net.maildir import (
    DEFAULT_HOSTNAME,
    Maildir,
    StoredMessage,
    mailbox_dirname,
    stored_body,
    stored_head,
)
from simulator.net.proxy import (
    PROXY_MAIL_LINE_LIMIT,
    SECRET_BYTES,
    TLV_ATTEMPT,
    TLV_DOMAIN,
    TLV_KIND,
    TLV_MESSAGE_ID,
    TLV_NOW,
    TLV_TOKEN,
    XMAILSIM,
    MailContext,
    parse_xmailsim,
    proxy_header,
    xmailsim_value,
)
from simulator.net.receiver import (
    MailStore,
    ReceivingServer,
    SpfFunc,
    Transaction,
)
from simulator.net.sink_handler import SessionRecord, SinkHandler
from simulator.net.sink_smtp import IDENT, SinkSMTP, reply_line, with_enhanced
from simulator.scenario.model import Scenario

__all__ = [
    "DEFAULT_HOSTNAME", "PROXY_MAIL_LINE_LIMIT", "TLV_ATTEMPT", "TLV_DOMAIN", "TLV_KIND", "TLV_MESSAGE_ID",
    "TLV_NOW", "TLV_TOKEN", "XMAILSIM", "MailContext", "Maildir", "SessionRecord", "Sink", "SinkHandler",
    "SinkSMTP", "StoredMessage", "mailbox_dirname", "parse_xmailsim", "proxy_header", "reply_line",
    "with_enhanced", "xmailsim_value",
]

DEFAULT_SIZE_LIMIT = MailboxDomain(domain="*").size_limit
WRITERS = 2  # threads writing Maildir files when the event loop should not (a large message, a slow disk)
INLINE_BYTES = 1 << 20  # a larger message is written on a worker thread: it would hold up the loop
SLOW_WRITE = 0.05  # seconds; a write on the loop that took longer sends the next ones to worker threads ...
SLOW_DISK_PAUSE = 5.0  # ... for this many seconds, then the loop tries again
DEFAULT_MAX_RECIPIENTS = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted; 452 4.5.3 past it
PROXY_MAX_RECIPIENTS = 1000  # the scenario loader's cap on a property's contacts
MAX_RECORDS = 4096  # session records waiting for the wire transport to read them

def _text(value: str) -> str:
    """A string JSON can hold: bytes that were not UTF-8 (kept as surrogates) shown as ``\\xHH``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _no_spf(now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
    return "none", "no DNS data: the sink runs without a scenario"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The sink's event loop: uvloop's when it is installed (the ``fast`` extra), else asyncio's.

    Under Postfix's ``smtp-source -s 10`` (a connection per message) the sink spends its time in
    the loop's per-connection and per-reply machinery; uvloop's C loop took the sink from 0.61–0.65×
    to 0.78–0.79× bare aiosmtpd on asyncio's loop (alternating runs, docs/performance.md). Nothing else about
    the sink changes; ``MAILSIM_NO_UVLOOP=1`` keeps asyncio's loop (the tests run the sink both ways).
    """
    if not os.environ.get("MAILSIM_NO_UVLOOP"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


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
    The receiver's stages (and so a custom ``spf``) run on the event loop, and
    by default the Maildir files are written there too, before the 250, while
    that is cheap (:meth:`write_here`): a message up to 1 MiB, and no write
    slower than ``slow_write`` seconds in the last ``slow_disk_pause`` seconds;
    otherwise on worker threads. ``inline`` always writes on the loop (the
    wire transport: one client that waits for each reply). ``write_behind`` writes
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
        max_recipients: int = DEFAULT_MAX_RECIPIENTS,
        proxy_secret: bytes | None = None,
    ) -> None:
        if max_recipients < 100:
            raise ValueError(f"max_recipients must be at least 100 (RFC 5321 §4.5.3.1.8), got {max_recipients}")
        if timeout <= 0 or proxy_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.scenario = scenario
        self.max_recipients = max_recipients
        # the simulator's MTA speaks for a scenario, whose property lists hold up to 1,000 contacts
        self.proxy_max_recipients = max(max_recipients, PROXY_MAX_RECIPIENTS)
        # signs the PROXY headers of the simulator's own MTA (proxy.verify_header): a new one per sink
        self.proxy_secret = proxy_secret if proxy_secret else secrets.token_bytes(SECRET_BYTES)
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
        self.slow_write = SLOW_WRITE
        self.slow_disk_pause = SLOW_DISK_PAUSE
        self._workers_until = 0.0  # time.monotonic() until which writes go to the worker threads
        self.writes_on_loop = 0
        self.writes_on_workers = 0
        self._cond = threading.Condition()
        self._index = _Index()
        # read and removed by the wire transport; bounded, so records nobody reads cannot pile up
        self._records: collections.OrderedDict[str, SessionRecord] = collections.OrderedDict()
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
        self.stale_removed = self._maildir.clean_tmp()  # a killed sink's half-written files
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
        loop = new_event_loop()
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
                data_size_limit=self.size_limit,  # both listeners: a body past it is read and dropped
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
            self._maildir.close()
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- storing ---------------------------------------------------------------------------------
    def write_here(self, jobs: Sequence[Callable[[], object]], size: int) -> bool:
        """Run a message's writes on the calling thread (the event loop) when that is cheap; False: it is not.

        Handing each message to a worker thread and back cost more than the write itself:
        under ``smtp-source -s 10`` (a connection per message) the thread hand-offs (the GIL
        passed to and fro every message) made the sink 0.61–0.69× bare aiosmtpd, the same
        writes on the loop 1.12× (a message file is ≈50 µs of system calls; docs/performance.md).
        But a write on the loop holds up every connection while it lasts, so a large message
        (over 1 MiB) goes to a worker thread, and so does every message for ``slow_disk_pause``
        seconds after one write took longer than ``slow_write`` (a slow or stalled disk).
        The wall clock decides only *where* a write runs, never what is stored or answered.
        """
        start = time.monotonic()
        if size > INLINE_BYTES or start < self._workers_until:
            self.writes_on_workers += 1
            return False
        try:
            for job in jobs:
                job()
        finally:
            took = time.monotonic() - start
            if took > self.slow_write:
                self._workers_until = start + took + self.slow_disk_pause
            self.writes_on_loop += 1
        return True

    def store_job(self, job: Callable[[], object]) -> None:
        """Run a :meth:`delivery` now, or queue it when writing behind."""
        if self._writer is not None:
            self._writer.put(job)
        else:
            job()

    def delivery(self, rcpts: Sequence[str], folder: str, tx: Transaction, spf: str | None, content: bytes,
                 *, received_spf: str, now: int | None = None) -> Callable[[], list[StoredMessage]]:
        """The write of one accepted message for all its recipients, to run on any one thread.

        The message is held once (whatever the recipient count) and stored once on disk
        (:meth:`Maildir.deliver_all`); all recipients' files or none. ``now``: when it was
        stored (default ``tx.now``; a slow transaction's copies at its 250).
        """
        head = stored_head(tx.mail_from, received_spf)
        sender = tx.mail_from.strip()
        if sender.startswith("<") and sender.endswith(">"):  # aiosmtpd spells the null sender "<>"
            sender = sender[1:-1]
        return partial(self._store, tuple(rcpts), folder, tx.message_id, sender, tx.client_ip, tx.helo, spf,
                       tx.now if now is None else now, head, stored_body(content))

    def _store(self, rcpts: tuple[str, ...], folder: str, message_id: str, sender: str, client_ip: str,
               helo: str, spf: str | None, now: int, head: bytes, body: bytes) -> list[StoredMessage]:
        paths = self._maildir.deliver_all(rcpts, folder, message_id, now, head, body)
        size = len(head) + len(body)
        msgs = [StoredMessage(r.lower(), folder, path, message_id, sender, client_ip, helo, spf, now, size)
                for r, path in zip(rcpts, paths, strict=True)]
        with self._cond:
            for msg in msgs:
                self._index.messages.append(msg)
                self._index.by_rcpt.setdefault(msg.recipient, []).append(msg)
            self._cond.notify_all()
        return msgs

    def record_for(self, token: str, owner: int = 0) -> SessionRecord:
        with self._records_lock:
            rec = self._records.get(token)
            if rec is None:
                rec = self._records[token] = SessionRecord(token, owner)
                while len(self._records) > MAX_RECORDS:
                    self._records.popitem(last=False)
            return rec

    def forget_records(self, owner: int) -> None:
        """Drop the unread records of a closed connection (the handler calls it after a grace period)."""
        with self._records_lock:
            gone = [t for t, rec in self._records.items() if rec.owner == owner]
            for t in gone:
                del self._records[t]

    @property
    def records_waiting(self) -> int:
        """Session records not read yet (at most :data:`MAX_RECORDS`)."""
        with self._records_lock:
            return len(self._records)

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
            b = boxes.setdefault(_text(m.recipient), {"inbox": 0, "junk": 0, "bounces": 0, "files": []})
            b["bounces" if m.folder == "bounce" else m.folder] += 1
            try:
                rel = str(m.path.relative_to(self.maildir))
            except ValueError:
                rel = str(m.path)
            b["files"].append(_text(rel))
        return {
            "maildir": _text(str(self.maildir)),
            "listening": {"smtp": f"{self.host}:{self.port}" if self._plain_on else None,
                          "proxy": f"{self.host}:{self.proxy_port}" if self._proxy_on else None},
            "messages": len(msgs),
            "mailboxes": boxes,
        }
