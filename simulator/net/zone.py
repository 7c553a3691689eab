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

from simulator.domain.dns import DnsRecord
from simulator.domain.entities import Provider
from simulator.domain.faults import Fault
from simulator.scenario.model import Scenario

RECORD_TYPES: tuple[str, ...] = ("A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS")
NAME_VALUED_TYPES: frozenset[str] = frozenset({"CNAME", "PTR", "NS"})
TXT_TYPES: frozenset[str] = frozenset({"TXT", "SPF"})
DNS_FAULT_KINDS: frozenset[str] = frozenset({"dns_timeout", "dns_servfail"})

# dnspython's resolver gives up after following this many CNAMEs; the memory
# path stops at the same point so memory and wire agree on long chains too.
MAX_CNAME_CHAIN = 16

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
SERVFAIL = "SERVFAIL"
TIMEOUT = "TIMEOUT"


def normalize_name(name: str) -> str:
    """DNS names compare case-insensitively; one spelling keeps dict lookups exact."""
    n = name.strip().lower()
    if n.endswith(".") and n != ".":
        n = n[:-1]
    return n


def is_subdomain(name: str, parent: str) -> bool:
    """True when ``name`` is ``parent`` or below it (both normalized)."""
    return name == parent or name.endswith("." + parent)


def parse_mx(value: str) -> tuple[int, str]:
    """``"10 mx.host"`` → ``(10, "mx.host")``; raises ValueError on anything else."""
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise ValueError(f"MX value must be 'PREFERENCE HOST', got {value!r}")
    pref = int(parts[0])
    if pref > 65535:
        raise ValueError(f"MX preference must be 0..65535, got {pref}")
    host = normalize_name(parts[1])
    if host != "." and not _valid_dns_name(host):
        raise ValueError(f"MX host {parts[1]!r} is not a valid DNS name")
    return pref, host


def txt_strings(value: str | tuple[str, ...]) -> tuple[bytes, ...]:
    """The character-strings a TXT/SPF record holds on the wire.

    A single string longer than 255 octets cannot be one DNS character-string,
    so it is split into 255-octet pieces — what zone-file tools do and what
    RFC 7208 §3.3 expects publishers to rely on (the pieces are re-joined).
    Both resolvers use this so memory and wire return identical tuples.
    """
    items = value if isinstance(value, tuple) else (value,)
    out: list[bytes] = []
    for item in items:
        raw = item.encode("utf-8")
        if not raw:
            out.append(b"")
            continue
        for i in range(0, len(raw), 255):
            out.append(raw[i : i + 255])
    return tuple(out)


def _valid_dns_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(0 < len(label) <= 63 for label in labels)


def check_record(rtype: str, value: str | tuple[str, ...]) -> str | None:
    """Why a record value is unusable, or None when it is fine.

    Exposed so the scenario loader can report bad ``dns:`` values with a file
    position instead of the zone failing later in the middle of a run.
    """
    t = rtype.upper()
    if t not in RECORD_TYPES:
        return f"unsupported record type {rtype!r} (use one of {', '.join(RECORD_TYPES)})"
    if isinstance(value, tuple):
        if t not in TXT_TYPES:
            return f"only TXT and SPF records may hold several strings, not {t}"
        if not all(isinstance(v, str) for v in value):
            return "TXT strings must be text"
        return None
    if t == "A":
        try:
            ipaddress.IPv4Address(value.strip())
        except ValueError:
            return f"A value must be an IPv4 address, got {value!r}"
    elif t == "AAAA":
        try:
            if "%" in value:
                raise ValueError(value)
            ipaddress.IPv6Address(value.strip())
        except ValueError:
            return f"AAAA value must be an IPv6 address, got {value!r}"
    elif t == "MX":
        try:
            parse_mx(value)
        except ValueError as e:
            return str(e)
    elif t in NAME_VALUED_TYPES and not _valid_dns_name(normalize_name(value)):
        return f"{t} value must be a DNS name, got {value!r}"
    return None


def _normalize_record(rec: DnsRecord) -> DnsRecord:
    t = rec.type.upper()
    problem = check_record(t, rec.value)
    if problem is not None:
        raise ValueError(f"{rec.name} {t}: {problem}")
    value: str | tuple[str, ...] = rec.value
    if isinstance(value, str):
        if t in ("A", "AAAA"):
            value = str(ipaddress.ip_address(value.strip()))
        elif t == "MX":
            pref, host = parse_mx(value)
            value = f"{pref} {host}"
        elif t in NAME_VALUED_TYPES:
            value = normalize_name(value)
    return DnsRecord(name=normalize_name(rec.name), type=t, value=value, ttl=rec.ttl)


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
        unreachable: Iterable[str] = (),
        providers: Sequence[Provider] = (),
    ) -> None:
        recs = [_normalize_record(r) for r in records]
        have_txt = {r.name for r in recs if r.type == "TXT"}
        for p in providers:
            auto = provider_spf_record(p)
            if auto is not None and auto.name not in have_txt:
                recs.append(auto)
                have_txt.add(auto.name)
        self._lock = threading.RLock()
        self._records: list[DnsRecord] = recs
        self._unreachable: tuple[str, ...] = tuple(normalize_name(n) for n in unreachable)
        self._by_name: dict[str, list[DnsRecord]] = {}
        self._existing: set[str] = set()
        self.version = 0
        self._reindex()

    @classmethod
    def from_scenario(cls, scn: Scenario) -> Zone:
        return cls(scn.dns.records, scn.dns.unreachable, scn.providers)

    # --- data -----------------------------------------------------------------------------

    @property
    def records(self) -> tuple[DnsRecord, ...]:
        with self._lock:
            return tuple(self._records)

    @property
    def unreachable(self) -> tuple[str, ...]:
        return self._unreachable

    def _reindex(self) -> None:
        by_name: dict[str, list[DnsRecord]] = {}
        existing: set[str] = set()
        for r in self._records:
            by_name.setdefault(r.name, []).append(r)
            labels = r.name.split(".")
            for i in range(len(labels)):
                existing.add(".".join(labels[i:]))
        self._by_name = by_name
        self._existing = existing

    def set(self, name: str, rtype: str, value: str | tuple[str, ...], ttl: int = 300) -> None:
        """Replace every record of ``name``+``rtype`` (the ``dns_set`` event).

        The new record takes the place of the first one it replaces so that
        answer order (and with it every ``ptr``/``mx`` evaluation) stays stable.
        """
        rec = _normalize_record(DnsRecord(name=name, type=rtype, value=value, ttl=ttl))
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

    def set_unreachable(self, names: Iterable[str]) -> None:
        with self._lock:
            self._unreachable = tuple(normalize_name(n) for n in names)
            self.version += 1

    def is_unreachable(self, name: str) -> bool:
        n = normalize_name(name)
        return any(is_subdomain(n, u) for u in self._unreachable)

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
        labels = name.split(".")
        for i in range(1, len(labels) + 1):
            encloser = ".".join(labels[i:])
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
        name = normalize_name(qname)
        t = qtype.upper()
        out: list[DnsRecord] = []
        chain: list[str] = []
        with self._lock:
            while True:
                chain.append(name)
                if self.is_unreachable(name):
                    return ZoneAnswer(normalize_name(qname), t, TIMEOUT, (), False, tuple(chain))
                recs = self._records_at(name)
                if recs is None:
                    return ZoneAnswer(normalize_name(qname), t, NXDOMAIN, tuple(out), False, tuple(chain))
                if t == "ANY":
                    out.extend(recs)
                    return ZoneAnswer(normalize_name(qname), t, NOERROR, tuple(out), False, tuple(chain))
                match = [r for r in recs if r.type == t]
                if match:
                    out.extend(match)
                    return ZoneAnswer(normalize_name(qname), t, NOERROR, tuple(out), False, tuple(chain))
                cnames = [r for r in recs if r.type == "CNAME"]
                if not cnames or t == "CNAME":
                    return ZoneAnswer(normalize_name(qname), t, NOERROR, tuple(out), False, tuple(chain))
                cname = cnames[0]
                out.append(cname)
                target = str(cname.value)
                if target in chain or len([r for r in out if r.type == "CNAME"]) >= MAX_CNAME_CHAIN:
                    return ZoneAnswer(normalize_name(qname), t, NOERROR, tuple(out), True, tuple(chain))
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
                rcode = TIMEOUT if f.kind == "dns_timeout" else SERVFAIL
                return ZoneAnswer(ans.qname, ans.qtype, rcode, (), False, ans.chain)
        return ans


def _draw(seed: int, index: int, name: str, qtype: str, probability: float) -> bool:
    """A deterministic Bernoulli draw keyed by the question, not by call order."""
    if probability <= 0.0:
        return False
    key = f"{seed}\x00{index}\x00{name}\x00{qtype}".encode()
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return h / 2.0**64 < probability
