"""The DNS data of one run, and the authoritative answers it gives.

One ``Zone`` feeds both the in-memory resolver and the loopback DNS server, so
memory and wire runs see exactly the same answers: the answer logic (CNAME
chains, RFC 4592 wildcards, NXDOMAIN vs NODATA, unreachable names, faults) lives
here once and the two transports only encode it.

The zone is authoritative for every name: there are no zone cuts or delegations
in a simulated world, so a name that no record owns (and that is not an empty
non-terminal above one) does not exist.

Timeline events (``dns_set`` / ``dns_delete``) mutate the zone while a run (and
perhaps a server thread) is using it, so mutations and reads are serialised by a
lock, and ``version`` lets callers cache derived results (SPF) per zone state.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simulator.domain.dns import (
    DNS_RECORD_TYPES,
    NAME_VALUED_TYPES,
    TXT_TYPES,
    DnsRecord,
    DnsTextError,
    Unreachable,
    check_record,
    labels_to_name,
    name_to_labels,
    normalize_name,
    normalize_record,
    parse_mx,
    txt_strings,
)
from simulator.domain.entities import Provider
from simulator.domain.faults import DNS_FAULT_KINDS, FAULT_SPECS, Fault
from simulator.scenario.model import Scenario

__all__ = [
    "NAME_VALUED_TYPES",
    "RECORD_TYPES",
    "TXT_TYPES",
    "Zone",
    "ZoneAnswer",
    "check_record",
    "normalize_name",
    "parse_mx",
    "txt_strings",
]

RECORD_TYPES: tuple[str, ...] = DNS_RECORD_TYPES

MAX_MESSAGE = 65535  # octets of one DNS message over TCP
MESSAGE_OVERHEAD = 12 + 4 + 11  # header, question type and class, an EDNS OPT record

# dnspython's resolver gives up after following this many CNAMEs; the memory
# path stops at the same point so memory and wire agree on long chains too.
MAX_CNAME_CHAIN = 16

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
SERVFAIL = "SERVFAIL"
TIMEOUT = "TIMEOUT"
# what a DNS fault kind's ``dns_answer`` (domain/faults.py FAULT_SPECS) gives a question
DNS_FAULT_RCODE: dict[str, str] = {"timeout": TIMEOUT, "servfail": SERVFAIL}


def is_subdomain(name: str, parent: str) -> bool:
    """True when ``name`` is ``parent`` or below it (both normalized)."""
    return name == parent or name.endswith("." + parent)


def _name_wire(name: str) -> int:
    """Octets of a presentation name on the wire, uncompressed (root label included)."""
    if name in ("", "."):
        return 1
    if "\\" not in name and name.isascii():
        return len(name) + 2
    try:
        return sum(len(lab) + 1 for lab in name_to_labels(name)) + 1
    except DnsTextError:
        return len(name.encode("utf-8", "surrogateescape")) + 2


def _rdata_size(rec: DnsRecord) -> int:
    t = rec.type
    if t == "A":
        return 4
    if t == "AAAA":
        return 16
    if t in TXT_TYPES:
        return sum(len(s) + 1 for s in txt_strings(rec.value))
    if t == "MX":
        return 2 + _name_wire(parse_mx(str(rec.value))[1])
    return _name_wire(str(rec.value))


def _fits_message(qname: str, records: Sequence[DnsRecord]) -> bool:
    """Whether the answer fits one DNS message (65,535 octets, the TCP length field's limit).

    An upper bound (no name compression, an OPT record counted) decides, so the
    loopback server never has to render what cannot go out and the in-memory
    resolver reaches the same verdict: too big is SERVFAIL (temperror) both ways.
    """
    chars = sum(len(r.text) if r.type in TXT_TYPES else 64 for r in records)
    if 4 * chars + 300 * len(records) + 600 <= MAX_MESSAGE:
        return True  # a presentation character is at most 4 octets: certainly fits
    size = MESSAGE_OVERHEAD + _name_wire(qname)
    for r in records:
        size += _name_wire(r.name) + 10 + _rdata_size(r)
    return size <= MAX_MESSAGE


def _suffixes(name: str) -> list[str]:
    """``name`` and every ancestor but the root, nearest first (escaped dots are not separators)."""
    if "\\" not in name:
        labels = name.split(".")
        return [".".join(labels[i:]) for i in range(len(labels))]
    try:
        raw = name_to_labels(name)
    except DnsTextError:
        labels = name.split(".")
        return [".".join(labels[i:]) for i in range(len(labels))]
    return [labels_to_name(raw[i:]) for i in range(len(raw))]


def _rules(entries: Iterable[str | Unreachable]) -> tuple[Unreachable, ...]:
    """Plain names become name-and-below, every-type rules; rules get canonical names and types."""
    out: list[Unreachable] = []
    for e in entries:
        if isinstance(e, Unreachable):
            out.append(Unreachable(normalize_name(e.name), tuple(t.upper() for t in e.types), e.subdomains))
        else:
            out.append(Unreachable(normalize_name(e)))
    return tuple(out)


def provider_spf_record(provider: Provider) -> DnsRecord | None:
    """The record DESIGN §8 publishes for a provider's ``spf_include`` name."""
    if not provider.spf_include:
        return None
    terms = ["v=spf1"]
    for ip in provider.sending_ips:
        addr = ipaddress.ip_address(ip)
        terms.append(f"ip{addr.version}:{addr}")
    terms.append("-all")
    return DnsRecord(name=normalize_name(provider.spf_include), type="TXT", value=" ".join(terms))


@dataclass(frozen=True, slots=True)
class ZoneAnswer:
    """What an authoritative server says to one question.

    ``records`` is the answer section in order: the CNAME chain followed inside
    the zone, then the final RRset (owner names already synthesized for
    wildcards). ``rcode`` is NOERROR, NXDOMAIN (RFC 6604: the rcode of the last
    name in the chain), SERVFAIL, or TIMEOUT — the marker for "no reply at all".
    ``cname_loop`` says the chain looped or exceeded ``MAX_CNAME_CHAIN``, which a
    recursive resolver refuses to follow.
    """

    qname: str
    qtype: str
    rcode: str
    records: tuple[DnsRecord, ...] = ()
    cname_loop: bool = False
    chain: tuple[str, ...] = ()  # every owner name visited, qname first

    @property
    def timeout(self) -> bool:
        return self.rcode == TIMEOUT

    @property
    def final_name(self) -> str:
        return self.chain[-1] if self.chain else self.qname

    def rrs(self, rtype: str) -> tuple[DnsRecord, ...]:
        """Records of the final RRset of ``rtype`` (the chain's CNAMEs excluded unless asked)."""
        t = rtype.upper()
        final = self.final_name
        return tuple(r for r in self.records if r.type == t and r.name == final)


class Zone:
    """Mutable DNS data: the scenario's records, auto-published provider SPF, unreachable names."""

    def __init__(
        self,
        records: Iterable[DnsRecord] = (),
        unreachable: Iterable[str | Unreachable] = (),
        providers: Sequence[Provider] = (),
        *,
        normalized: bool = False,
    ) -> None:
        """``normalized``: the records are already as ``normalize_record`` makes them (``Dns.canonical``)."""
        recs = list(records) if normalized else [normalize_record(r) for r in records]
        have_txt = {r.name for r in recs if r.type == "TXT"}
        for p in providers:
            auto = provider_spf_record(p)
            if auto is not None and auto.name not in have_txt:
                recs.append(auto)
                have_txt.add(auto.name)
        self._lock = threading.RLock()
        self._records: list[DnsRecord] = recs
        self._unreachable: tuple[Unreachable, ...] = _rules(unreachable)
        self._by_name: dict[str, list[DnsRecord]] = {}
        self._existing: set[str] = set()
        self.version = 0
        self._reindex()

    @classmethod
    def from_scenario(cls, scn: Scenario) -> Zone:
        dns = scn.dns
        canonical = dns.canonical
        return cls(dns.records if canonical is None else canonical, (*dns.unreachable, *dns.unreachable_rules),
                   scn.providers, normalized=canonical is not None)

    # --- data -----------------------------------------------------------------------------

    @property
    def records(self) -> tuple[DnsRecord, ...]:
        with self._lock:
            return tuple(self._records)

    @property
    def unreachable(self) -> tuple[Unreachable, ...]:
        return self._unreachable

    def _reindex(self) -> None:
        by_name: dict[str, list[DnsRecord]] = {}
        existing: set[str] = set()
        for r in self._records:
            by_name.setdefault(r.name, []).append(r)
            existing.update(_suffixes(r.name))
        self._by_name = by_name
        self._existing = existing

    def set(self, name: str, rtype: str, value: str | tuple[str, ...], ttl: int = 300) -> None:
        """Replace every record of ``name``+``rtype`` (the ``dns_set`` event).

        The new record takes the place of the first one it replaces so that
        answer order (and with it every ``ptr``/``mx`` evaluation) stays stable.
        """
        rec = normalize_record(DnsRecord(name=name, type=rtype, value=value, ttl=ttl))
        with self._lock:
            out: list[DnsRecord] = []
            placed = False
            for r in self._records:
                if r.name == rec.name and r.type == rec.type:
                    if not placed:
                        out.append(rec)
                        placed = True
                    continue
                out.append(r)
            if not placed:
                out.append(rec)
            self._records = out
            self._reindex()
            self.version += 1

    def delete(self, name: str, rtype: str) -> int:
        """Remove every record of ``name``+``rtype``; returns how many went (the ``dns_delete`` event)."""
        n = normalize_name(name)
        t = rtype.upper()
        with self._lock:
            before = len(self._records)
            self._records = [r for r in self._records if not (r.name == n and r.type == t)]
            removed = before - len(self._records)
            self._reindex()
            self.version += 1
            return removed

    def set_unreachable(self, names: Iterable[str | Unreachable]) -> None:
        with self._lock:
            self._unreachable = _rules(names)
            self.version += 1

    def is_unreachable(self, name: str, rtype: str = "ANY") -> bool:
        """Whether a question for ``name`` (of ``rtype``) gets no reply at all."""
        if not self._unreachable:  # the usual zone: nothing to normalise the name for
            return False
        n = normalize_name(name)
        t = rtype.upper()
        return any(u.covers(n, t, is_subdomain(n, u.name)) for u in self._unreachable)

    def exists(self, name: str) -> bool:
        """True for owner names and empty non-terminals (names with data below them)."""
        with self._lock:
            return normalize_name(name) in self._existing

    # --- answers --------------------------------------------------------------------------

    def _records_at(self, name: str) -> list[DnsRecord] | None:
        """Records owning ``name`` (wildcard-synthesized when RFC 4592 says so).

        None means the name does not exist (NXDOMAIN); an empty list means it
        exists without data (empty non-terminal).
        """
        recs = self._by_name.get(name)
        if recs is not None:
            return recs
        if name in self._existing:
            return []
        for encloser in [*_suffixes(name)[1:], ""]:
            if encloser and encloser not in self._existing:
                continue
            # ``encloser`` is the closest encloser: only its own wildcard may match.
            wild = self._by_name.get("*." + encloser if encloser else "*")
            if wild is None:
                return None
            return [DnsRecord(name=name, type=r.type, value=r.value, ttl=r.ttl) for r in wild]
        return None

    def answer(self, qname: str, qtype: str) -> ZoneAnswer:
        """The authoritative answer to (qname, qtype), no faults applied."""
        name = qn = normalize_name(qname)
        t = qtype.upper()
        out: list[DnsRecord] = []
        chain: list[str] = []
        with self._lock:
            while True:
                chain.append(name)
                if self.is_unreachable(name, t):
                    return ZoneAnswer(qn, t, TIMEOUT, (), False, tuple(chain))
                recs = self._records_at(name)
                if recs is None:
                    return ZoneAnswer(qn, t, NXDOMAIN, tuple(out), False, tuple(chain))
                if t == "ANY":
                    out.extend(recs)
                    if not _fits_message(qn, out):
                        return ZoneAnswer(qn, t, SERVFAIL, (), False, tuple(chain))
                    return ZoneAnswer(qn, t, NOERROR, tuple(out), False, tuple(chain))
                match = [r for r in recs if r.type == t]
                if match:
                    out.extend(match)
                    if not _fits_message(qn, out):
                        return ZoneAnswer(qn, t, SERVFAIL, (), False, tuple(chain))
                    return ZoneAnswer(qn, t, NOERROR, tuple(out), False, tuple(chain))
                cnames = [r for r in recs if r.type == "CNAME"]
                if not cnames or t == "CNAME":
                    return ZoneAnswer(qn, t, NOERROR, tuple(out), False, tuple(chain))
                cname = cnames[0]
                out.append(cname)
                target = str(cname.value)
                if target in chain or len([r for r in out if r.type == "CNAME"]) >= MAX_CNAME_CHAIN:
                    return ZoneAnswer(qn, t, NOERROR, tuple(out), True, tuple(chain))
                name = target

    def lookup(
        self,
        qname: str,
        qtype: str,
        *,
        now: int = 0,
        faults: Sequence[Fault] = (),
        seed: int = 0,
    ) -> ZoneAnswer:
        """The answer as a client sees it at virtual time ``now``, with DNS faults applied.

        A fault hits a question when its target is any name the answer passes
        through (the CNAME chain included), the same names a recursive resolver
        would have had to ask about. Partial-probability faults draw from a keyed
        hash of (seed, fault index, name, type), never from a shared random
        stream, so memory and wire runs — and repeated runs — fail identically.
        """
        ans = self.answer(qname, qtype)
        if not faults:
            return ans
        for name in ans.chain:
            for f in faults:
                if f.kind not in DNS_FAULT_KINDS or not f.active_at(now):
                    continue
                if f.target is not None and not is_subdomain(name, normalize_name(f.target)):
                    continue
                if f.probability < 1.0 and not _draw(seed, f.index, name, ans.qtype, f.probability):
                    continue
                rcode = DNS_FAULT_RCODE[FAULT_SPECS[f.kind].dns_answer or ""]  # KeyError: a kind without an answer
                return ZoneAnswer(ans.qname, ans.qtype, rcode, (), False, ans.chain)
        return ans


def _draw(seed: int, index: int, name: str, qtype: str, probability: float) -> bool:
    """A deterministic Bernoulli draw keyed by the question, not by call order."""
    if probability <= 0.0:
        return False
    key = f"{seed}\x00{index}\x00{name}\x00{qtype}".encode()
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return h / 2.0**64 < probability
