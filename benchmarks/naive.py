"""The naive SimPy baseline of DESIGN §6: one process per email, three timeouts.

It models the same workload as :mod:`benchmarks.scenarios` with the least work a
process-per-email model can do:

1. wait for the email's batch to complete (timeout until the completion time);
2. wait for the queue poll that sends it (the next ``queue_poll`` grid point; for the
   emails of the region sender while its token is dead, the first poll at or after the
   resync);
3. wait for delivery (``DELIVERY_DELAY`` seconds), then count it delivered.

Bookkeeping is the minimum: per-email ``sent_at``/``delivered_at`` arrays and a
per-domain delivered counter. No sender resolution, no SMTP, no trace. mailsim must be
at least 2× faster than this, measured in the same benchmark run.
"""

from __future__ import annotations

from array import array
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from benchmarks.scenarios import (
    BATCH_EVERY_MIN,
    BRANCHES,
    DOMAINS,
    PROPERTIES_PER_BRANCH,
    Workload,
    contact_index,
    workload,
)

QUEUE_POLL = 60
DELIVERY_DELAY = 1


@dataclass(slots=True)
class NaiveResult:
    emails: int
    sent: int
    delivered: int
    blocked: int  # emails sent at the resync poll rather than the completion poll
    delivered_per_domain: dict[str, int]
    end: int
    sent_at: array[int]


def _next_poll(t: int) -> int:
    return -(-t // QUEUE_POLL) * QUEUE_POLL


def run_naive(emails: int, batches: int = 1000) -> NaiveResult:
    w: Workload = workload(emails, batches)
    env = simpy.Environment()
    sent_at = array("q", [-1]) * emails
    delivered_at = array("q", [-1]) * emails
    counts = {d: 0 for d in DOMAINS}
    totals = [0, 0, 0]  # sent, delivered, blocked
    expiry, resync = w.expiry_min * 60, w.resync_min * 60

    def email(i: int, completed: int, region_sender: bool, domain: str) -> Generator[Any, Any, None]:
        yield env.timeout(completed)
        now = int(env.now)
        send = _next_poll(now)
        if region_sender and expiry <= send < resync:
            send = _next_poll(resync)
            totals[2] += 1
        yield env.timeout(send - now)
        sent_at[i] = int(env.now)
        totals[0] += 1
        yield env.timeout(DELIVERY_DELAY)
        delivered_at[i] = int(env.now)
        counts[domain] += 1
        totals[1] += 1

    i = 0
    for k in range(batches):
        branch = k % len(BRANCHES)
        completed = k * BATCH_EVERY_MIN * 60
        region_sender = branch != 2
        for j in range(w.per_batch):
            c = contact_index(branch, j % PROPERTIES_PER_BRANCH)
            env.process(email(i, completed, region_sender, DOMAINS[c % len(DOMAINS)]))
            i += 1
    env.run()
    return NaiveResult(emails, totals[0], totals[1], totals[2], counts, int(env.now), sent_at)
