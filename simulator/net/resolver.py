"""Resolvers: how SPF and the engine ask DNS questions, in memory or over the wire.

Both implementations return the same Python shapes and raise the same errors
for the same zone, so an SPF result computed in memory is the result a wire run
gets. Shapes returned by ``Resolver.resolve`` (answer order is kept, identical
records collapse to one as they do in a DNS RRset):

- ``A`` / ``AAAA``: address strings in canonical form (``"2001:db8::1"``);
- ``MX``: ``(preference, host)`` tuples, host lower-case without trailing dot
  (``"."`` for a null MX);
- ``TXT`` / ``SPF``: one ``tuple[str, ...]`` per record, the record's
  character-strings decoded as UTF-8 with ``surrogateescape`` (lossless);
- ``CNAME`` / ``PTR`` / ``NS``: names, lower-case without trailing dot.

Errors: ``NXDomain`` (name does not exist), ``[]`` for NODATA, ``DnsTimeout`` and
``DnsServFail`` (both ``DnsTempError``: the answer may differ later), and
``DnsCnameLoop`` for a looping or over-long CNAME chain — a permanent fault of
the published data, which RFC 7208 evaluators report as permerror rather than
letting the resolver library's exception escape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeAlias

from simulator.domain.dns import (
    MAX_LABEL,
    MAX_NAME_WIRE,
    DnsRecord,
    ipv4_text,
    name_key,
    parse_mx,
    presentation_to_raw,
    raw_name,
    txt_strings,
)
from simulator.domain.faults import Fault
from simulator.net.zone import NXDOMAIN, SERVFAIL, TIMEOUT, Zone

if TYPE_CHECKING:  # dnspython is imported where it is used: the wire resolver (≈45 ms a `mailsim run` spared)
    import dns.name
    import dns.rdata

RData: TypeAlias = str | tuple[int, str] | tuple[str, ...]
SUPPORTED_TYPES: tuple[str, ...] = ("A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS")


class DnsError(Exception):
    """Any failed DNS question; ``name`` and ``rdtype`` say which."""

    def __init__(self, name: str, rdtype: str, detail: str = "") -> None:
        self.name = name
        self.rdtype = rdtype
        self.detail = detail
        super().__init__(f"{self.kind} for {name} {rdtype}" + (f": {detail}" if detail else ""))

    kind: ClassVar[str] = "DNS error"  # ClassVar: compiled, a plain class constant became an instance attribute


class NXDomain(DnsError):
    kind: ClassVar[str] = "NXDOMAIN"


class DnsCnameLoop(DnsError):
    kind: ClassVar[str] = "CNAME loop"


class DnsTempError(DnsError):
    kind: ClassVar[str] = "temporary DNS error"


class DnsTimeout(DnsTempError):
    kind: ClassVar[str] = "DNS timeout"


class DnsServFail(DnsTempError):
    kind: ClassVar[str] = "SERVFAIL"


class Resolver(Protocol):
    """The one question SPF and the engine ask; see the module docstring for shapes."""

    def resolve(self, name: str, rdtype: str) -> list[RData]: ...


def _labels(name: str) -> list[bytes]:
    """A name as programs spell it (dots separate labels, no escapes) → its labels' bytes."""
    parts = name.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return [p.encode("utf-8", "surrogateescape") for p in parts]


def _qname(name: str) -> str:
    """A question's name as programs spell it: ASCII lower-cased, no trailing dot."""
    if name in ("", "."):
        return "."
    if name.isascii():
        n = name.lower()
        return n[:-1] if n.endswith(".") else n
    return raw_name(_labels(name))


def dns_name_ok(name: str) -> bool:
    """Whether ``name`` can exist in the DNS at all (labels of 1..63 octets, ≤255 octets on the wire).

    Any octet may be in a label (real zones hold spaces, ``%``, 8-bit bytes);
    names that cannot be encoded (macro expansion can build them) are answered
    as NXDOMAIN by both resolvers instead of failing differently in each.
    """
    if not name or name == ".":
        return False
    if name.isascii():  # one octet per character: the fast path for every ordinary name
        return len(name) <= MAX_NAME_WIRE - 2 and all(0 < len(lab) <= MAX_LABEL for lab in name.split("."))
    labels = _labels(name)
    if not all(0 < len(lab) <= MAX_LABEL for lab in labels):
        return False
    return sum(len(lab) + 1 for lab in labels) + 1 <= MAX_NAME_WIRE


def _dedupe(values: list[RData]) -> list[RData]:
    seen: set[RData] = set()
    out: list[RData] = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _record_rdata(rec: DnsRecord) -> RData:
    t = rec.type
    if t in ("TXT", "SPF"):
        return tuple(s.decode("utf-8", "surrogateescape") for s in txt_strings(rec.value))
    value = str(rec.value)
    if t in ("A", "AAAA"):
        return ipv4_text(value) or str(ipaddress.ip_address(value))
    if t == "MX":
        pref, host = parse_mx(value)
        return pref, presentation_to_raw(host)
    return presentation_to_raw(value)


class MemoryResolver:
    """Answers from a ``Zone`` directly, as a recursive resolver in front of it would.

    ``now`` is the virtual time (or a callable giving it) used to decide which
    DNS faults are active; the zone itself follows CNAME chains.
    """

    def __init__(
        self,
        zone: Zone,
        *,
        now: int | Callable[[], int] = 0,
        faults: Sequence[Fault] = (),
        seed: int = 0,
    ) -> None:
        self.zone = zone
        self._now = now
        self.faults = tuple(faults)
        self.seed = seed
        # answers by (name, type) for one zone version, kept only without DNS faults: then an answer
        # depends on the zone's data alone (every change to it bumps ``zone.version``), and SPF asks the
        # same questions for every sender (a provider's include, the platform's records)
        self._answers: dict[tuple[str, str], list[RData]] = {}
        self._answers_version = -1

    @property
    def now(self) -> int:
        return self._now() if callable(self._now) else self._now

    def resolve(self, name: str, rdtype: str) -> list[RData]:
        if self.faults:
            return self._resolve(name, rdtype)
        if self._answers_version != self.zone.version:
            self._answers.clear()
            self._answers_version = self.zone.version
        key = (name, rdtype)
        hit = self._answers.get(key)
        if hit is None:
            hit = self._answers[key] = self._resolve(name, rdtype)  # an error is raised again each time
        return list(hit)

    def _resolve(self, name: str, rdtype: str) -> list[RData]:
        t = rdtype.upper()
        if t not in SUPPORTED_TYPES:
            raise ValueError(f"unsupported query type {rdtype!r}")
        qname = _qname(name)
        if not dns_name_ok(qname):
            raise NXDomain(qname, t, "not a valid DNS name")
        ans = self.zone.lookup(name_key(qname), t, now=self.now, faults=self.faults, seed=self.seed)
        if ans.rcode == TIMEOUT:
            raise DnsTimeout(qname, t)
        if ans.rcode == SERVFAIL:
            raise DnsServFail(qname, t)
        if ans.cname_loop:
            raise DnsCnameLoop(qname, t)
        if ans.rcode == NXDOMAIN:
            raise NXDomain(qname, t)
        return _dedupe([_record_rdata(r) for r in ans.rrs(t)])


def name_to_text(name: dns.name.Name) -> str:
    """A dnspython name as programs spell it: lower-case, no trailing dot, no escapes."""
    return raw_name([lab for lab in name.labels if lab != b""])


def text_to_name(name: str) -> dns.name.Name:
    """The absolute dnspython name for ``name`` as programs spell it (no escape processing)."""
    import dns.name

    if name in ("", "."):
        return dns.name.root
    return dns.name.Name([*_labels(name), b""])


def _rdata_value(rd: dns.rdata.Rdata) -> RData:
    import dns.rdatatype

    t = dns.rdatatype.to_text(rd.rdtype)
    if t in ("A", "AAAA"):
        return str(ipaddress.ip_address(rd.address))  # type: ignore[attr-defined]
    if t == "MX":
        return (int(rd.preference), name_to_text(rd.exchange))  # type: ignore[attr-defined]
    if t in ("TXT", "SPF"):
        return tuple(s.decode("utf-8", "surrogateescape") for s in rd.strings)  # type: ignore[attr-defined]
    return name_to_text(rd.target)  # type: ignore[attr-defined]


class WireResolver:
    """Asks one DNS server over UDP (TCP on truncation) with dnspython's resolver.

    ``timeout`` bounds what one unanswered name costs in total (two tries),
    so an ``unreachable`` name turns into temperror quickly. No
    cache: the zone changes during a run and every question must see it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 53, *, timeout: float = 2.0) -> None:
        import dns.resolver

        self.host = host
        self.port = port
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [host]
        r.port = port
        # dnspython sleeps a growing backoff (0.1 s, 0.2 s, …) between tries
        # *before* checking the lifetime, so the lifetime leaves room for that
        # last sleep: two tries, and the whole question stays within ``timeout``.
        r.timeout = timeout * 0.45
        r.lifetime = max(timeout - 0.25, timeout * 0.5)
        r.cache = None
        r.retry_servfail = False
        self._resolver = r

    def resolve(self, name: str, rdtype: str) -> list[RData]:
        t = rdtype.upper()
        if t not in SUPPORTED_TYPES:
            raise ValueError(f"unsupported query type {rdtype!r}")
        qname = _qname(name)
        if not dns_name_ok(qname):
            raise NXDomain(qname, t, "not a valid DNS name")
        import dns.exception
        import dns.message
        import dns.rdataclass
        import dns.rdatatype
        import dns.resolver

        try:
            answer = self._resolver.resolve(
                text_to_name(qname),
                dns.rdatatype.from_text(t),
                dns.rdataclass.IN,
                search=False,
                raise_on_no_answer=False,
            )
        # one name per clause: compiled, a name keeps the type of its first binding
        except dns.resolver.NXDOMAIN as nx:
            raise NXDomain(qname, t) from nx
        except dns.resolver.NoNameservers as none:
            errors = none.kwargs.get("errors") or []
            if any(isinstance(err[3], dns.message.ChainTooLong) for err in errors):
                raise DnsCnameLoop(qname, t) from none
            raise DnsServFail(qname, t) from none
        except dns.exception.Timeout as timeout:
            raise DnsTimeout(qname, t) from timeout
        except dns.message.ChainTooLong as loop:
            raise DnsCnameLoop(qname, t) from loop
        except dns.exception.DNSException as other:
            raise DnsServFail(qname, t, type(other).__name__) from other
        if answer.rrset is None:
            return []
        return _dedupe([_rdata_value(rd) for rd in answer.rrset])


# --- typed views used by SPF and the engine ------------------------------------------------


def addresses(resolver: Resolver, name: str, rdtype: str = "A") -> list[str]:
    """A or AAAA answers as address strings."""
    return [v for v in resolver.resolve(name, rdtype) if isinstance(v, str)]


def mx_hosts(resolver: Resolver, name: str) -> list[tuple[int, str]]:
    """MX answers in answer order (callers that deliver sort by preference themselves)."""
    out: list[tuple[int, str]] = []
    for v in resolver.resolve(name, "MX"):
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], int):
            out.append((v[0], str(v[1])))
    return out


def txt_records(resolver: Resolver, name: str, rdtype: str = "TXT") -> list[tuple[str, ...]]:
    """TXT (or SPF-type) records, each the tuple of its character-strings."""
    out: list[tuple[str, ...]] = []
    for v in resolver.resolve(name, rdtype):
        if isinstance(v, tuple) and all(isinstance(s, str) for s in v):
            out.append(tuple(str(s) for s in v))
    return out


def names(resolver: Resolver, name: str, rdtype: str) -> list[str]:
    """CNAME / PTR / NS answers as names."""
    return [v for v in resolver.resolve(name, rdtype) if isinstance(v, str)]
