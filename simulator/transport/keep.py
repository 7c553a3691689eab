"""Keep the mail of a memory-mode run: every stored copy written as the sink would write it.

``mailsim run FILE --maildir DIR``: in wire mode the sink itself writes DIR; in
memory mode nothing goes over SMTP, so :class:`KeepingTransport` wraps the
memory transport and, for each copy the in-process receiver files (inbox or
junk) and each DSN put into a sender's mailbox, writes the file the sink would
have written for the same transaction: the same Maildir layout and names
(:class:`~simulator.net.maildir.Maildir`), the same stored copy
(:func:`~simulator.net.maildir.stored_head` and ``stored_body`` of the
message as DATA carries it, one file hard-linked for all its recipients).
A test holds the two runs' folders byte-identical.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from simulator.net.maildir import DEFAULT_HOSTNAME, Maildir, stored_body, stored_head
from simulator.net.messages import render_invoice
from simulator.net.receiver import ReceivingServer
from simulator.transport.base import Attempt, AttemptResult, Dsn
from simulator.transport.memory import MemoryTransport


class Engine(Protocol):
    """What this transport reads of the engine that builds it (the factory's argument)."""

    receiver: ReceivingServer
    zone: Any  # .version: bumped on every DNS change
    dns: Any  # .epoch(): the DNS faults' state

    @property
    def scn(self) -> Any: ...  # .start: datetime

    def email_of(self, invoice: str) -> Any: ...  # the invoice's Email (.message_id, .invoice) or None

_EOL = re.compile(rb"\r\n|\r|\n")
# the engine's message ids (``Email.message_id``): ``<INVOICE@mailsim.invalid>``
_ENGINE_MID = re.compile(r"<(.+)@mailsim\.invalid>\Z")


def as_sent(body: bytes) -> bytes:
    """The message as DATA carries it to the sink: every line end CRLF, ending in one."""
    data = _EOL.sub(b"\r\n", body)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class KeepingTransport:
    """The memory transport, plus a Maildir file for every copy it stores."""

    def __init__(self, engine: Engine, root: Path, hostname: str = DEFAULT_HOSTNAME) -> None:
        self.engine = engine
        self.inner = MemoryTransport(engine.receiver, state_key=lambda: (engine.zone.version, engine.dns.epoch()))
        self.store = self.inner.store
        self.dsns = self.inner.dsns
        self.hostname = engine.receiver.hostname
        self.maildir = Maildir(root, hostname)
        self.files = 0

    # -- what the sink would have received --------------------------------------------------------
    def _body(self, att: Attempt, message_id: str) -> Callable[[], bytes]:
        """Message ``message_id`` sent in ``att``'s envelope (``att.render`` renders only its own id)."""
        if message_id == att.message_id:
            return att.render

        def render() -> bytes:
            m = _ENGINE_MID.match(message_id)
            email = self.engine.email_of(m.group(1)) if m is not None else None
            if email is None or email.message_id != message_id:
                raise RuntimeError(f"--maildir: cannot render {message_id} (not an engine message id)")
            return render_invoice(message_id=message_id, sender=att.mail_from, rcpts=att.rcpts,
                                  invoice=email.invoice, start=self.engine.scn.start, now=att.now)

        return render

    def _keep(self, att: Attempt, message_id: str, res: AttemptResult, now: int) -> None:
        if res.folder is None:
            return
        accepted = [r for r, rep in zip(att.rcpts, res.replies, strict=True) if rep.ok]
        if not accepted:
            return
        # the receiver's Received-SPF value (ReceivingServer.data_end), from the verdict the result carries
        spf = (f"{res.spf_result} ({self.hostname}: {res.spf_explanation}) client-ip={att.client_ip};"
               f" envelope-from=\"{att.mail_from}\"; helo={att.helo};")
        body = stored_body(as_sent(self._body(att, message_id)()))
        # one file, hard-linked into every recipient's folder, as the sink stores it
        self.maildir.deliver_all(accepted, res.folder, message_id, now, stored_head(att.mail_from, spf), body)
        self.files += len(accepted)

    # -- the Transport protocol -------------------------------------------------------------------
    def attempt(self, att: Attempt) -> AttemptResult:
        res = self.inner.attempt(att)
        if not res.delay:
            self._keep(att, att.message_id, res, att.now)
        return res

    def attempt_many(self, first: Attempt, message_ids: Sequence[str]) -> Sequence[AttemptResult]:
        results = self.inner.attempt_many(first, message_ids)
        for mid, res in zip(message_ids, results, strict=True):
            if not res.delay:
                self._keep(first, mid, res, first.now)
        return results

    def settle(self, att: Attempt, result: AttemptResult, message_ids: Sequence[str], at: int) -> None:
        self.inner.settle(att, result, message_ids, at)
        for mid in message_ids:
            self._keep(att, mid, result, at)

    def deliver_dsn(self, dsn: Dsn) -> None:
        self.inner.deliver_dsn(dsn)
        if dsn.to:  # as in wire mode: a DSN for an empty sender is counted, never sent anywhere
            body = stored_body(as_sent(dsn.render()))
            self.maildir.deliver_all([dsn.to], "bounce", dsn.message_id, dsn.now, stored_head(""), body)
            self.files += 1

    def close(self) -> None:
        self.inner.close()
        self.maildir.close()


def keeping_transport(root: Path) -> Callable[[Engine], KeepingTransport]:
    """The factory ``simulate(scn, transport=...)`` takes: the memory transport writing Maildir ``root``."""
    return lambda engine: KeepingTransport(engine, root)
