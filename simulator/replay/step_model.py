"""The stepper's vocabulary: replies, breakpoints, the names ``until``/``break`` accept, the view's layout.

Kept apart from the commands (``stepper.py``) and the state view (``step_view.py``) so each can
be read alone; nothing here touches a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from simulator.domain.entities import DAY
from simulator.domain.vocabulary import EMAIL_STATUSES

Record = dict[str, Any]

#: Every trace event the engine emits (for ``until EVENT`` / ``break on event`` and their hints).
EVENT_NAMES: tuple[str, ...] = (
    "batch.draft", "batch.completed", "batch.already_completed", "invoice.status", "email.blocked", "email.stuck",
    "email.sent", "smtp.reply", "email.deferred", "email.delivered", "email.bounced", "user.login",
    "user.password_changed", "user.deactivated", "user.activated", "sync.expired", "sync.resynced", "sync.set",
    "sync.removed", "contact.changed", "contact.refused", "property.changed", "settings.changed", "dns.changed",
    "fault.started", "fault.ended",
)
#: ``until``/``break on status`` also accept recipient outcomes: the event that shows each.
OUTCOME_WORDS: tuple[str, ...] = ("inbox", "junk", "bounced", "deferred")
STATUS_STYLE = {"Sent": "green", "In Queue": "yellow", "Pending": "cyan", "N/A": "red"}
PIN_INVOICES = 200  # save: pin at most this many invoices one by one (the rest by counts)
PIN_MAILBOXES = 50

HELP = """\
next [N]            reveal the next N trace events (default 1)
until WHAT          run until TIME (ISO), +DURATION (from now), an EVENT
                    name (email.stuck), a STATUS any invoice reaches (Sent,
                    In Queue, N/A, Pending) or an outcome (inbox, junk,
                    bounced, deferred); 'until end' runs to the end
back [N]            go back N events (exact: re-runs the model)
goto SEQ            go to event #SEQ (back or forward)
break on invoice INV | reason CODE | event NAME | status S
break list | break clear [N]     breakpoints stop next N and until
show invoice|user|queue|mailbox X   details; 'show events [N]' recent events
why INV             the explanation of INV at this instant
inject EVENT        what-if, e.g. inject resync: nora  (undo with back)
save FILE           a scenario that reproduces this run, outcomes pinned
help, quit          (Enter redraws the screen)"""


class CommandError(Exception):
    """A bad command: its message is the one-line hint shown to the user."""


@dataclass
class Reply:
    lines: list[Text] = field(default_factory=list)
    state: bool = False  # the state view follows (a move happened)
    quit: bool = False
    error: bool = False

    def add(self, line: str | Text, style: str = "") -> Reply:
        self.lines.append(line if isinstance(line, Text) else Text(line, style=style))
        return self


@dataclass(frozen=True)
class Break:
    kind: str  # invoice | reason | event | status
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"

    def matches(self, rec: Record) -> bool:
        if self.kind == "invoice":
            return rec.get("invoice") == self.value
        if self.kind == "reason":
            return rec.get("reason") == self.value
        if self.kind == "event":
            return event_matches(self.value, str(rec["event"]))
        return status_reached(self.value, rec)


def event_matches(pattern: str, name: str) -> bool:
    """``email.stuck`` exactly; ``email.`` or ``email.*`` any event of that family."""
    if pattern.endswith(".*"):
        pattern = pattern[:-1]
    return name.startswith(pattern) if pattern.endswith(".") else name == pattern


def status_reached(status: str, rec: Record) -> bool:
    """Does this trace event show an invoice (or a recipient) reaching ``status``?"""
    ev = rec["event"]
    if status in OUTCOME_WORDS:
        if status in ("inbox", "junk"):
            return ev == "email.delivered" and rec.get("folder") == status
        return ev == f"email.{status}"
    if status == "Sent":
        return ev == "email.sent"
    return ev == "invoice.status" and rec.get("email_status") == status


def parse_status(word: str) -> str | None:
    """``in queue``, ``InQueue``, ``in-queue`` → ``In Queue``; ``n/a``, ``na`` → ``N/A``; outcomes too."""
    key = re.sub(r"[\s_\-/]", "", word).lower()
    for s in EMAIL_STATUSES:
        if re.sub(r"[\s/]", "", s).lower() == key:
            return s
    return word.lower() if word.lower() in OUTCOME_WORDS else None


def _fit(text: Text, width: int) -> Text:
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width, overflow="ellipsis")
    return text


def _days(seconds: int) -> str:
    return f"{seconds / DAY:.1f}d"


_MIN_ROWS = {"inv": 3, "queue": 1, "users": 2, "smtp": 1}
_SHRINK_ORDER = ("users", "smtp", "queue", "inv")


def _allocate(budget: int, need: dict[str, int]) -> dict[str, int]:
    """Rows per section of the state view: what each needs, shrunk to fit ``budget``."""
    caps = {k: max(0, n) for k, n in need.items()}
    while sum(caps.values()) > budget:
        # shrink the section with the most rows to spare; invoice rows count half (they matter most)
        slack = {k: (caps[k] - _MIN_ROWS[k]) * (0.5 if k == "inv" else 1.0) for k in _SHRINK_ORDER}
        k = max(_SHRINK_ORDER, key=lambda x: slack[x])
        if slack[k] <= 0:
            break
        caps[k] -= 1
    return caps
