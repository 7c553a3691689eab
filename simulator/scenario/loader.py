"""Load a ``mailsim/1`` scenario file (DESIGN §3) into the immutable :class:`Scenario`.

The YAML is composed by :mod:`simulator.scenario.yamltree`, which keeps the line and column
of every key, value and list item, so each :class:`ScenarioError` points at the offending
node. Validation is explicit code, one function per section; the first problem found
is raised. Nothing but :class:`ScenarioError` leaves :func:`load_scenario`.

Compact batches (``invoices: {count, properties}``) are never expanded: uniqueness of
invoice ids and references to them are checked arithmetically. The size limits of
:mod:`simulator.scenario.limits` (file size, total invoices, section lengths) are checked
before the work they bound, so an absurd file fails in milliseconds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from simulator.domain.dns import (
    DNS_RECORD_TYPES,
    Dns,
    DnsRecord,
    DnsTextError,
    Unreachable,
    canonical_name,
    canonical_value,
    check_record,
)
from simulator.domain.entities import (
    DEFAULT_PROVIDERS,
    Batch,
    Branch,
    CompactInvoices,
    Configuration,
    Contact,
    Invoice,
    MailboxDomain,
    Organization,
    Platform,
    Property,
    PropertyContact,
    Provider,
    Region,
    Settings,
    SpfPolicy,
    Sync,
    User,
)
from simulator.domain.events import EVENT_KINDS, USER_EVENT_KINDS, Event, make_event
from simulator.domain.faults import FAULT_KINDS, SMTP_STAGES, Fault
from simulator.domain.vocabulary import (
    BATCH_STATUSES,
    EMAIL_STATUSES,
    REASON_CODES,
    RECIPIENT_OUTCOMES,
    RECIPIENT_ROLES,
    SPF_ACTIONS,
    SPF_RESULTS,
)
from simulator.scenario.errors import ScenarioError, TimeFormatError, did_you_mean
from simulator.scenario.limits import (
    MAX_DNS_RECORDS,
    MAX_ENTITIES,
    MAX_EXPECTATIONS,
    MAX_EXPLICIT_INVOICES,
    MAX_FAULTS,
    MAX_FILE_BYTES,
    MAX_LIST_ITEMS,
    MAX_MAILBOX_DOMAINS,
    MAX_QUEUE_POLLS,
    MAX_SMALL_LIST,
    MAX_TIMELINE_EVENTS,
    MAX_TOTAL_INVOICES,
)
from simulator.scenario.model import Expectation, Scenario
from simulator.scenario.times import format_duration, parse_duration, parse_start, parse_time
from simulator.scenario.yamltree import TooLarge, YMap, YSeq, no_cyclic_gc, parse_yaml, too_large

__all__ = ["SUPPORTED_SCHEMAS", "ScenarioError", "load_scenario", "load_scenario_text", "load_tree"]

SUPPORTED_SCHEMAS: tuple[str, ...] = ("mailsim/1",)

MAX_COMPACT_COUNT = 1_000_000_000
MAX_SEED = 2**64 - 1
MAX_SMALL_INT = 2**31 - 1
MAX_ID_LENGTH = 200

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class _Pos:
    line: int  # 1-based
    col: int


_TOP_KEYS = (
    "schema",
    "name",
    "description",
    "start",
    "seed",
    "until",
    "tags",
    "settings",
    "platform",
    "providers",
    "organization",
    "users",
    "contacts",
    "properties",
    "batches",
    "dns",
    "mailboxes",
    "timeline",
    "faults",
    "expect",
)


# expect: shapes (DESIGN §3), discriminated by their leading key
_EXPECT_SHAPES: dict[str, tuple[str, ...]] = {
    "count": ("count", "equals", "at"),
    "mailbox": ("mailbox", "bounces", "inbox", "junk", "at"),
    "never": ("invoice", "recipient", "never", "until"),
    "recipient": ("invoice", "recipient", "outcome", "reason", "within", "at"),
    "invoice": ("invoice", "email_status", "batch_status", "reason", "at"),
}
_EXPECT_ALL_KEYS = tuple(dict.fromkeys(k for keys in _EXPECT_SHAPES.values() for k in keys))
_MATCH_KEYS = ("email_status", "batch_status", "outcome", "reason")

_ID_RE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")  # no whitespace, no control characters
_DNS_LABEL_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?|\*")


# --- value descriptions -------------------------------------------------------------------


def _describe(value: object) -> str:
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


def _short(text: object, limit: int = 60) -> str:
    """A key or value short enough to quote in a one-line message (values may be 64K characters)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _plain(value: object) -> object:
    """Scalar as a plain Python value (ruamel hands out subclasses)."""
    if _is_bool(value):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


# --- the loader -----------------------------------------------------------------------------


class _Map:
    """A YAML mapping with its position and its path in the document (for messages)."""

    __slots__ = ("data", "ld", "pos", "where")

    def __init__(self, ld: _Loader, data: dict[Any, Any], pos: _Pos, where: str) -> None:
        self.ld = ld
        self.data = data
        self.pos = pos
        self.where = where

    def sub(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def kpos(self, key: object) -> _Pos:
        found = self.data.keypos.get(key) if isinstance(self.data, YMap) else None
        return _Pos(*found) if found is not None else self.pos

    def vpos(self, key: object) -> _Pos:
        found = self.data.valpos.get(key) if isinstance(self.data, YMap) else None
        return _Pos(*found) if found is not None else self.kpos(key)

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
                self.ld.fail(self.kpos(key), f"unexpected key {_describe(key)}{where}")
            hint = did_you_mean(key, allowed)
            if not hint:
                hint = "; expected one of: " + ", ".join(allowed)
            self.ld.fail(self.kpos(key), f"unknown key {_short(key)!r}{where}{hint}")

    def get(self, key: str, conv: Callable[[object, _Pos, str], T], default: D) -> T | D:
        value = self.data.get(key)
        if value is None:
            return default
        return conv(value, self.vpos(key), self.sub(key))

    def req(self, key: str, conv: Callable[[object, _Pos, str], T]) -> T:
        if key not in self.data:
            where = f" in {self.where}" if self.where else ""
            self.ld.fail(self.pos, f"missing required key {key!r}{where}")
        value = self.data.get(key)
        if value is None:
            self.ld.fail(self.vpos(key), f"{self.sub(key)}: a value is required, got null")
        return conv(value, self.vpos(key), self.sub(key))

    def opt(self, key: str, conv: Callable[[object, _Pos, str], T]) -> T | None:
        value = self.data.get(key)
        if value is None:
            return None
        return conv(value, self.vpos(key), self.sub(key))


@dataclass(slots=True)
class _Compact:
    batch: str
    count: int
    width: int


class _Loader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.start: datetime | None = None
        self.regions: dict[str, _Pos] = {}
        self.branches: dict[str, _Pos] = {}
        self.users: dict[str, _Pos] = {}
        self.contacts: dict[str, _Pos] = {}
        self.properties: dict[str, _Pos] = {}
        self.batches: dict[str, _Pos] = {}
        self.invoices: dict[str, tuple[str, _Pos]] = {}  # explicit invoice id -> (batch, pos)
        self.compact: dict[str, _Compact] = {}  # batch id -> compact batch
        self.total_invoices = 0  # compact counts plus explicit invoices, against MAX_TOTAL_INVOICES
        self.explicit_invoices = 0  # against MAX_EXPLICIT_INVOICES

    # --- errors and positions ---------------------------------------------------------------

    def fail(self, pos: _Pos, message: str) -> NoReturn:
        raise ScenarioError(self.path, pos.line, pos.col, message)

    def loc(self, pos: _Pos) -> str:
        return f"{self.path}:{pos.line}:{pos.col}"

    def item_pos(self, seq: object, i: int, default: _Pos) -> _Pos:
        if isinstance(seq, YSeq) and i < len(seq.itempos):
            return _Pos(*seq.itempos[i])
        return default

    def node_pos(self, node: object, default: _Pos) -> _Pos:
        if isinstance(node, YMap | YSeq):
            return _Pos(*node.pos)
        return default

    # --- shape converters: (value, pos, where) -> value -------------------------------------

    def map(self, value: object, pos: _Pos, where: str, what: str = "a mapping") -> _Map:
        if not isinstance(value, dict):
            self.fail(
                pos,
                f"{where}: expected {what}, got {_describe(value)}"
                if where
                else f"expected {what}, got {_describe(value)}",
            )
        return _Map(self, value, self.node_pos(value, pos), where)

    def seq(
        self, value: object, pos: _Pos, where: str, what: str = "a list", limit: int = MAX_LIST_ITEMS, instead: str = ""
    ) -> Iterator[tuple[object, _Pos, str]]:
        """Items with their positions; a list longer than ``limit`` fails at its first item past it.

        The length is checked before any item, so a huge list (e.g. ``- *e`` repeated) costs nothing
        to reject; ``instead`` says what to write instead.
        """
        if not isinstance(value, list):
            self.fail(pos, f"{where}: expected {what}, got {_describe(value)}")
        if len(value) > limit:
            self.fail(
                self.item_pos(value, limit, pos),
                f"{where}: more than {limit:,} items; at most {limit:,} are allowed here"
                + (f" ({instead})" if instead else ""),
            )
        for i, item in enumerate(value):
            yield item, self.item_pos(value, i, pos), f"{where}[{i}]"

    def string(self, value: object, pos: _Pos, where: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected a string, got {_describe(value)}")
        return str(value)

    def text(self, value: object, pos: _Pos, where: str) -> str:
        """A non-empty string."""
        s = self.string(value, pos, where)
        if not s.strip():
            self.fail(pos, f"{where}: expected a non-empty string, got {_describe(value)}")
        return s

    def ident(self, value: object, pos: _Pos, where: str) -> str:
        if isinstance(value, int | float) and not _is_bool(value):
            self.fail(pos, f"{where}: expected an id (a string), got {_describe(value)}; quote it: '{value}'")
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected an id (a string), got {_describe(value)}")
        s = str(value)
        if not _ID_RE.fullmatch(s) or len(s) > MAX_ID_LENGTH:
            self.fail(
                pos,
                f"{where}: an id must be 1-{MAX_ID_LENGTH} characters without spaces or control characters, "
                f"got {_describe(s)}",
            )
        return s

    def boolean(self, value: object, pos: _Pos, where: str) -> bool:
        if not _is_bool(value):
            hint = ""
            if isinstance(value, str) and value.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
                hint = " (YAML 1.2: write true or false)"
            self.fail(pos, f"{where}: expected true or false, got {_describe(value)}{hint}")
        return bool(value)

    def integer(self, value: object, pos: _Pos, where: str, lo: int = 0, hi: int = MAX_SMALL_INT) -> int:
        if _is_bool(value) or not isinstance(value, int):
            self.fail(pos, f"{where}: expected a whole number, got {_describe(value)}")
        n = int(value)
        if not lo <= n <= hi:
            self.fail(pos, f"{where}: expected a whole number from {lo} to {hi}, got {_describe(n)}")
        return n

    def count_int(self, value: object, pos: _Pos, where: str) -> int:
        return self.integer(value, pos, where, 0, MAX_SMALL_INT)

    def duration(self, value: object, pos: _Pos, where: str) -> int:
        try:
            return parse_duration(value)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")

    def positive_duration(self, value: object, pos: _Pos, where: str) -> int:
        d = self.duration(value, pos, where)
        if d <= 0:
            self.fail(pos, f"{where}: must be longer than 0s, got {_describe(value)}")
        return d

    def time(self, value: object, pos: _Pos, where: str) -> int:
        assert self.start is not None
        try:
            t = parse_time(value, self.start)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")
        assert t is not None
        return t

    def time_not_before_start(self, value: object, pos: _Pos, where: str) -> int:
        t = self.time(value, pos, where)
        if t < 0:
            self.fail(pos, f"{where}: must not be before start, got {_describe(value)}")
        return t

    def initial_time(self, value: object, pos: _Pos, where: str) -> int:
        t = self.time(value, pos, where)
        if t > 0:
            self.fail(
                pos,
                f"{where}: {_describe(value)} is after start; the initial state is at start "
                "(use a timeline event for later changes)",
            )
        return t

    def time_or_end(self, value: object, pos: _Pos, where: str) -> int | None:
        assert self.start is not None
        try:
            t = parse_time(value, self.start, allow_end=True)
        except TimeFormatError as e:
            self.fail(pos, f"{where}: {e}")
        if t is not None and t < 0:
            self.fail(pos, f"{where}: must not be before start, got {_describe(value)}")
        return t

    def choice(self, value: object, pos: _Pos, where: str, options: Sequence[str], what: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected {what} ({', '.join(options)}), got {_describe(value)}")
        s = str(value)
        if s in options:
            return s
        hint = did_you_mean(s, options) or f"; expected one of: {', '.join(options)}"
        self.fail(pos, f"{where}: unknown {what} {_short(s)!r}{hint}")

    def ip(self, value: object, pos: _Pos, where: str) -> str:
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected an IP address like 198.51.100.10, got {_describe(value)}")
        try:
            return str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            self.fail(pos, f"{where}: expected an IP address like 198.51.100.10, got {_describe(value)}")

    def ip_list(self, value: object, pos: _Pos, where: str) -> tuple[str, ...]:
        return tuple(
            self.ip(v, p, w) for v, p, w in self.seq(value, pos, where, "a list of IP addresses", MAX_SMALL_LIST)
        )

    def dns_name(self, value: object, pos: _Pos, where: str, wildcard: bool = False) -> str:
        expected = "a DNS name like mx.client.example"
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected {expected}, got {_describe(value)}")
        name = str(value).strip().lower()
        if name.endswith("."):
            name = name[:-1]
        labels = name.split(".")
        ok = 0 < len(name) <= 253 and all(_DNS_LABEL_RE.fullmatch(label) for label in labels)
        if ok and "*" in labels and (not wildcard or labels.index("*") != 0 or labels.count("*") > 1):
            ok = False
        if not ok:
            self.fail(pos, f"{where}: expected {expected}, got {_describe(value)}")
        return name

    def wildcard_name(self, value: object, pos: _Pos, where: str, wildcard: bool = True) -> str:
        """A name in dns: — any label bytes, written with zone-file escapes (DESIGN §8); '.' only as a target."""
        if not isinstance(value, str):
            self.fail(pos, f"{where}: expected a DNS name like mx.client.example, got {_describe(value)}")
        try:
            return canonical_name(str(value), wildcard=wildcard, root=not wildcard)
        except DnsTextError as e:
            self.fail(pos, f"{where}: expected a DNS name like mx.client.example ({e})")

    def address(self, value: object, pos: _Pos, where: str) -> str:
        """An email address as entered (raw); only its type and non-emptiness are checked."""
        return self.text(value, pos, where)

    def ref(self, value: object, pos: _Pos, where: str, kind: str, table: dict[str, _Pos]) -> str:
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

    def define(self, table: dict[str, _Pos], ident: str, pos: _Pos, kind: str) -> None:
        first = table.get(ident)
        if first is not None:
            self.fail(pos, f"duplicate {kind} id {ident!r} (first defined at line {first.line})")
        table[ident] = pos

    # --- document ----------------------------------------------------------------------------

    def scenario(self, doc: object, default_name: str, source: str, sha256: str) -> Scenario:
        top = self.map(doc, _Pos(1, 1), "", "a mapping of scenario keys (schema, name, start, ...)")
        if "schema" not in top.data:
            self.fail(top.pos, f"missing required key 'schema' (use schema: {SUPPORTED_SCHEMAS[0]})")
        schema = top.raw("schema")
        if not isinstance(schema, str) or str(schema) not in SUPPORTED_SCHEMAS:
            self.fail(
                top.vpos("schema"),
                f"schema: unsupported schema {_describe(schema)}; supported: {', '.join(SUPPORTED_SCHEMAS)}",
            )
        top.check_keys(_TOP_KEYS, "the scenario")
        if "start" not in top.data:
            self.fail(top.pos, "missing required key 'start' (e.g. start: 2026-11-02T09:00:00Z)")
        try:
            self.start = parse_start(top.raw("start"))
        except TimeFormatError as e:
            self.fail(top.vpos("start"), f"start: {e}")

        name = top.get("name", self.text, default_name)
        description = top.get("description", self.string, "")
        seed = top.get("seed", lambda v, p, w: self.integer(v, p, w, 0, MAX_SEED), 0)
        until = top.opt("until", self.time_not_before_start)
        tags = top.get("tags", self.tags, ())
        settings = top.get("settings", self.settings, Settings())
        if until is not None and until // settings.queue_poll > MAX_QUEUE_POLLS:
            self.fail(
                top.vpos("until"),
                f"until: a run of {_describe(top.raw('until'))} polls the queue {until // settings.queue_poll:,} times "
                f"(every {format_duration(settings.queue_poll)}); at most {MAX_QUEUE_POLLS:,} "
                "(raise settings.queue_poll or end the run sooner)",
            )
        platform = top.get("platform", self.platform, Platform())
        providers = top.get("providers", self.providers, DEFAULT_PROVIDERS)
        organization = top.get("organization", self.organization, Organization())
        users = top.get("users", self.user_list, ())
        contacts = top.get("contacts", self.contact_list, ())
        properties = top.get("properties", self.property_list, ())
        batches = top.get("batches", self.batch_list, ())
        dns = top.get("dns", self.dns, Dns())
        mailboxes = top.get("mailboxes", self.mailbox_list, ())
        timeline = top.get("timeline", self.timeline, ())
        faults = top.get("faults", self.fault_list, ())
        expect = top.get("expect", self.expect_list, ())
        return Scenario(
            name=name,
            start=self.start,
            seed=seed,
            description=description,
            until=until,
            tags=tags,
            settings=settings,
            platform=platform,
            providers=providers,
            organization=organization,
            users=users,
            contacts=contacts,
            properties=properties,
            batches=batches,
            dns=dns,
            mailboxes=mailboxes,
            timeline=timeline,
            faults=faults,
            expect=expect,
            source=source,
            sha256=sha256,
        )

    def tags(self, value: object, pos: _Pos, where: str) -> tuple[str, ...]:
        return tuple(self.text(v, p, w) for v, p, w in self.seq(value, pos, where, "a list of tags", MAX_SMALL_LIST))

    # --- settings, platform, providers -------------------------------------------------------

    def settings(self, value: object, pos: _Pos, where: str) -> Settings:
        m = self.map(value, pos, where)
        m.check_keys(
            (
                "queue_poll",
                "stuck_after",
                "token_lifetime",
                "smtp_path_requires_spf",
                "retry_schedule",
                "max_queue_lifetime",
            )
        )
        d = Settings()
        return Settings(
            queue_poll=m.get("queue_poll", self.positive_duration, d.queue_poll),
            stuck_after=m.get("stuck_after", self.duration, d.stuck_after),
            token_lifetime=m.get("token_lifetime", self.positive_duration, d.token_lifetime),
            smtp_path_requires_spf=m.get("smtp_path_requires_spf", self.boolean, d.smtp_path_requires_spf),
            retry_schedule=m.get("retry_schedule", self.retry_schedule, d.retry_schedule),
            max_queue_lifetime=m.get("max_queue_lifetime", self.duration, d.max_queue_lifetime),
        )

    def retry_schedule(self, value: object, pos: _Pos, where: str) -> tuple[int, ...]:
        items = tuple(
            self.positive_duration(v, p, w)
            for v, p, w in self.seq(
                value,
                pos,
                where,
                "a list of durations",
                MAX_SMALL_LIST,
                "the last interval repeats until the lifetime ends",
            )
        )
        if not items:
            self.fail(pos, f"{where}: needs at least one interval, e.g. [5m, 10m, 20m]")
        return items

    def platform(self, value: object, pos: _Pos, where: str) -> Platform:
        m = self.map(value, pos, where)
        m.check_keys(("sending_ips", "helo"))
        d = Platform()
        ips = m.get("sending_ips", self.ip_list, d.sending_ips)
        if not ips:
            self.fail(m.vpos("sending_ips"), f"{m.sub('sending_ips')}: needs at least one IP address")
        return Platform(sending_ips=ips, helo=m.get("helo", self.dns_name, d.helo))

    def providers(self, value: object, pos: _Pos, where: str) -> tuple[Provider, ...]:
        m = self.map(value, pos, where, "a mapping of provider name to settings")
        result: dict[str, Provider] = {p.name: p for p in DEFAULT_PROVIDERS}
        for key, item in m.data.items():
            kpos = m.kpos(key)
            if not isinstance(key, str) or not _ID_RE.fullmatch(str(key)) or len(key) > MAX_ID_LENGTH:
                self.fail(kpos, f"{where}: expected a provider name, got {_describe(key)}")
            name = str(key)
            base = result.get(name, Provider(name, ()))
            if item is None:
                result[name] = base
                continue
            pm = self.map(item, m.vpos(key), m.sub(name))
            pm.check_keys(("sending_ips", "spf_include", "helo"))
            result[name] = Provider(
                name=name,
                sending_ips=pm.get("sending_ips", self.ip_list, base.sending_ips),
                spf_include=pm.get("spf_include", self.dns_name, base.spf_include),
                helo=pm.get("helo", self.dns_name, base.helo),
            )
        return tuple(result.values())

    # --- organization ---------------------------------------------------------------------------

    def organization(self, value: object, pos: _Pos, where: str) -> Organization:
        m = self.map(value, pos, where)
        m.check_keys(("configuration", "regions", "branches"))
        configuration = m.get("configuration", self.configuration, Configuration())
        regions = m.get("regions", self.region_list, ())
        branches = m.get("branches", self.branch_list, ())
        return Organization(configuration=configuration, regions=regions, branches=branches)

    def configuration(self, value: object, pos: _Pos, where: str) -> Configuration:
        m = self.map(value, pos, where)
        m.check_keys(("invoice_email_from", "invoice_recipients"))
        d = Configuration()
        return Configuration(
            invoice_email_from=m.opt("invoice_email_from", self.address),
            invoice_recipients=m.get("invoice_recipients", self.roles, d.invoice_recipients),
        )

    def roles(self, value: object, pos: _Pos, where: str) -> tuple[str, ...]:
        seen: dict[str, _Pos] = {}
        for v, p, w in self.seq(value, pos, where, "a list of roles", MAX_SMALL_LIST):
            role = self.choice(v, p, w, RECIPIENT_ROLES, "role")
            if role in seen:
                self.fail(p, f"{w}: role {role!r} is listed twice")
            seen[role] = p
        if not seen:
            self.fail(pos, f"{where}: needs at least one role ({', '.join(RECIPIENT_ROLES)})")
        return tuple(seen)

    def region_list(self, value: object, pos: _Pos, where: str) -> tuple[Region, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of regions", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "invoicing_email_from"))
            ident = m.req("id", self.ident)
            self.define(self.regions, ident, m.vpos("id"), "region")
            out.append(Region(ident, m.opt("invoicing_email_from", self.address), self.loc(m.pos)))
        return tuple(out)

    def branch_list(self, value: object, pos: _Pos, where: str) -> tuple[Branch, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of branches", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "region", "invoicing_email_from"))
            ident = m.req("id", self.ident)
            self.define(self.branches, ident, m.vpos("id"), "branch")
            region = m.opt("region", lambda v, p, w: self.ref(v, p, w, "region", self.regions))
            out.append(Branch(ident, region, m.opt("invoicing_email_from", self.address), self.loc(m.pos)))
        return tuple(out)

    # --- users, contacts, properties ------------------------------------------------------------

    def user_list(self, value: object, pos: _Pos, where: str) -> tuple[User, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of users", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "email", "active", "sync"))
            ident = m.req("id", self.ident)
            self.define(self.users, ident, m.vpos("id"), "user")
            out.append(
                User(
                    id=ident,
                    email=m.req("email", self.address),
                    active=m.get("active", self.boolean, True),
                    sync=m.opt("sync", self.sync),
                    loc=self.loc(m.pos),
                )
            )
        return tuple(out)

    def sync(self, value: object, pos: _Pos, where: str) -> Sync:
        m = self.map(value, pos, where)
        m.check_keys(("provider", "synced", "last_login", "password_changed"))
        return Sync(
            provider=m.req("provider", self.ident),
            synced=m.req("synced", self.initial_time),
            last_login=m.opt("last_login", self.initial_time),
            password_changed=m.opt("password_changed", self.initial_time),
        )

    def contact_list(self, value: object, pos: _Pos, where: str) -> tuple[Contact, ...]:
        out = []
        emails: dict[str, tuple[str, _Pos]] = {}
        for v, p, w in self.seq(value, pos, where, "a list of contacts", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "email", "active"))
            ident = m.req("id", self.ident)
            self.define(self.contacts, ident, m.vpos("id"), "contact")
            email = m.req("email", self.string)
            key = email.strip().lower()
            if key:
                first = emails.get(key)
                if first is not None:
                    self.fail(
                        m.vpos("email"),
                        f"{m.sub('email')}: duplicate contact email {_short(email.strip())!r}: contact {first[0]!r} "
                        f"(line {first[1].line}) already has it (emails are unique, ignoring case and spaces)",
                    )
                emails[key] = (ident, m.vpos("email"))
            out.append(Contact(ident, email, m.get("active", self.boolean, True), self.loc(m.pos)))
        return tuple(out)

    def property_list(self, value: object, pos: _Pos, where: str) -> tuple[Property, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of properties", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "branch", "contacts"))
            ident = m.req("id", self.ident)
            self.define(self.properties, ident, m.vpos("id"), "property")
            branch = m.req("branch", lambda v, p, w: self.ref(v, p, w, "branch", self.branches))
            contacts = m.get("contacts", self.property_contacts, ())
            out.append(Property(ident, branch, contacts, self.loc(m.pos)))
        return tuple(out)

    def property_contacts(self, value: object, pos: _Pos, where: str) -> tuple[PropertyContact, ...]:
        out = []
        seen: dict[str, _Pos] = {}
        for v, p, w in self.seq(
            value, pos, where, "a list of {contact, email_invoice, primary, billing}", MAX_SMALL_LIST
        ):
            m = self.map(v, p, w)
            m.check_keys(("contact", "email_invoice", "primary", "billing"))
            contact = m.req("contact", lambda v, p, w: self.ref(v, p, w, "contact", self.contacts))
            if contact in seen:
                self.fail(
                    m.vpos("contact"),
                    f"{m.sub('contact')}: contact {contact!r} is listed twice "
                    f"on this property (first at line {seen[contact].line})",
                )
            seen[contact] = m.vpos("contact")
            out.append(
                PropertyContact(
                    contact=contact,
                    email_invoice=m.get("email_invoice", self.boolean, False),
                    primary=m.get("primary", self.boolean, False),
                    billing=m.get("billing", self.boolean, False),
                )
            )
        return tuple(out)

    # --- batches ----------------------------------------------------------------------------------

    def property_ref(self, value: object, pos: _Pos, where: str) -> str:
        return self.ref(value, pos, where, "property", self.properties)

    def batch_list(self, value: object, pos: _Pos, where: str) -> tuple[Batch, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of batches", MAX_ENTITIES):
            m = self.map(v, p, w)
            m.check_keys(("id", "invoices"))
            ident = m.req("id", self.ident)
            self.define(self.batches, ident, m.vpos("id"), "batch")
            raw = m.raw("invoices")
            loc = self.loc(m.pos)
            if raw is None:
                out.append(Batch(ident, loc=loc))
            elif isinstance(raw, dict):
                out.append(
                    Batch(
                        ident, compact=self.compact_invoices(ident, raw, m.vpos("invoices"), m.sub("invoices")), loc=loc
                    )
                )
            elif isinstance(raw, list):
                out.append(
                    Batch(ident, invoices=self.invoice_list(ident, raw, m.vpos("invoices"), m.sub("invoices")), loc=loc)
                )
            else:
                self.fail(
                    m.vpos("invoices"),
                    f"{m.sub('invoices')}: expected a list of invoices or {{count: N, properties: [...]}}, "
                    f"got {_describe(raw)}",
                )
        self.check_compact_collisions()
        return tuple(out)

    def compact_invoices(self, batch: str, value: object, pos: _Pos, where: str) -> CompactInvoices:
        m = self.map(value, pos, where)
        m.check_keys(("count", "properties"), f"{where} (compact form)")
        count = m.req("count", lambda v, p, w: self.integer(v, p, w, 1, MAX_COMPACT_COUNT))
        props = m.req(
            "properties",
            lambda v, p, w: tuple(
                self.property_ref(iv, ip, iw)
                for iv, ip, iw in self.seq(v, p, w, "a list of property ids", MAX_ENTITIES)
            ),
        )
        if not props:
            self.fail(m.vpos("properties"), f"{m.sub('properties')}: needs at least one property")
        self.add_invoices(count, m.vpos("count"), m.sub("count"))
        self.compact[batch] = _Compact(batch, count, len(str(count)))
        return CompactInvoices(count, props)

    def invoice_list(self, batch: str, value: object, pos: _Pos, where: str) -> tuple[Invoice, ...]:
        out = []
        instead = "use the compact form, invoices: {count: N, properties: [...]}"
        for v, p, w in self.seq(value, pos, where, "a list of invoices", MAX_LIST_ITEMS, instead):
            m = self.map(v, p, w, "an invoice {id, property, amount}")
            m.check_keys(("id", "property", "amount"))
            ident = m.req("id", self.ident)
            first = self.invoices.get(ident)
            if first is not None:
                self.fail(
                    m.vpos("id"),
                    f"duplicate invoice id {ident!r} (first in batch {first[0]!r} at line {first[1].line})",
                )
            self.invoices[ident] = (batch, m.vpos("id"))
            self.explicit_invoices += 1
            if self.explicit_invoices > MAX_EXPLICIT_INVOICES:
                self.fail(
                    p,
                    f"{w}: more than {MAX_EXPLICIT_INVOICES:,} invoices written out one by one across all batches; "
                    f"{instead}",
                )
            self.add_invoices(1, p, w)
            out.append(Invoice(ident, m.req("property", self.property_ref), m.opt("amount", self.amount)))
        return tuple(out)

    def add_invoices(self, n: int, pos: _Pos, where: str) -> None:
        """Count invoices against the total cap, failing at the count or invoice that crosses it."""
        self.total_invoices += n
        if self.total_invoices > MAX_TOTAL_INVOICES:
            self.fail(
                pos,
                f"{where}: this makes {self.total_invoices:,} invoices across all batches; at most "
                f"{MAX_TOTAL_INVOICES:,} fit in one run (the engine keeps ~420 bytes per email); "
                "split the batches over several scenarios",
            )

    def amount(self, value: object, pos: _Pos, where: str) -> float:
        if _is_bool(value) or not isinstance(value, int | float):
            self.fail(pos, f"{where}: expected a number like 120.00, got {_describe(value)}")
        try:
            amount = float(value)
        except OverflowError:
            self.fail(pos, f"{where}: the number is too large")
        if not math.isfinite(amount) or abs(amount) > 1e15:
            self.fail(pos, f"{where}: expected a finite amount, got {_describe(value)}")
        return amount

    def compact_match(self, ident: str) -> _Compact | None:
        """The compact batch that generates ``ident``, if any (no expansion)."""
        prefix, dash, digits = ident.rpartition("-")
        if not dash or not digits.isascii() or not digits.isdigit():
            return None
        c = self.compact.get(prefix)
        if c is None or len(digits) != c.width or not 1 <= int(digits) <= c.count:
            return None
        return c

    def check_compact_collisions(self) -> None:
        if not self.compact:
            return
        for ident, (_batch, pos) in self.invoices.items():
            c = self.compact_match(ident)
            if c is not None:
                last = f"{c.batch}-{c.count:0{c.width}d}"
                first = f"{c.batch}-{1:0{c.width}d}"
                self.fail(pos, f"duplicate invoice id {ident!r}: compact batch {c.batch!r} generates {first} … {last}")

    def invoice_ref(self, value: object, pos: _Pos, where: str) -> str:
        ident = self.ident(value, pos, where)
        if ident in self.invoices or self.compact_match(ident) is not None:
            return ident
        candidates = list(self.invoices)
        for c in self.compact.values():
            candidates.append(f"{c.batch}-{1:0{c.width}d}")
            candidates.append(f"{c.batch}-{c.count:0{c.width}d}")
        hint = did_you_mean(ident, candidates)
        prefix, dash, _digits = ident.rpartition("-")
        batch = self.compact.get(prefix) if dash else None
        if batch is not None:
            c = batch
            hint = (
                f"; compact batch {c.batch!r} has {c.batch}-{1:0{c.width}d} … "
                f"{c.batch}-{c.count:0{c.width}d} (ids are zero-padded to {c.width} digits)"
            )
        elif not candidates:
            hint = "; no invoices are defined"
        self.fail(pos, f"{where}: unknown invoice {ident!r}{hint}")

    # --- dns --------------------------------------------------------------------------------------

    def dns(self, value: object, pos: _Pos, where: str) -> Dns:
        m = self.map(value, pos, where)
        m.check_keys(("records", "unreachable"))
        records = m.get("records", self.dns_records, ())
        entries = m.get(
            "unreachable",
            lambda v, p, w: tuple(
                self.unreachable(iv, ip, iw) for iv, ip, iw in self.seq(v, p, w, "a list of names", MAX_DNS_RECORDS)
            ),
            (),
        )
        names = tuple(e for e in entries if isinstance(e, str))
        return Dns(records, names, tuple(e for e in entries if isinstance(e, Unreachable)))

    def unreachable(self, value: object, pos: _Pos, where: str) -> str | Unreachable:
        """A name (it and all below time out) or {name, types, subdomains} for finer failures."""
        if not isinstance(value, dict):
            return self.wildcard_name(value, pos, where, wildcard=False)
        m = self.map(value, pos, where)
        m.check_keys(("name", "types", "subdomains"))
        name = m.req("name", lambda v, p, w: self.wildcard_name(v, p, w, wildcard=False))
        types = m.get(
            "types",
            lambda v, p, w: tuple(self.dns_type(iv, ip, iw) for iv, ip, iw in self.seq(v, p, w, "a list of types", 16)),
            (),
        )
        return Unreachable(name, types, m.get("subdomains", self.boolean, True))

    def dns_records(self, value: object, pos: _Pos, where: str) -> tuple[DnsRecord, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of {name, type, value, ttl}", MAX_DNS_RECORDS):
            m = self.map(v, p, w)
            m.check_keys(("name", "type", "value", "ttl"))
            name = m.req("name", self.wildcard_name)
            rtype = m.req("type", self.dns_type)
            rvalue = m.req("value", lambda v, p, w, t=rtype: self.dns_value(v, p, w, t))  # type: ignore[misc]
            ttl = m.get("ttl", self.count_int, 300)
            out.append(DnsRecord(name, rtype, rvalue, ttl))
        return tuple(out)

    def dns_type(self, value: object, pos: _Pos, where: str) -> str:
        if isinstance(value, str):
            value = str(value).strip().upper()
        return self.choice(value, pos, where, DNS_RECORD_TYPES, "record type")

    def dns_value(self, value: object, pos: _Pos, where: str, rtype: str) -> str | tuple[str, ...]:
        result = self._dns_value(value, pos, where, rtype)
        # the zone's own check, so a record the loader accepts never fails mid-run
        problem = check_record(rtype, result)
        if problem is not None:
            self.fail(pos, f"{where}: {problem}")
        return canonical_value(rtype, result)

    def _dns_value(self, value: object, pos: _Pos, where: str, rtype: str) -> str | tuple[str, ...]:
        if rtype == "A" or rtype == "AAAA":
            version = 4 if rtype == "A" else 6
            example = "192.0.2.25" if version == 4 else "2001:db8::25"
            try:
                if not isinstance(value, str):
                    raise ValueError
                addr = ipaddress.ip_address(str(value).strip())
                if addr.version != version:
                    raise ValueError
            except ValueError:
                self.fail(
                    pos,
                    f"{where}: expected an IPv{version} address like {example} for "
                    f"{'an' if rtype == 'A' else 'a'} {rtype} record, got {_describe(value)}",
                )
            return str(addr)
        if rtype == "MX":
            parts = str(value).split() if isinstance(value, str) else []
            if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or int(parts[0]) > 65535:
                self.fail(
                    pos,
                    f'{where}: expected an MX value like "10 mx.client.example" '
                    f"(preference 0-65535, then host), got {_describe(value)}",
                )
            host = self.wildcard_name(parts[1], pos, where, wildcard=False)
            return f"{int(parts[0])} {host}"
        if rtype == "TXT" or rtype == "SPF":
            if isinstance(value, str):
                return str(value)
            if isinstance(value, list):
                items = tuple(
                    self.string(v, p, w) for v, p, w in self.seq(value, pos, where, "a list of strings", MAX_SMALL_LIST)
                )
                if not items:
                    self.fail(pos, f"{where}: expected a string or a non-empty list of strings")
                return items
            self.fail(
                pos, f"{where}: expected a string or a list of strings for a {rtype} record, got {_describe(value)}"
            )
        return self.wildcard_name(value, pos, where, wildcard=False)  # CNAME, PTR, NS

    # --- mailboxes --------------------------------------------------------------------------------

    def mailbox_list(self, value: object, pos: _Pos, where: str) -> tuple[MailboxDomain, ...]:
        out = []
        seen: dict[str, _Pos] = {}
        for v, p, w in self.seq(value, pos, where, "a list of mail domains", MAX_MAILBOX_DOMAINS):
            m = self.map(v, p, w)
            m.check_keys(("domain", "users", "spf_policy", "greylist", "quota", "size_limit"))
            domain = m.req("domain", self.dns_name)
            if domain in seen:
                self.fail(
                    m.vpos("domain"),
                    f"{m.sub('domain')}: domain {domain!r} is listed twice (first at line {seen[domain].line})",
                )
            seen[domain] = m.vpos("domain")
            d = MailboxDomain(domain)
            out.append(
                MailboxDomain(
                    domain=domain,
                    users=m.opt("users", self.local_parts),
                    spf_policy=m.get("spf_policy", self.spf_policy, d.spf_policy),
                    greylist=m.get("greylist", self.duration, d.greylist),
                    quota=m.get("quota", self.count_int, d.quota),
                    size_limit=m.get("size_limit", lambda v, p, w: self.integer(v, p, w, 1), d.size_limit),
                    loc=self.loc(m.pos),
                )
            )
        return tuple(out)

    def local_parts(self, value: object, pos: _Pos, where: str) -> tuple[str, ...]:
        out = []
        for v, p, w in self.seq(value, pos, where, "a list of user names (local parts, e.g. jane)", MAX_ENTITIES):
            s = self.text(v, p, w)
            if "@" in s or any(c.isspace() for c in s):
                local = _short(s.split("@")[0].strip(), 40) or "jane"
                self.fail(
                    p, f"{w}: expected a local part like {local!r} (the domain is the mailbox's), got {_describe(s)}"
                )
            out.append(s)
        return tuple(out)

    def spf_policy(self, value: object, pos: _Pos, where: str) -> SpfPolicy:
        m = self.map(value, pos, where, "a mapping of SPF result to action")
        m.check_keys(SPF_RESULTS)
        d = SpfPolicy()
        actions = {
            r: m.get(r, lambda v, p, w: self.choice(v, p, w, SPF_ACTIONS, "action"), d.action(r)) for r in SPF_RESULTS
        }
        return SpfPolicy(
            pass_=actions["pass"],
            fail=actions["fail"],
            softfail=actions["softfail"],
            neutral=actions["neutral"],
            none=actions["none"],
            permerror=actions["permerror"],
            temperror=actions["temperror"],
        )

    # --- timeline ---------------------------------------------------------------------------------

    def timeline(self, value: object, pos: _Pos, where: str) -> tuple[Event, ...]:
        out = []
        events = self.seq(
            value,
            pos,
            where,
            "a list of {at, <event>: ...}",
            MAX_TIMELINE_EVENTS,
            "split the run into several scenarios",
        )
        for i, (v, p, w) in enumerate(events):
            m = self.map(v, p, w, "an entry {at: TIME, <event>: ...}")
            m.check_keys(("at", "note", *EVENT_KINDS), f"{w} (an event)")
            kinds = [k for k in m.data if k not in ("at", "note")]
            if not kinds:
                self.fail(m.pos, f"{w}: needs one event key ({', '.join(EVENT_KINDS)})")
            if len(kinds) > 1:
                self.fail(m.kpos(kinds[1]), f"{w}: one event per entry, got {kinds[0]!r} and {kinds[1]!r}")
            kind = str(kinds[0])
            at = m.req("at", self.time_not_before_start)
            args = self.event_args(kind, m.raw(kind), m.vpos(kind), m.sub(kind))
            note = m.opt("note", self.text)
            out.append(make_event(kind, at=at, index=i, loc=self.loc(m.pos), note=note, **args))
        return tuple(out)

    def user_ref(self, value: object, pos: _Pos, where: str) -> str:
        return self.ref(value, pos, where, "user", self.users)

    def contact_ref(self, value: object, pos: _Pos, where: str) -> str:
        return self.ref(value, pos, where, "contact", self.contacts)

    def event_args(self, kind: str, value: object, pos: _Pos, where: str) -> dict[str, Any]:
        if value is None:
            self.fail(pos, f"{where}: a value is required, got null")
        if kind == "complete_batch":
            return {"batch": self.ref(value, pos, where, "batch", self.batches)}
        if kind in USER_EVENT_KINDS:
            if isinstance(value, dict):
                self.fail(pos, f"{where}: expected a user id, e.g. {kind}: u1; got {_describe(value)}")
            return {"user": self.user_ref(value, pos, where)}
        m = self.map(value, pos, where)
        if kind == "set_contact_email":
            m.check_keys(("contact", "email"))
            return {"contact": m.req("contact", self.contact_ref), "email": m.req("email", self.string)}
        if kind == "set_contact_active":
            m.check_keys(("contact", "active"))
            return {"contact": m.req("contact", self.contact_ref), "active": m.req("active", self.boolean)}
        if kind == "set_property_contact":
            m.check_keys(("property", "contact", "email_invoice", "primary", "billing"))
            return {
                "property": m.req("property", self.property_ref),
                "contact": m.req("contact", self.contact_ref),
                "email_invoice": m.opt("email_invoice", self.boolean),
                "primary": m.opt("primary", self.boolean),
                "billing": m.opt("billing", self.boolean),
            }
        if kind == "set_invoicing_email_from":
            m.check_keys(("branch", "region", "configuration", "email"))
            targets = [k for k in ("branch", "region", "configuration") if k in m.data]
            if len(targets) != 1:
                msg = "needs exactly one of branch:, region:, configuration: true"
                at = m.pos if not targets else m.kpos(targets[1])
                self.fail(at, f"{where}: {msg}" + (f"; got {', '.join(targets)}" if targets else ""))
            args: dict[str, Any] = {"email": m.opt("email", self.address)}
            if targets[0] == "branch":
                args["branch"] = m.req("branch", lambda v, p, w: self.ref(v, p, w, "branch", self.branches))
            elif targets[0] == "region":
                args["region"] = m.req("region", lambda v, p, w: self.ref(v, p, w, "region", self.regions))
            else:
                if not m.req("configuration", self.boolean):
                    self.fail(
                        m.vpos("configuration"),
                        f"{m.sub('configuration')}: must be true (or name a branch: or region: instead)",
                    )
                args["configuration"] = True
            return args
        if kind == "set_sync":
            m.check_keys(("user", "provider"))
            return {"user": m.req("user", self.user_ref), "provider": m.req("provider", self.ident)}
        if kind == "dns_set":
            m.check_keys(("name", "type", "value"))
            name = m.req("name", self.wildcard_name)
            rtype = m.req("type", self.dns_type)
            rvalue = m.req("value", lambda v, p, w: self.dns_value(v, p, w, rtype))
            return {"name": name, "type": rtype, "value": rvalue}
        if kind == "set_token_lifetime":
            m.check_keys(("lifetime",))
            return {"lifetime": m.req("lifetime", self.positive_duration)}
        if kind == "dns_delete":
            m.check_keys(("name", "type"))
            return {"name": m.req("name", self.wildcard_name), "type": m.req("type", self.dns_type)}
        raise AssertionError(f"event kind {kind!r} has no argument parser")  # pragma: no cover

    # --- faults -----------------------------------------------------------------------------------

    def fault_list(self, value: object, pos: _Pos, where: str) -> tuple[Fault, ...]:
        out = []
        faults = self.seq(
            value,
            pos,
            where,
            "a list of faults",
            MAX_FAULTS,
            "a fault without target: applies to every domain; probability: picks a share of the messages",
        )
        for i, (v, p, w) in enumerate(faults):
            m = self.map(v, p, w)
            m.check_keys(("kind", "at", "for", "stage", "probability", "target", "delay", "note"), f"{w} (a fault)")
            kind = m.req("kind", lambda v, p, w: self.choice(v, p, w, FAULT_KINDS, "fault kind"))
            stage = m.opt("stage", lambda v, p, w: self.choice(v, p, w, SMTP_STAGES, "stage"))
            if stage is not None and kind.startswith("dns_"):
                self.fail(m.kpos("stage"), f"{m.sub('stage')}: {kind} is a DNS fault; stage applies to SMTP faults")
            delay = m.get("delay", self.duration, 0)
            if m.has("delay") and kind != "slow":
                self.fail(m.kpos("delay"), f"{m.sub('delay')}: delay applies only to kind: slow")
            out.append(
                Fault(
                    index=i,
                    kind=kind,
                    at=m.opt("at", self.time),
                    for_=m.opt("for", self.duration),
                    stage=stage,
                    probability=m.get("probability", self.probability, 1.0),
                    target=m.opt("target", self.dns_name),
                    delay=delay,
                    loc=self.loc(m.pos),
                    note=m.opt("note", self.text),
                )
            )
        return tuple(out)

    def probability(self, value: object, pos: _Pos, where: str) -> float:
        if _is_bool(value) or not isinstance(value, int | float):
            self.fail(pos, f"{where}: expected a probability from 0 to 1, got {_describe(value)}")
        try:
            prob = float(value)
        except OverflowError:
            prob = math.inf
        if not 0.0 <= prob <= 1.0:
            self.fail(pos, f"{where}: expected a probability from 0 to 1, got {_describe(value)}")
        return prob

    # --- expect -----------------------------------------------------------------------------------

    def expect_list(self, value: object, pos: _Pos, where: str) -> tuple[Expectation, ...]:
        return tuple(
            self.expectation(i, v, p, w)
            for i, (v, p, w) in enumerate(
                self.seq(
                    value,
                    pos,
                    where,
                    "a list of expectations",
                    MAX_EXPECTATIONS,
                    "a count: expectation covers many invoices",
                )
            )
        )

    def expectation(self, index: int, value: object, pos: _Pos, where: str) -> Expectation:
        m = self.map(value, pos, where, "an expectation mapping")
        m.check_keys(_EXPECT_ALL_KEYS, f"{where} (an expectation)")
        shape = next((s for s in ("count", "mailbox", "never", "recipient", "invoice") if s in m.data), None)
        if shape is None:
            self.fail(m.pos, f"{where}: an expectation needs invoice:, mailbox: or count:")
        allowed = _EXPECT_SHAPES[shape]
        for key in m.data:
            if key not in allowed:
                owner = next(
                    s for s in ("count", "mailbox", "never", "recipient", "invoice") if key in _EXPECT_SHAPES[s]
                )
                self.fail(
                    m.kpos(key),
                    f"{where}: {key!r} does not go with {shape}: "
                    f"(allowed: {', '.join(allowed)}; {key!r} belongs with {owner}:)",
                )
        fields: dict[str, Any] = {}
        if shape == "count":
            fields["count"] = m.req("count", self.match_map)
            fields["equals"] = m.req("equals", self.count_int)
            fields["at"] = m.opt("at", self.time_or_end)
        elif shape == "mailbox":
            mailbox = m.req("mailbox", self.address)
            if "@" not in mailbox:
                self.fail(m.vpos("mailbox"), f"{m.sub('mailbox')}: expected an email address, got {_describe(mailbox)}")
            fields["mailbox"] = mailbox
            for k in ("bounces", "inbox", "junk"):
                fields[k] = m.opt(k, self.count_int)
            if all(fields[k] is None for k in ("bounces", "inbox", "junk")):
                self.fail(m.pos, f"{where}: a mailbox expectation needs bounces:, inbox: or junk:")
            fields["at"] = m.opt("at", self.time_or_end)
        else:
            fields["invoice"] = m.req("invoice", self.invoice_ref)
            fields["recipient"] = m.opt("recipient", self.address)
            if shape == "never":
                fields["never"] = m.req("never", self.match_map)
                if any(k == "outcome" for k, _ in fields["never"]) and fields["recipient"] is None:
                    self.fail(m.kpos("never"), f"{m.sub('never')}: outcome needs recipient:")
                fields["until"] = m.opt("until", self.time_or_end)
            elif shape == "recipient":
                fields["outcome"] = m.opt("outcome", self.outcome)
                fields["reason"] = m.opt("reason", self.reason)
                if fields["outcome"] is None and fields["reason"] is None:
                    self.fail(m.pos, f"{where}: a recipient expectation needs outcome: or reason:")
                if m.has("within") and m.has("at"):
                    self.fail(m.kpos("at"), f"{where}: give within: or at:, not both")
                fields["within"] = m.opt("within", self.time_or_end)
                fields["at"] = m.opt("at", self.time_or_end)
            else:
                fields["email_status"] = m.opt("email_status", self.email_status)
                fields["batch_status"] = m.opt("batch_status", self.batch_status)
                fields["reason"] = m.opt("reason", self.reason)
                if all(fields[k] is None for k in ("email_status", "batch_status", "reason")):
                    self.fail(m.pos, f"{where}: an invoice expectation needs email_status:, batch_status: or reason:")
                fields["at"] = m.opt("at", self.time_or_end)
        return Expectation(index=index, text=_render(m.data), loc=self.loc(m.pos), **fields)

    def email_status(self, value: object, pos: _Pos, where: str) -> str:
        return self.choice(value, pos, where, EMAIL_STATUSES, "email status")

    def batch_status(self, value: object, pos: _Pos, where: str) -> str:
        return self.choice(value, pos, where, BATCH_STATUSES, "batch status")

    def outcome(self, value: object, pos: _Pos, where: str) -> str:
        return self.choice(value, pos, where, RECIPIENT_OUTCOMES, "outcome")

    def reason(self, value: object, pos: _Pos, where: str) -> str:
        return self.choice(value, pos, where, REASON_CODES, "reason code")

    def match_map(self, value: object, pos: _Pos, where: str) -> tuple[tuple[str, str], ...]:
        m = self.map(value, pos, where, "a mapping like {email_status: In Queue}")
        m.check_keys(_MATCH_KEYS)
        convs: dict[str, Callable[[object, _Pos, str], str]] = {
            "email_status": self.email_status,
            "batch_status": self.batch_status,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        out = tuple((str(k), m.req(str(k), convs[str(k)])) for k in m.data)
        if not out:
            self.fail(pos, f"{where}: needs one of {', '.join(_MATCH_KEYS)}")
        return out


def _render_scalar(value: object) -> str:
    if value is None:
        return "null"
    if _is_bool(value):
        return "true" if value else "false"
    return str(_plain(value))


def _render(data: dict[Any, Any]) -> str:
    """An expect: entry on one line, as written: ``INV-1 email_status=In Queue at +2h``."""
    parts: list[str] = []
    for key, value in data.items():
        if key == "invoice":
            parts.append(_render_scalar(value))
        elif key == "mailbox":
            parts.append(f"mailbox {_render_scalar(value)}")
        elif key in ("at", "within", "until"):
            parts.append(f"{key} {_render_scalar(value)}")
        elif isinstance(value, dict):
            inner = " ".join(f"{k}={_render_scalar(v)}" for k, v in value.items())
            parts.append(f"{key} {inner}")
        else:
            parts.append(f"{key}={_render_scalar(value)}")
    return " ".join(parts)


# --- YAML ---------------------------------------------------------------------------------------


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        prefix = data[: e.start]
        line = prefix.count(b"\n") + 1
        col = len(prefix) - (prefix.rfind(b"\n") + 1) + 1
        raise ScenarioError(path, line, col, "the file is not valid UTF-8") from None


def _load(text: str, path: str, sha256: str, default_name: str) -> Scenario:
    with no_cyclic_gc():  # around both steps, so no collection runs between them over the whole tree
        doc = parse_yaml(text, path)
        if doc is None:
            raise ScenarioError(path, 1, 1, "the file is empty; a scenario starts with 'schema: mailsim/1'")
        return load_tree(doc, path, sha256, default_name)


def load_tree(doc: object, path: str, sha256: str, default_name: str = "scenario") -> Scenario:
    """Validate an already-parsed YAML tree (from ``parse_yaml``, possibly edited, e.g. by a sweep)."""
    loader = _Loader(path)
    try:
        with no_cyclic_gc():
            return loader.scenario(doc, default_name, path, sha256)
    except RecursionError:
        raise ScenarioError(path, 1, 1, "the document is nested too deeply") from None


def _read(path: Path, name: str) -> bytes:
    """The file's bytes, never more than MAX_FILE_BYTES of them.

    ``stat`` rejects a huge regular file before a byte is read (a sparse 10 GB file costs
    nothing); the bounded read covers what ``stat`` cannot size (pipes, ``/dev/zero``).
    """
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise too_large(name, info.st_size)
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(name, 1, 1, f"cannot read the file: {e.strerror or e}") from None
    except (ValueError, OverflowError) as e:  # e.g. a NUL in the path
        raise ScenarioError(name, 1, 1, f"cannot read the file: {e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_large(name, None)
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario file. Raises :class:`ScenarioError` only."""
    name = str(path)
    data = _read(Path(path), name)
    text = _decode(data, name)
    return _load(text, name, hashlib.sha256(data).hexdigest(), Path(path).stem or "scenario")


def load_scenario_text(text: str, path: str = "<string>") -> Scenario:
    """Validate and resolve scenario YAML given as text; ``path`` is used in messages and ``source``."""
    if len(text) > MAX_FILE_BYTES:
        raise too_large(path, len(text))
    data = text.encode("utf-8", errors="surrogatepass")
    if text.startswith("\ufeff"):
        text = text[1:]
    default = Path(path).stem if path and not path.startswith("<") else "scenario"
    return _load(text, path, hashlib.sha256(data).hexdigest(), default or "scenario")
