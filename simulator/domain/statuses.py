"""The product's own status words (the guide's Step 1 table) and recipient outcomes.

They are ``StrEnum`` so the values that reach JSON, traces and scenario files are
exactly the labels people see in the Invoicing module ("In Queue", "N/A").
"""

from __future__ import annotations

from enum import StrEnum


class EmailStatus(StrEnum):
    NA = "N/A"
    PENDING = "Pending"
    IN_QUEUE = "In Queue"
    SENT = "Sent"


class BatchStatus(StrEnum):
    DRAFT = "Draft"
    SENT = "Sent"


class Outcome(StrEnum):
    NONE = "none"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    INBOX = "inbox"
    JUNK = "junk"
    BOUNCED = "bounced"

