"""The scenario loader's value converters and the position-keeping view of a YAML mapping.

Every converter has the signature ``(reader, value, pos, where) -> value`` and raises a located
:class:`ScenarioError` through :meth:`Reader.fail` — the only way a problem leaves the loader.
``where`` is the value's path in the document (``settings.queue_poll``, ``users[2].email``),
so messages name the key as the author wrote it. The section parsers
(:mod:`simulator.scenario.sections`) and their key tables (:mod:`simulator.scenario.fields`)
are built on these.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, NoReturn, TypeVar

from simulator.domain.dns import DnsTextError, canonical_name
from simulator.domain.entities import DEFAULT_PROVIDERS
from simulator.scenario.errors import ScenarioError, TimeFormatError, closest, did_you_mean
from simulator.scenario.limits import MAX_LIST_ITEMS, MAX_SMALL_LIST
from simulator.scenario.times import parse_duration, parse_time
from simulator.scenario.yamltree import TooLarge, YMap, YSeq

T = TypeVar("T")
D = TypeVar("D")

MAX_SMALL_INT = 2**31 - 1
MAX_ID_LENGTH = 200

ID_RE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")  # no whitespace, no control characters
DNS_LABEL_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?|\*")


class Pos(NamedTuple):
    """A 1-based line and column in the scenario file (a tuple: one is made for every value read)."""

    line: int
    col: int


# --- value descriptions -------------------------------------------------------------------


def describe(value: object) -> str:
    """The value as a message quotes it (``'five minutes'``, ``the number 3``, ``a list``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, TooLarge):
        return "a number too large to use"
    if isinstance(value, int):
        return f"the number {int(value)}" if abs(value) < 10**30 else "a very large number"
    if isinstance(value, float):
        return f"the number {float(value)!r}"
    if isinstance(value, str):
        text = str(value)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, datetime):
        return f"the timestamp {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    tag = getattr(value, "tag", None)
    if tag is not None:
        return f"a value tagged {getattr(tag, 'value', tag)}"
    return f"a value of type {type(value).__name__}"


def short(text: object, limit: int = 60) -> str:
    """A key or value short enough to quote in a one-line message (values may be 64K characters)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def plain(value: object) -> object:
    """Scalar as a plain Python value (ruamel hands out subclasses)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


Converter = Callable[["Reader", object, Pos, str], T]


class MapView:
    """A YAML mapping with its position and its path in the document (for messages)."""

    __slots__ = ("data", "pos", "reader", "where")

    def __init__(self, reader: Reader, data: dict[Any, Any], pos: Pos, where: str) -> None:
        self.reader = reader
        self.data = data
        self.pos = pos
        self.where = where

    def sub(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def kpos(self, key: object) -> Pos:
        found = self.data.keypos.get(key) if isinstance(self.data, YMap) else None
        return Pos(*found) if found is not None else self.pos

    def vpos(self, key: object) -> Pos:
        return Pos(*value_pos(self.data, key)) if isinstance(self.data, YMap) else self.pos

    def has(self, key: str) -> bool:
        """Present and not null (``null`` means unset)."""
        return self.data.get(key) is not None

    def raw(self, key: str) -> object:
        return self.data.get(key)

    def check_keys(self, allowed: Sequence[str], what: str = "") -> None:
        for key in self.data:
            if isinstance(key, str) and key in allowed:
                continue
            where = f" in {what or self.where}" if (what or self.where) else ""
            if not isinstance(key, str):
                self.reader.fail(self.kpos(key), f"unexpected key {describe(key)}{where}")
            hint = did_you_mean(key, allowed)
            if not hint:
                hint = "; expected one of: " + ", ".join(allowed)
            self.reader.fail(self.kpos(key), f"unknown key {short(key)!r}{where}{hint}")

    def get(self, key: str, convert: Converter[T], default: D) -> T | D:
        value = self.data.get(key)
        if value is None:
            return default
        return convert(self.reader, value, self.vpos(key), self.sub(key))

    def req(self, key: str, convert: Converter[T]) -> T:
        if key not in self.data:
            where = f" in {self.where}" if self.where else ""
            self.reader.fail(self.pos, f"missing required key {key!r}{where}")
        value = self.data.get(key)
        if value is None:
            self.reader.fail(self.vpos(key), f"{self.sub(key)}: a value is required, got null")
        return convert(self.reader, value, self.vpos(key), self.sub(key))

    def opt(self, key: str, convert: Converter[T]) -> T | None:
        value = self.data.get(key)
        if value is None:
            return None
        return convert(self.reader, value, self.vpos(key), self.sub(key))


#: A (line, column) as the composer stores it: a :class:`Pos` or the plain tuple of a YAML node.
LineCol = tuple[int, int]


def value_pos(node: YMap, key: object) -> LineCol:
    """:meth:`MapView.vpos` of a composed mapping, as the tuple the composer stored (no Pos made)."""
    found: LineCol | None = node.valpos.get(key) or node.keypos.get(key)
    return found if found is not None else node.pos


@dataclass(slots=True)
class Ids:
    """Where each id of the initial state was defined, by kind (references are checked against it).

    The positions are the composer's own tuples where a section's quick path defines the id (no
    :class:`Pos` is built per row for a message that is almost never written).
    """

    regions: dict[str, LineCol] = field(default_factory=dict)
    branches: dict[str, LineCol] = field(default_factory=dict)
    users: dict[str, LineCol] = field(default_factory=dict)
    contacts: dict[str, LineCol] = field(default_factory=dict)
    properties: dict[str, LineCol] = field(default_factory=dict)
    batches: dict[str, LineCol] = field(default_factory=dict)


@dataclass(slots=True)
class CompactBatch:
    """A compact batch's id range: ``<batch>-1 … <batch>-<count>``, zero-padded to ``width``."""

    batch: str
    count: int
    width: int

    def first(self) -> str:
        return f"{self.batch}-{1:0{self.width}d}"

    def last(self) -> str:
        return f"{self.batch}-{self.count:0{self.width}d}"


@dataclass(slots=True)
class InvoiceIds:
    """The invoices of the file so far: explicit ids, compact ranges, and the running totals."""

    explicit: dict[str, tuple[str, Pos]] = field(default_factory=dict)  # id -> (batch, position)
    compact: dict[str, CompactBatch] = field(default_factory=dict)  # batch id -> its range
    total: int = 0  # compact counts plus explicit invoices, against MAX_TOTAL_INVOICES
    written_out: int = 0  # explicit invoices, against MAX_EXPLICIT_INVOICES

    def compact_match(self, ident: str) -> CompactBatch | None:
        """The compact batch that generates ``ident``, if any (no expansion)."""
        prefix, dash, digits = ident.rpartition("-")
        if not dash or not digits.isascii() or not digits.isdigit():
            return None
        c = self.compact.get(prefix)
        if c is None or len(digits) != c.width or not 1 <= int(digits) <= c.count:
            return None
        return c


class Reader:
    """The state of one load: the file's path, its ``start``, the ids defined so far, the warnings.

    Its methods are the converters the section tables name; each checks one value and returns
    it in the form the domain types hold, or fails with the value's position.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.start: datetime | None = None
        self.ids = Ids()
        self.provider_names = tuple(p.name for p in DEFAULT_PROVIDERS)  # and those under providers:
        self.warnings: list[str] = []
        self.invoices = InvoiceIds()  # filled by batches:, read by expect:

    # --- errors and positions ---------------------------------------------------------------

    def fail(self, pos: Pos, message: str) -> NoReturn:
        raise ScenarioError(self.path, pos.line, pos.col, message)

    def warn(self, pos: Pos, message: str) -> None:
        self.warnings.append(f"{self.loc(pos)}: {message}")

    def loc(self, pos: LineCol) -> str:
        """``path:line:col`` of a :class:`Pos` or of the composer's own (line, column) tuple."""
        return f"{self.path}:{pos[0]}:{pos[1]}"

    def item_pos(self, seq: object, i: int, default: Pos) -> Pos:
        if isinstance(seq, YSeq) and i < len(seq.itempos):
            return Pos(*seq.itempos[i])
        return default

    def node_pos(self, node: object, default: Pos) -> Pos:
        if isinstance(node, YMap | YSeq):
            return Pos(*node.pos)
        return default

    # --- shapes -----------------------------------------------------------------------------

    def map(self, value: object, pos: Pos, where: str, what: str = "a mapping") -> MapView:
        if not isinstance(value, dict):
            self.fail(
                pos,
                f"{where}: expected {what}, got {describe(value)}"
                if where
                else f"expected {what}, got {describe(value)}",
            )
        return MapView(self, value, self.node_pos(value, pos), where)

    def seq(
        self, value: object, pos: Pos, where: str, what: str = "a list", limit: int = MAX_LIST_ITEMS, instead: str = ""
    ) -> Iterator[tuple[object, Pos, str]]:
        """Items with their positions; a list longer than ``limit`` fails at its first item past it.

        The length is checked before any item, so a huge list (e.g. ``- *e`` repeated) costs nothing
        to reject; ``instead`` says what to write instead.
        """
        for i, item in enumerate(self.items(value, pos, where, what, limit, instead)):
            yield item, self.item_pos(value, i, pos), f"{where}[{i}]"

    def items(
        self, value: object, pos: Pos, where: str, what: str = "a list", limit: int = MAX_LIST_ITEMS, instead: str = ""
    ) -> list[Any]:
        """The list itself after :meth:`seq`'s checks, for a quick path that makes an item's position and
        path (:meth:`item_pos`, ``f"{where}[{i}]"``) only when the item needs the full converter."""
        if not isinstance(value, list):
            self.fail(pos, f"{where}: expected {what}, got {describe(value)}")
        if len(value) > limit:
            self.fail(
                self.item_pos(value, limit, pos),
                f"{where}: more than {limit:,} items; at most {limit:,} are allowed here"
                + (f" ({instead})" if instead else ""),
            )
        return value

    # --- scalars ----------------------------------------------------------------------------

    def string(self, value: object, pos: Pos, where: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected a string, got {describe(value)}")
        return str(value)

    def text(self, value: object, pos: Pos, where: str) -> str:
        """A non-empty string."""
        s = self.string(value, pos, where)
        if not s.strip():
            self.fail(pos, f"{where}: expected a non-empty string, got {describe(value)}")
        return s

    def ident(self, value: object, pos: Pos, where: str) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(pos, f"{where}: expected an id (a string), got {describe(value)}; quote it: '{value}'")
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected an id (a string), got {describe(value)}")
        s = str(value)
        if not ID_RE.fullmatch(s) or len(s) > MAX_ID_LENGTH:
            self.fail(
                pos,
                f"{where}: an id must be 1-{MAX_ID_LENGTH} characters without spaces or control characters, "
                f"got {describe(s)}",
            )
        return s

    def boolean(self, value: object, pos: Pos, where: str) -> bool:
        if not isinstance(value, bool):
            hint = ""
            if isinstance(value, str) and value.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
                hint = " (YAML 1.2: write true or false)"
            self.fail(pos, f"{where}: expected true or false, got {describe(value)}{hint}")
        return bool(value)

    def integer(self, value: object, pos: Pos, where: str, lo: int = 0, hi: int = MAX_SMALL_INT) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(pos, f"{where}: expected a whole number, got {describe(value)}")
        n = int(value)
        if not lo <= n <= hi:
            self.fail(pos, f"{where}: expected a whole number from {lo} to {hi}, got {describe(n)}")
        return n

    def count_int(self, value: object, pos: Pos, where: str) -> int:
        return self.integer(value, pos, where, 0, MAX_SMALL_INT)

    def amount(self, value: object, pos: Pos, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(pos, f"{where}: expected a number like 120.00, got {describe(value)}")
        try:
            amount = float(value)
        except OverflowError:
            self.fail(pos, f"{where}: the number is too large")
        if not math.isfinite(amount) or abs(amount) > 1e15:
            self.fail(pos, f"{where}: expected a finite amount, got {describe(value)}")
        return amount

    def probability(self, value: object, pos: Pos, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(pos, f"{where}: expected a probability from 0 to 1, got {describe(value)}")
        try:
            prob = float(value)
        except OverflowError:
            prob = math.inf
        if not 0.0 <= prob <= 1.0:
            self.fail(pos, f"{where}: expected a probability from 0 to 1, got {describe(value)}")
        return prob

    def choice(self, value: object, pos: Pos, where: str, options: Sequence[str], what: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected {what} ({', '.join(options)}), got {describe(value)}")
        s = str(value)
        if s in options:
            return s
        hint = did_you_mean(s, options) or f"; expected one of: {', '.join(options)}"
        self.fail(pos, f"{where}: unknown {what} {short(s)!r}{hint}")

    # --- durations and times ----------------------------------------------------------------

    def duration(self, value: object, pos: Pos, where: str) -> int:
        try:
            return parse_duration(value)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")

    def positive_duration(self, value: object, pos: Pos, where: str) -> int:
        d = self.duration(value, pos, where)
        if d <= 0:
            self.fail(pos, f"{where}: must be longer than 0s, got {describe(value)}")
        return d

    def time(self, value: object, pos: Pos, where: str) -> int:
        assert self.start is not None
        try:
            t = parse_time(value, self.start)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")
        assert t is not None
        return t

    def time_not_before_start(self, value: object, pos: Pos, where: str) -> int:
        t = self.time(value, pos, where)
        if t < 0:
            self.fail(pos, f"{where}: must not be before start, got {describe(value)}")
        return t

    def initial_time(self, value: object, pos: Pos, where: str) -> int:
        t = self.time(value, pos, where)
        if t > 0:
            self.fail(
                pos,
                f"{where}: {describe(value)} is after start; the initial state is at start "
                "(use a timeline event for later changes)",
            )
        return t

    def time_or_end(self, value: object, pos: Pos, where: str) -> int | None:
        assert self.start is not None
        try:
            t = parse_time(value, self.start, allow_end=True)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")
        if t is not None and t < 0:
            self.fail(pos, f"{where}: must not be before start, got {describe(value)}")
        return t

    # --- network values ---------------------------------------------------------------------

    def ip(self, value: object, pos: Pos, where: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected an IP address like 198.51.100.10, got {describe(value)}")
        try:
            return str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            self.fail(pos, f"{where}: expected an IP address like 198.51.100.10, got {describe(value)}")

    def ip_list(self, value: object, pos: Pos, where: str) -> tuple[str, ...]:
        return tuple(
            self.ip(v, p, w) for v, p, w in self.seq(value, pos, where, "a list of IP addresses", MAX_SMALL_LIST)
        )

    def dns_name(self, value: object, pos: Pos, where: str, wildcard: bool = False) -> str:
        expected = "a DNS name like mx.client.example"
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected {expected}, got {describe(value)}")
        name = str(value).strip().lower()
        if name.endswith("."):
            name = name[:-1]
        labels = name.split(".")
        ok = 0 < len(name) <= 253 and all(DNS_LABEL_RE.fullmatch(label) for label in labels)
        if ok and "*" in labels and (not wildcard or labels.index("*") != 0 or labels.count("*") > 1):
            ok = False
        if not ok:
            self.fail(pos, f"{where}: expected {expected}, got {describe(value)}")
        return name

    def wildcard_name(self, value: object, pos: Pos, where: str, wildcard: bool = True) -> str:
        """A name in dns: — any label bytes, written with zone-file escapes (DESIGN §8); '.' only as a target."""
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected a DNS name like mx.client.example, got {describe(value)}")
        try:
            return canonical_name(str(value), wildcard=wildcard, root=not wildcard)
        except DnsTextError as e:
            self.fail(pos, f"{where}: expected a DNS name like mx.client.example ({e})")

    def zone_target(self, value: object, pos: Pos, where: str) -> str:
        """A name a dns: record points at (or unreachable: lists): as in dns:, and the root '.' is allowed."""
        return self.wildcard_name(value, pos, where, wildcard=False)

    def provider_name(self, value: object, pos: Pos, where: str) -> str:
        """A sync provider: any id is accepted (an unsupported provider is a real case), but a name
        close to a known one is probably a typo, so it is reported as a warning (DESIGN §8)."""
        name = self.ident(value, pos, where)
        if name not in self.provider_names:
            match = closest(name, self.provider_names)
            if match is not None:
                self.warn(
                    pos,
                    f"{where}: unknown provider {short(name)!r}, taken as an unsupported provider "
                    f"(its user sends on the SMTP path); did you mean {match!r}?",
                )
        return name

    def address(self, value: object, pos: Pos, where: str) -> str:
        """An email address as entered (raw); only its type and non-emptiness are checked."""
        return self.text(value, pos, where)

    # --- ids and references -----------------------------------------------------------------

    def ref(self, value: object, pos: Pos, where: str, kind: str, table: dict[str, LineCol]) -> str:
        ident = self.ident(value, pos, where)
        if ident not in table:
            plural = "branches" if kind == "branch" else "properties" if kind == "property" else f"{kind}s"
            hint = did_you_mean(ident, table, cutoff=0.5)
            if not hint:
                known = list(table)
                hint = (
                    f"; no {plural} are defined"
                    if not known
                    else f"; defined {plural}: " + ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
                )
            self.fail(pos, f"{where}: unknown {kind} {ident!r}{hint}")
        return ident

    def define(self, table: dict[str, LineCol], ident: str, pos: LineCol, kind: str) -> None:
        first = table.get(ident)
        if first is not None:
            self.fail(Pos(*pos), f"duplicate {kind} id {ident!r} (first defined at line {first[0]})")
        table[ident] = pos

    def region_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "region", self.ids.regions)

    def branch_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "branch", self.ids.branches)

    def user_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "user", self.ids.users)

    def contact_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "contact", self.ids.contacts)

    def property_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "property", self.ids.properties)

    def batch_ref(self, value: object, pos: Pos, where: str) -> str:
        return self.ref(value, pos, where, "batch", self.ids.batches)
