"""The default transport: the recipients' servers run in-process on the virtual clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from simulator.net.receiver import MailStore, ReceivingServer
from simulator.transport.base import Attempt, AttemptResult, Dsn, run_transaction


class MemoryTransport:
    def __init__(self, server: ReceivingServer, *, keep_dsn: bool = True) -> None:
        self.server = server
        self.store: MailStore = server.store
        self.keep_dsn = keep_dsn
        self.dsns: list[Dsn] = []

    def attempt(self, att: Attempt) -> AttemptResult:
        return run_transaction(self.server, att, att.size)

    def attempt_many(self, first: Attempt, message_ids: Sequence[str]) -> Sequence[AttemptResult]:
        """One envelope, many messages: run one transaction when the replies cannot differ."""
        if len(message_ids) == 1:
            return [run_transaction(self.server, first)]
        if not self.server.shareable(first.domain, first.now):
            return [run_transaction(self.server, replace(first, message_id=mid)) for mid in message_ids]
        res = run_transaction(self.server, first)
        if res.folder is not None:
            accepted = [r for r, rep in zip(first.rcpts, res.replies, strict=True) if rep.ok]
            self.server.file_copies(accepted, res.folder, message_ids[1:], first.now)
        return [res] * len(message_ids)

    def deliver_dsn(self, dsn: Dsn) -> None:
        # §8: a DSN goes straight to the sender's own mailbox: no MX, no SPF filing.
        self.store.file(dsn.to, "bounce", dsn.message_id, dsn.now)
        if self.keep_dsn:
            self.dsns.append(dsn)

    def close(self) -> None:
        return None
