"""The default transport: the recipients' servers run in-process on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from simulator.net.dnsview import DnsView
from simulator.net.receiver import MailStore, ReceivingServer
from simulator.transport.base import Attempt, AttemptResult, Dsn, Repeated, run_transaction, run_transactions


class MemoryTransport:
    """Runs each SMTP transaction against the in-process ``ReceivingServer``.

    Two shortcuts keep a million emails cheap without changing a single reply:
    a cohort of messages with one envelope runs one transaction when no
    per-message draw or per-mailbox counter can tell them apart
    (``ReceivingServer.shareable``), and a transaction whose inputs were all seen
    before (same envelope, DNS state and active faults, no greylisting) reuses the
    earlier result, filing the copies the server would have filed. A slow result
    (``delay > 0``) files nothing while it runs: :meth:`settle` files its copies
    when the MTA applies it.
    """

    dns: DnsView | None = None  # the engine keeps its own DNS view and receiver
    receiver: ReceivingServer | None = None

    def __init__(self, server: ReceivingServer, *, keep_dsn: bool = True,
                 state_key: Callable[[], Hashable] | None = None) -> None:
        self.server = server
        self.store: MailStore = server.store
        self.keep_dsn = keep_dsn
        self.dsns: list[Dsn] = []
        self.state_key = state_key  # what else the replies depend on (the engine's DNS version and epoch)
        self._memo: dict[Hashable, AttemptResult] = {}

    def _key(self, att: Attempt) -> Hashable | None:
        if self.state_key is None or att.size is not None:
            return None
        plan = self.server.plan(att.domain, att.now)
        if not plan.shareable or plan.policy.greylist:
            return None
        return (att.client_ip, att.helo, att.mail_from, att.domain, att.rcpts, plan.faults, self.state_key())

    def _run(self, att: Attempt, message_ids: Sequence[str] | None = None) -> AttemptResult:
        """One transaction for ``att``, and identical copies filed for the rest of ``message_ids``
        (the envelope's messages, ``att``'s first; None: ``att``'s alone).

        A remembered result files every message, ``att``'s too, since no transaction filed it.
        """
        key = self._key(att)
        res = self._memo.get(key) if key is not None else None
        pending: Sequence[str]
        if res is None:
            res = run_transaction(self.server, att, att.size)
            if key is not None:
                if len(self._memo) > 100_000:
                    self._memo.clear()
                self._memo[key] = res
            pending = message_ids[1:] if message_ids is not None else ()
        else:
            pending = message_ids if message_ids is not None else (att.message_id,)
        if res.folder is not None and pending and not res.delay:  # delayed: filed by settle, at the 250
            accepted = [r for r, rep in zip(att.rcpts, res.replies, strict=True) if rep.ok]
            self.server.file_copies(accepted, res.folder, pending, att.now)
        return res

    def settle(self, att: Attempt, result: AttemptResult, message_ids: Sequence[str], at: int) -> None:
        """File a slow transaction's copies when its 250 is applied (``at`` = start + delay)."""
        if result.folder is None or not message_ids:
            return
        accepted = [r for r, rep in zip(att.rcpts, result.replies, strict=True) if rep.ok]
        self.server.file_copies(accepted, result.folder, message_ids, at)

    def attempt(self, att: Attempt) -> AttemptResult:
        return self._run(att)

    def attempt_many(self, first: Attempt, message_ids: Sequence[str]) -> Sequence[AttemptResult]:
        """One envelope, many messages: run one transaction when the replies cannot differ."""
        if len(message_ids) == 1:
            return [self._run(first)]
        if not self.server.shareable(first.domain, first.now):
            # per message, but only the per-message parts: see run_transactions
            return run_transactions(self.server, first, message_ids)
        return Repeated(self._run(first, message_ids), len(message_ids))

    def deliver_dsn(self, dsn: Dsn) -> None:
        # §8: a DSN goes straight to the sender's own mailbox: no MX, no SPF filing.
        self.store.file(dsn.to, "bounce", dsn.message_id, dsn.now)
        if self.keep_dsn:
            self.dsns.append(dsn)

    def close(self) -> None:
        return None
