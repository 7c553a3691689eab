"""The one error the scenario loader raises: a message with a file position."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ScenarioError(Exception):
    """A scenario file is invalid. ``str(e) == f"{path}:{line}:{column}: {message}"`` (1-based)."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{path}:{line}:{column}: {message}")

    @property
    def loc(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, int, int, str]]:
        return (ScenarioError, (self.path, self.line, self.column, self.message))


class TimeFormatError(ValueError):
    """A duration or time string is malformed; the loader adds the position."""


def closest(word: str, candidates: Iterable[str], limit: int = 50_000, cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (difflib), or None when nothing is close."""
    pool: list[str] = []
    lower: dict[str, str] = {}
    for i, c in enumerate(candidates):
        if i >= limit:
            break
        pool.append(c)
        lower.setdefault(c.lower(), c)
    if word.lower() in lower:
        return lower[word.lower()]
    found = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if found:
        return found[0]
    # a truncated or extended word ("ident" for "id", "sync_" for "sync")
    low = word.lower()
    prefixed = [c for c in pool if len(c) >= 2 and (low.startswith(c.lower()) or c.lower().startswith(low))]
    if len(low) >= 2 and prefixed:
        return min(prefixed, key=lambda c: abs(len(c) - len(word)))
    return None


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` or ``""``."""
    match = closest(word, candidates, cutoff=cutoff)
    return f"; did you mean {match!r}?" if match is not None and match != word else ""
