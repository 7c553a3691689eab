"""``mailsim dns snapshot``: a customer's real DNS, captured as a scenario's ``dns:`` section.

A support engineer reproducing "our invoices go to junk" wants the customer's
actual SPF and MX records in the scenario, not a hand-copied guess. This asks a
DNS server (the system resolver by default) what SPF evaluation and delivery of
each name need — TXT and SPF, MX, A and AAAA, the addresses of the MX hosts —
and follows every name an SPF record reaches without knowing the connection
(``include``, ``redirect``, ``a``, ``mx``, ``exists`` and ``exp`` with literal
domains), as far as RFC 7208's limits let an evaluation go (10 DNS-querying
terms from each name, 10 MX hosts). Names built from macros and ``ptr``
depend on the connection; given the client IPs that matter (the platform's and
providers' sending IPs, ``--ip``), ``ptr`` and the macros of the client address
and the domains (``%{i} %{v} %{d} %{o}``) are followed for each of them. What
still cannot be known (the sender's local part, ``%{p}``…) is listed in the
file's header comment.

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
from simulator.net.spf_macro import Macro, PermError, Token, expand_tokens, ip_macro, target_name
from simulator.net.spf_record import DNS_MECHANISMS, is_spf1, parse_record

NAME_TYPES: tuple[str, ...] = ("TXT", "SPF", "MX", "A", "AAAA")
HOST_TYPES: tuple[str, ...] = ("A", "AAAA")
RECORDED_TYPES = frozenset({"A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS"})
MAX_TERMS = 10  # RFC 7208 §4.6.4: the 11th DNS-querying term is permerror, so nothing past it matters
MAX_MX_HOSTS = 10
MAX_PTR_NAMES = 10
_KNOWABLE = frozenset("ivdo")  # macro letters a snapshot can expand once the client IPs are given
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    ips: tuple[str, ...] = ()  # the clients whose address macros and ptr were followed
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
    def __init__(self, resolver: dns.resolver.Resolver, snap: Snapshot, ips: Sequence[IPAddress] = ()) -> None:
        self.resolver = resolver
        self.snap = snap
        self.ips = tuple(ips)
        self.root = ""
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

    def targets(self, spec: list[Token] | None, domain: str) -> list[str] | None:
        """The names a domain-spec can reach: its literal name, or one per ``--ip`` when its
        macros depend only on the client address and the domains (``%{i} %{v} %{d} %{o}``).
        None when it depends on more (the sender's local part, HELO, ``%{p}``)."""
        if spec is None:
            return [domain]
        literal = _spec_text(spec)
        if literal is not None:
            return [literal]
        letters = {t.letter.lower() for t in spec if isinstance(t, Macro)}
        if not self.ips or not letters <= _KNOWABLE:
            return None
        out: list[str] = []
        for ip in self.ips:
            values = {"i": ip_macro(ip, "i"), "v": ip_macro(ip, "v"), "d": domain, "o": self.root}
            out.append(target_name(expand_tokens(spec, values.__getitem__)))
        return list(dict.fromkeys(out))

    def ptr_names(self) -> None:
        """What ``ptr`` and ``%{p}`` ask for each ``--ip``: its PTR names and their addresses."""
        for ip in self.ips:
            for rec in self.ask(ip.reverse_pointer, "PTR")[:MAX_PTR_NAMES]:
                self.ask(str(rec.value), "A" if ip.version == 4 else "AAAA")

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
            if d.name == "ptr":
                if self.ips:
                    self.ptr_names()
                else:
                    self.snap.not_followed.append(f"'{d.text}' in {domain}")
                continue
            targets = self.targets(d.spec, domain)
            if targets is None:
                self.snap.not_followed.append(f"'{d.text}' in {domain}")
                continue
            for target in targets:
                if d.name == "include":
                    self.follow_spf(target, budget, depth + 1)
                elif d.name == "a":
                    self.host(target)
                elif d.name == "mx":
                    self.mx_hosts(target)
                elif d.name == "exists":
                    self.ask(target, "A")
        if record.exp is not None:
            exps = self.targets(record.exp, domain)
            if exps is None:
                self.snap.not_followed.append(f"'exp=' in {domain}")
            for exp in exps or ():
                self.ask(exp, "TXT")
        if record.redirect is not None and not any(d.name == "all" for d in record.directives):
            if budget[0] >= MAX_TERMS:
                return
            budget[0] += 1
            redirects = self.targets(record.redirect, domain)
            if redirects is None:
                self.snap.not_followed.append(f"'{record.redirect_text}' in {domain}")
            for target in redirects or ():
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


def take(
    names: Sequence[str], resolver: dns.resolver.Resolver, server_label: str, ips: Sequence[str] = ()
) -> Snapshot:
    """Ask for everything ``names`` need (see the module docstring) and return what was answered.

    ``ips`` are the clients whose checks the snapshot must reproduce (the platform's and
    providers' sending IPs): with them, ``ptr`` and macros of the client address are followed.
    """
    snap = Snapshot(server=server_label, names=tuple(names), ips=tuple(ips))
    taker = _Taker(resolver, snap, [_client(ip) for ip in ips])
    for name in names:
        for t in NAME_TYPES:
            taker.ask(name, t)
        taker.mx_hosts(name)
        taker.root = name
        taker.follow_spf(name, [0])
    return snap


def _client(ip: str) -> IPAddress:
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # evaluated as IPv4, as check_host() does
    return addr


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
        f"# mailsim dns snapshot of {' '.join(snap.names)}"
        + (f" for clients {' '.join(snap.ips)}" if snap.ips else ""),
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
