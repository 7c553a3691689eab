"""``mailsim dns snapshot``: a customer's real DNS, captured as a scenario's ``dns:`` section.

A support engineer reproducing "our invoices go to junk" wants the customer's
actual SPF and MX records in the scenario, not a hand-copied guess. This asks a
DNS server (the system resolver by default) what SPF evaluation and delivery of
each name need — TXT and SPF, MX, A and AAAA, the addresses of the MX hosts —
and follows every name an SPF record reaches without knowing the connection
(``include``, ``redirect``, ``a``, ``mx``, ``exists`` and ``exp`` with literal
domains), as far as RFC 7208's limits let an evaluation go (10 DNS-querying
terms from each name, 10 MX hosts). Names built from macros (``%{i}``, ``%{l}``…)
and ``ptr`` depend on the connection and cannot be known; they are listed in the
file's header comment instead.

Answers are kept as the server gave them: CNAME chains as CNAME records, bytes
in the zone-file presentation form (so the file shows ``\\DDD`` for odd bytes),
record order as served. A question that times out or fails (SERVFAIL, REFUSED…)
becomes an ``unreachable`` rule for exactly that name and type, so SPF sees
``temperror`` there as it did live. NXDOMAIN and NODATA leave nothing to record.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver

from simulator.domain.dns import bytes_to_text, labels_to_name, name_to_labels, text_to_bytes
from simulator.net.spf_macro import PermError, Token
from simulator.net.spf_record import DNS_MECHANISMS, is_spf1, parse_record

NAME_TYPES: tuple[str, ...] = ("TXT", "SPF", "MX", "A", "AAAA")
HOST_TYPES: tuple[str, ...] = ("A", "AAAA")
RECORDED_TYPES = frozenset({"A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS"})
MAX_TERMS = 10  # RFC 7208 §4.6.4: the 11th DNS-querying term is permerror, so nothing past it matters
MAX_MX_HOSTS = 10


@dataclass(frozen=True, slots=True)
class Captured:
    """One record as served, in presentation form (the ``dns:`` entry it becomes)."""

    name: str
    type: str
    value: str | tuple[str, ...]
    ttl: int


@dataclass(slots=True)
class Snapshot:
    """What the server said: records in the order first seen, and the questions that got no answer."""

    server: str
    names: tuple[str, ...]
    records: list[Captured] = field(default_factory=list)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, type) → why
    not_followed: list[str] = field(default_factory=list)  # terms that depend on the connection
    queries: int = 0


def parse_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) → (ip, port); raises ValueError with the reason."""
    s = text.strip()
    host, port = s, 53
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or (s[end + 1 :] and not s[end + 1 :].startswith(":")):
            raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
        host = s[1:end]
        if s[end + 1 :]:
            port = _port(s[end + 2 :], text)
    elif s.count(":") == 1:
        host, _, p = s.partition(":")
        port = _port(p, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address like 192.0.2.53 or [2001:db8::53]:5353, got {text!r}") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"port must be 1..65535 in {whole!r}")
    return int(text)


def make_resolver(server: tuple[str, int] | None, timeout: float) -> dns.resolver.Resolver:
    """A non-caching resolver for ``server``, or the system's (``/etc/resolv.conf``) when None."""
    if server is None:
        r = dns.resolver.Resolver(configure=True)
    else:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [server[0]]
        r.port = server[1]
    r.timeout = timeout
    r.lifetime = timeout * 2
    r.cache = None
    r.retry_servfail = False
    return r


def _value(rd: dns.rdata.Rdata) -> str | tuple[str, ...]:
    t = dns.rdatatype.to_text(rd.rdtype)
    if t in ("TXT", "SPF"):
        strings = tuple(bytes_to_text(s) for s in rd.strings)  # type: ignore[attr-defined]
        return strings[0] if len(strings) == 1 else strings
    if t in ("A", "AAAA"):
        return str(ipaddress.ip_address(rd.address))  # type: ignore[attr-defined]
    if t == "MX":
        return f"{rd.preference} {_pname(rd.exchange)}"  # type: ignore[attr-defined]
    return _pname(rd.target)  # type: ignore[attr-defined]


def _pname(name: dns.name.Name) -> str:
    return labels_to_name(lab for lab in name.labels if lab != b"")


def _spec_text(tokens: list[Token] | None) -> str | None:
    """A domain-spec's name when it holds no macro (a literal name), else None."""
    if tokens is None or not all(isinstance(t, str) for t in tokens):
        return None
    text = "".join(t for t in tokens if isinstance(t, str))
    return text[:-1] if text.endswith(".") else text


class _Taker:
    def __init__(self, resolver: dns.resolver.Resolver, snap: Snapshot) -> None:
        self.resolver = resolver
        self.snap = snap
        self.asked: dict[tuple[str, str], list[Captured]] = {}
        self.seen_records: set[tuple[str, str, object]] = set()

    def ask(self, name: str, rtype: str) -> list[Captured]:
        """The final RRset of (name, rtype); every record of the answer (CNAMEs too) is captured."""
        key = (name, rtype)
        if key in self.asked:
            return self.asked[key]
        self.snap.queries += 1
        qname = dns.name.Name([*name_to_labels(name), b""])
        final: list[Captured] = []
        try:
            answer = self.resolver.resolve(
                qname, dns.rdatatype.from_text(rtype), search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            answer = None
        except dns.resolver.NoNameservers as e:
            self.snap.failed[key] = f"no server answered ({_first_error(e)})"
            answer = None
        except dns.exception.Timeout:
            self.snap.failed[key] = "timeout"
            answer = None
        except dns.exception.DNSException as e:
            self.snap.failed[key] = type(e).__name__
            answer = None
        if answer is not None and answer.response is not None:
            for rrset in answer.response.answer:
                t = dns.rdatatype.to_text(rrset.rdtype)
                if t not in RECORDED_TYPES:
                    continue
                owner = _pname(rrset.name)
                for rd in rrset:
                    rec = Captured(owner, t, _value(rd), int(rrset.ttl))
                    mark = (rec.name, rec.type, rec.value)
                    if mark not in self.seen_records:
                        self.seen_records.add(mark)
                        self.snap.records.append(rec)
                    if t == rtype:
                        final.append(rec)
        self.asked[key] = final
        return final

    def host(self, name: str) -> None:
        for t in HOST_TYPES:
            self.ask(name, t)

    def mx_hosts(self, name: str) -> None:
        for rec in self.ask(name, "MX")[:MAX_MX_HOSTS]:
            host = str(rec.value).split(" ", 1)[1]
            if host != ".":
                self.host(host)

    def follow_spf(self, domain: str, budget: list[int], depth: int = 0) -> None:
        """Walk the SPF record of ``domain`` as far as an evaluation from the root could go."""
        texts = [_served_text(r.value) for r in self.ask(domain, "TXT")]
        records = [t for t in texts if is_spf1(t)]
        if len(records) != 1 or depth > MAX_TERMS:
            return
        try:
            record = parse_record(records[0])
        except PermError:
            return
        for d in record.directives:
            if d.name not in DNS_MECHANISMS:
                continue
            if budget[0] >= MAX_TERMS:
                return
            budget[0] += 1
            target = domain if d.spec is None else _spec_text(d.spec)
            if target is None or d.name == "ptr":
                self.snap.not_followed.append(f"'{d.text}' in {domain}")
                continue
            if d.name == "include":
                self.follow_spf(target, budget, depth + 1)
            elif d.name == "a":
                self.host(target)
            elif d.name == "mx":
                self.mx_hosts(target)
            elif d.name == "exists":
                self.ask(target, "A")
        if record.exp is not None:
            exp = _spec_text(record.exp)
            if exp is None:
                self.snap.not_followed.append(f"'exp=' in {domain}")
            else:
                self.ask(exp, "TXT")
        if record.redirect is not None and not any(d.name == "all" for d in record.directives):
            if budget[0] >= MAX_TERMS:
                return
            budget[0] += 1
            target = _spec_text(record.redirect)
            if target is None:
                self.snap.not_followed.append(f"'{record.redirect_text}' in {domain}")
            else:
                self.follow_spf(target, budget, depth + 1)


def _served_text(value: str | tuple[str, ...]) -> str:
    """A TXT record's strings joined and decoded as SPF sees them (RFC 7208 §3.3)."""
    items = value if isinstance(value, tuple) else (value,)
    return b"".join(text_to_bytes(v) for v in items).decode("utf-8", "surrogateescape")


def _first_error(e: dns.resolver.NoNameservers) -> str:
    errors = e.kwargs.get("errors") or []
    for err in errors:
        detail = err[3]
        if isinstance(detail, dns.message.Message):
            return dns.rcode.to_text(detail.rcode())
        if isinstance(detail, str):
            return detail
    return "SERVFAIL"


def take(names: Sequence[str], resolver: dns.resolver.Resolver, server_label: str) -> Snapshot:
    """Ask for everything ``names`` need (see the module docstring) and return what was answered."""
    snap = Snapshot(server=server_label, names=tuple(names))
    taker = _Taker(resolver, snap)
    for name in names:
        for t in NAME_TYPES:
            taker.ask(name, t)
        taker.mx_hosts(name)
        taker.follow_spf(name, [0])
    return snap


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _entry(rec: Captured) -> str:
    value = "[" + ", ".join(_q(v) for v in rec.value) + "]" if isinstance(rec.value, tuple) else _q(rec.value)
    ttl = f", ttl: {rec.ttl}" if rec.ttl != 300 else ""
    return f"    - {{name: {_q(rec.name)}, type: {rec.type}, value: {value}{ttl}}}"


def render(snap: Snapshot, taken_at: str) -> str:
    """The ``mailsim/1`` file: a header comment (when, from where, what was not followed), then ``dns:``."""
    lines = [
        f"# mailsim dns snapshot of {' '.join(snap.names)}",
        f"# taken {taken_at} from {snap.server} ({snap.queries} questions)",
        "# Answers as served; questions that timed out or failed are under dns.unreachable.",
    ]
    for term in dict.fromkeys(snap.not_followed):
        lines.append(f"# not followed (depends on the connection): {term}")
    lines += [
        "schema: mailsim/1",
        f"name: {_q('snapshot-' + snap.names[0]) if snap.names else 'snapshot'}",
        f"description: {_q('DNS of ' + ', '.join(snap.names) + ' as ' + snap.server + ' served it at ' + taken_at)}",
        f"start: {taken_at}",
        "dns:",
    ]
    if snap.records:
        lines.append("  records:")
        lines += [_entry(r) for r in snap.records]
    else:
        lines.append("  records: []")
    if snap.failed:
        lines.append("  unreachable:")
        for (name, rtype), why in snap.failed.items():
            lines.append(f"    - {{name: {_q(name)}, types: [{rtype}], subdomains: false}}  # {why}")
    return "\n".join(lines) + "\n"


def name_list(names: Iterable[str]) -> list[str]:
    """Names in first-given order without repeats."""
    return list(dict.fromkeys(names))
