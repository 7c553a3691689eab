"""The client side of the wire transport: SMTP replies, dot-stuffed bodies, the pooled connection.

Split from ``wire`` so the transport itself reads as what it does per attempt; these are
the pieces that speak the protocol. ``fast_invoice`` renders the engine's plain invoice
messages without the ``email`` package (checked against it once per run by the transport),
and ``scratch_root`` picks RAM for a run's throwaway Maildir when there is room.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

from simulator.net.receiver import DROPPED, Reply
from simulator.net.sink import XMAILSIM, MailContext, xmailsim_value

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
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


def wire_body(body: bytes) -> bytes:
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


async def bounded(coro: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wait_for(coro, SMTP_TIMEOUT)


class SmtpClient:
    """A minimal asyncio SMTP client; it runs on the sink's own event loop (no thread hand-offs)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.dirty = False  # a transaction stopped before DATA: RSET before the next MAIL
        self.broken = False  # an exception left a transaction half-way: never reuse

    @classmethod
    async def open(cls, port: int, header: bytes) -> tuple[SmtpClient, Reply]:
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
        await self.send(wire_body(body))
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
        payload = wire_body(body())
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


def mail_line(sender: str, size: int | None, ctx: MailContext | None) -> str:
    line = f"MAIL FROM:<{sender}>"
    if size is not None:
        line += f" SIZE={size}"
    if ctx is not None:
        line += f" {XMAILSIM}={xmailsim_value(ctx)}"
    return line
