"""A mapping a world changes one entry at a time without copying it whole: :class:`Overlay`.

A :class:`~simulator.domain.world.World` is a value: every event returns a new one and the old
ones stay valid (the stepper steps back to them). Its batch statuses change once per batch
completion, and copying the whole mapping each time made a run quadratic in its batches: 10,000
batches spent a second copying and freeing dicts (half of a 100k-email run). An overlay keeps
the changes since its base apart and folds them in once they outnumber the square root of the
base, so a change costs O(√n) amortised and a lookup at most two dict lookups.

Pure: no I/O, no clock. Kept out of the compiled modules on purpose (it subclasses ``Mapping``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Overlay(Mapping[K, V]):
    """``base`` with ``changes`` laid over it; never changed in place (``with_entry`` makes new ones).

    Iteration follows what ``dict(base) | changes`` would: the base's keys in its order, then the
    keys only the changes hold, in the order they were added. ``flat()`` is that dict, made once.
    """

    __slots__ = ("_base", "_changes", "_flat")

    def __init__(self, base: Mapping[K, V], changes: dict[K, V] | None = None) -> None:
        self._base = base
        self._changes: dict[K, V] = {} if changes is None else changes
        self._flat: dict[K, V] | None = None

    def __getitem__(self, key: K) -> V:
        changes = self._changes
        if key in changes:
            return changes[key]
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._changes or key in self._base

    def __iter__(self) -> Iterator[K]:
        yield from self._base
        base = self._base
        for key in self._changes:
            if key not in base:
                yield key

    def __len__(self) -> int:
        base = self._base
        return len(base) + sum(1 for key in self._changes if key not in base)

    def __repr__(self) -> str:
        return f"Overlay({self.flat()!r})"

    def flat(self) -> dict[K, V]:
        """Every entry as one plain dict (made on the first call, then kept: the overlay never changes)."""
        if self._flat is None:
            out = dict(self._base)
            out.update(self._changes)
            self._flat = out
        return self._flat

    def with_entry(self, key: K, value: V) -> Overlay[K, V]:
        changes = dict(self._changes)
        changes[key] = value
        if len(changes) ** 2 > len(self._base):  # fold: the changes would outgrow √n
            base = dict(self._base)
            base.update(changes)
            return Overlay(base)
        return Overlay(self._base, changes)


def with_entry(mapping: Mapping[K, V], key: K, value: V) -> Overlay[K, V]:
    """``mapping`` with ``key`` set to ``value``, as an overlay sharing what did not change.

    ``mapping`` is taken as immutable (a world's mappings are never changed in place).
    """
    if type(mapping) is Overlay:
        return mapping.with_entry(key, value)
    return Overlay(mapping).with_entry(key, value)


def flat(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """``mapping`` as a plain dict when it is an overlay (for readers that look up every entry)."""
    if type(mapping) is Overlay:
        return mapping.flat()
    return mapping
