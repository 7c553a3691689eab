"""The product's own status words (the guide's Step 1 table) and recipient outcomes.

They are ``StrEnum`` so the values that reach JSON, traces and scenario files are
exactly the labels people see in the Invoicing module ("In Queue", "N/A").
"""

from __future__ import annotations

from enum import StrEnum


class EmailStatus(StrEnum):
    """An invoice's Email Status as the Invoicing module shows it."""

    NA = "N/A"
    PENDING = "Pending"
    IN_QUEUE = "In Queue"
    SENT = "Sent"


class BatchStatus(StrEnum):
    """An invoice batch's status; a completed batch is ``Sent`` in the product's own words."""

    DRAFT = "Draft"
    SENT = "Sent"


class Outcome(StrEnum):
    """What became of one recipient of a sent email."""

    NONE = "none"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    INBOX = "inbox"
    JUNK = "junk"
    BOUNCED = "bounced"

