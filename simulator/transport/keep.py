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

from simulator.net.dnsview import DnsView
from simulator.net.maildir import DEFAULT_HOSTNAME, Maildir, stored_body, stored_head
from simulator.net.messages import render_invoice
from simulator.net.receiver import ReceivingServer
from simulator.transport.base import Attempt, AttemptResult, Dsn, EnginePort
from simulator.transport.memory import MemoryTransport

_EOL = re.compile(rb"\r\n|\r|\n")


def as_sent(body: bytes) -> bytes:
    """The message as DATA carries it to the sink: every line end CRLF, ending in one."""
    data = _EOL.sub(b"\r\n", body)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class KeepingTransport:
    """The memory transport, plus a Maildir file for every copy it stores."""

    def __init__(self, port: EnginePort, root: Path, hostname: str = DEFAULT_HOSTNAME) -> None:
        self.port = port
        scn = port.scenario
        # the same DNS view and receiver the engine builds for its plain memory transport, offered to it
        self.dns: DnsView | None = DnsView(port.zone, scn.faults, scn.seed)
        dns = self.dns
        self.receiver: ReceivingServer | None = ReceivingServer(scn.mailboxes, scn.faults, scn.seed, dns.spf,
                                                                port.store)
        self.inner = MemoryTransport(self.receiver, state_key=lambda: (port.zone.version, dns.epoch()))
        self.store = self.inner.store
        self.dsns = self.inner.dsns
        self.hostname = self.receiver.hostname
        self.maildir = Maildir(root, hostname)
        self.files = 0

    # -- what the sink would have received --------------------------------------------------------
    def _body(self, att: Attempt, message_id: str) -> Callable[[], bytes]:
        """Message ``message_id`` sent in ``att``'s envelope (``att.render`` renders only its own id)."""
        if message_id == att.message_id:
            return att.render

        def render() -> bytes:
            invoice = self.port.invoice_of(message_id)
            if invoice is None:
                raise RuntimeError(f"--maildir: cannot render {message_id} (not an engine message id)")
            return render_invoice(message_id=message_id, sender=att.mail_from, rcpts=att.rcpts,
                                  invoice=invoice, start=self.port.scenario.start, now=att.now)

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


def keeping_transport(root: Path) -> Callable[[EnginePort], KeepingTransport]:
    """The factory ``simulate(scn, transport=...)`` takes: the memory transport writing Maildir ``root``."""
    return lambda port: KeepingTransport(port, root)
