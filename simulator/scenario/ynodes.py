"""The nodes a parsed scenario is made of: mappings and lists that remember where each key, value
and item was, and plain scalars resolved by the YAML 1.2 core schema.

Apart from :mod:`simulator.scenario.yamltree` (which composes them from a parser's events) so
that :mod:`simulator.scenario.flowrows` can build the same nodes from the lines it reads itself.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

__all__ = ["MAX_INT_DIGITS", "TEXT_FIRST", "Pos", "TooLarge", "YMap", "YSeq", "node_size", "resolve_plain"]

Pos = tuple[int, int]  # (line, column), 1-based

MAX_INT_DIGITS = 40


class YMap(dict[Any, Any]):
    """A mapping with the position of itself, each key and each value.

    ``size`` is the number of nodes the mapping stands for with every alias expanded (the
    alias-bomb budget); trees built by hand may leave it at 1.
    """

    __slots__ = ("keypos", "pos", "size", "valpos")

    def __init__(self, pos: Pos) -> None:  # no dict.__init__(): with no arguments it does nothing
        self.pos = pos
        self.size = 1
        self.keypos: dict[Any, Pos] = {}
        self.valpos: dict[Any, Pos] = {}


class YSeq(list[Any]):
    """A sequence with the position of itself and of each item (``size`` as for :class:`YMap`)."""

    __slots__ = ("itempos", "pos", "size")

    def __init__(self, pos: Pos) -> None:  # no list.__init__(): with no arguments it does nothing
        self.pos = pos
        self.size = 1
        self.itempos: list[Pos] = []


class TooLarge:
    """A number with more digits than any field accepts (kept out of int() on purpose)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"TooLarge({self.text[:20]}...)"

    def __str__(self) -> str:
        return self.text if len(self.text) <= 40 else self.text[:37] + "..."


_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_INT_RE = re.compile(r"[-+]?[0-9][0-9_]*")
_OCT_RE = re.compile(r"0o[0-7_]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F_]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)")

def _int(text: str, base: int) -> int | TooLarge:
    digits = text.replace("_", "")
    if len(digits) > MAX_INT_DIGITS:
        return TooLarge(text)
    return int(digits, base)


# first characters of a plain scalar that resolve_plain returns as it is: no null (~, null), bool
# (true, false) or number (digits, + - .) starts with one of them
TEXT_FIRST = frozenset(string.ascii_letters) - frozenset("nNtTfF")


def node_size(node: object) -> int:
    """The nodes ``node`` stands for (a scalar is one; see :class:`YMap`)."""
    return node.size if isinstance(node, YMap | YSeq) else 1


def resolve_plain(text: str) -> object:
    """A plain (unquoted) scalar by the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    first = text[:1]
    if not first or not (first.isdigit() or first in "+-."):
        return text
    if _INT_RE.fullmatch(text):
        return _int(text, 10)
    if _OCT_RE.fullmatch(text):
        return _int(text[2:], 8)
    if _HEX_RE.fullmatch(text):
        return _int(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        if len(text) > 400:
            return TooLarge(text)
        return float(text.replace("_", ""))
    if _INF_RE.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN_RE.fullmatch(text):
        return math.nan
    return text
