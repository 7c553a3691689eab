"""The default transport: the recipients' servers run in-process on the virtual clock."""

from __future__ import annotations

from simulator.net.receiver import MailStore, ReceivingServer
from simulator.transport.base import Attempt, AttemptResult, Dsn, run_transaction


class MemoryTransport:
    def __init__(self, server: ReceivingServer, *, keep_dsn: bool = True) -> None:
        self.server = server
        self.store: MailStore = server.store
        self.keep_dsn = keep_dsn
        self.dsns: list[Dsn] = []

    def attempt(self, att: Attempt) -> AttemptResult:
        return run_transaction(self.server, att)

    def deliver_dsn(self, dsn: Dsn) -> None:
        # §8: a DSN goes straight to the sender's own mailbox: no MX, no SPF filing.
        self.store.file(dsn.to, "bounce", dsn.message_id, dsn.now)
        if self.keep_dsn:
            self.dsns.append(dsn)

    def close(self) -> None:
        return None
