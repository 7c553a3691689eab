"""RFC 7208 ``check_host()``: the SPF verdict a receiving server reaches.

Users replay *why* an invoice email was junked, rejected or held, so the
evaluator follows RFC 7208 to the letter rather than to the common subset:
the whole record is parsed before anything is evaluated (a syntax error
anywhere is permerror, §4.6), DNS errors map to temperror/permerror as §4.4 and
§5 say, the 10-term and 2-void-lookup limits of §4.6.4 are enforced across
includes and redirects, and the ``exp=`` text is fetched only for a fail
(§6.2). It is its own implementation (not pyspf) so that it can run over any
``Resolver`` — the in-memory zone or the loopback DNS server — with identical
results, and take its ``%{t}`` timestamp from the virtual clock.

This module is the evaluator and the public API; the macro language lives in
``spf_macro`` and the record grammar in ``spf_record``. The limits of §4.6.4
are all enforced here.

Choices where RFC 7208 leaves room (documented in docs/spf.md):

- void lookups are counted for the query a term itself makes (``a``, ``mx``'s
  MX query, ``ptr``'s PTR query, ``exists``), not for the address queries of MX
  or PTR hosts;
- an ``mx`` whose MX RRset has more than 10 hosts is permerror (§4.6.4, as the
  RFC 7208 test suite requires); ``ptr`` uses only the first 10 PTR names;
- ``%{p}`` lookups do not count towards the 10-term limit;
- a looping or over-long CNAME chain is permerror (the published data is
  broken and will not fix itself, so deferring the mail would not help).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from simulator.domain.dns import display
from simulator.net.resolver import (
    DnsCnameLoop,
    DnsError,
    DnsTempError,
    DnsTimeout,
    NXDomain,
    RData,
    Resolver,
    addresses,
    mx_hosts,
    names,
    txt_records,
)
from simulator.net.spf_macro import (
    PermError,
    TempError,
    Token,
    expand_tokens,
    ip_macro,
    parse_macro_string,
    target_name,
)
from simulator.net.spf_record import DNS_MECHANISMS, Directive, is_spf1, parse_record, valid_domain

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESULTS: tuple[str, ...] = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
QUALIFIERS: dict[str, str] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_DNS_TERMS = 10
MAX_VOID_LOOKUPS = 2
MAX_MX_NAMES = 10
MAX_PTR_NAMES = 10
DEFAULT_RECEIVER = "mx.mailsim.test"


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The verdict, and enough of the why for an explanation or a trace line.

    ``mechanism`` is the term (as published) that decided the result — for an
    error, the top-level term being evaluated when it happened. ``exp`` is the
    publisher's own ``exp=`` text (fail only); ``explanation`` always carries a
    human-readable account, with ``exp`` appended when there is one.
    """

    result: str
    explanation: str
    mechanism: str | None = None
    lookups: int = 0
    void_lookups: int = 0
    domain: str = ""
    exp: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "result": self.result,
            "explanation": self.explanation,
            "mechanism": self.mechanism,
            "domain": self.domain,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
            "exp": self.exp,
        }


# --- the evaluation --------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    result: str
    term: str | None
    where: str
    via: str = ""  # the nested term behind an include or redirect
    exp: str | None = None
    note: str = ""


def _normalize_ip(ip: str) -> IPAddress:
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        # §5: an IPv4-mapped client address is evaluated as the IPv4 address.
        return addr.ipv4_mapped
    return addr


def _split_sender(sender: str, domain: str) -> tuple[str, str, str]:
    """(sender, local-part, sender-domain) with §4.3's postmaster substitution."""
    s = sender.strip()
    if "@" in s:
        local, dom = s.rsplit("@", 1)
    else:
        local, dom = "", s
    if not dom:
        dom = domain
    if not local:
        local = "postmaster"
    return f"{local}@{dom}", local, dom


def _dns_problem(e: DnsError) -> str:
    kind = "timeout" if isinstance(e, DnsTimeout) else "SERVFAIL"
    return f"DNS {kind} looking up {e.rdtype} {e.name}"


class _Evaluation:
    """One check_host() run: the limits of §4.6.4 span every include and redirect."""

    def __init__(
        self,
        ip: IPAddress,
        sender: str,
        local: str,
        sender_domain: str,
        helo: str,
        resolver: Resolver,
        receiver: str,
        now: int,
    ) -> None:
        self.ip = ip
        self.sender = sender
        self.local = local
        self.sender_domain = sender_domain
        self.helo = helo
        self.resolver = resolver
        self.receiver = receiver
        self.now = now
        self.lookups = 0
        self.voids = 0
        self.top_term: str | None = None
        self.depth = 0
        self._validated: dict[str, str] = {}

    # -- counting ---------------------------------------------------------------------

    def _count(self, term: str, domain: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_DNS_TERMS:
            raise PermError(
                f"more than {MAX_DNS_TERMS} DNS-querying terms ('{term}' in {domain} is number {self.lookups})"
            )

    def _void(self, what: str) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise PermError(f"more than {MAX_VOID_LOOKUPS} void DNS lookups (the last: {what})")

    # -- DNS helpers ------------------------------------------------------------------

    def _addr_type(self) -> str:
        return "A" if self.ip.version == 4 else "AAAA"

    def _query_addresses(self, name: str, rdtype: str, *, count_void: bool) -> list[str]:
        try:
            found = addresses(self.resolver, name, rdtype)
        except NXDomain:
            found = []
        except DnsCnameLoop as e:
            raise PermError(f"CNAME loop looking up {rdtype} {name}") from e
        except DnsTempError as temp:  # its own name: compiled, one name holds one exception type
            raise TempError(_dns_problem(temp)) from temp
        if not found and count_void:
            self._void(f"{rdtype} {name}")
        return found

    def _ip_in(self, addrs: list[str], cidr4: int, cidr6: int) -> bool:
        bits = cidr4 if self.ip.version == 4 else cidr6
        for a in addrs:
            try:
                addr = ipaddress.ip_address(a)
            except ValueError:
                continue
            if addr.version != self.ip.version:
                continue
            if self.ip in ipaddress.ip_network(f"{addr}/{bits}", strict=False):
                return True
        return False

    def _validated_names(self, limit_domain: str | None = None) -> list[str]:
        """§5.5: PTR names of the client whose forward lookup gives the client back.

        Any DNS error on the PTR query means no names; an error on one name's
        address lookup skips that name. Only the first 10 PTR names are used.
        """
        try:
            ptrs = names(self.resolver, self.ip.reverse_pointer, "PTR")
        except DnsError:
            return []
        out: list[str] = []
        for host in ptrs[:MAX_PTR_NAMES]:
            try:
                found = addresses(self.resolver, host, self._addr_type())
            except DnsError:
                continue
            if self._ip_in(found, 32, 128):
                out.append(host)
        return out

    def _p_macro(self, domain: str) -> str:
        key = domain.lower()
        if key in self._validated:
            return self._validated[key]
        valid = self._validated_names()
        value = "unknown"
        if valid:
            exact = [v for v in valid if v == key]
            sub = [v for v in valid if v.endswith("." + key)]
            value = (exact or sub or valid)[0]
        self._validated[key] = value
        return value

    # -- macros -----------------------------------------------------------------------

    def _macro_value(self, letter: str, domain: str) -> str:
        ip = self.ip
        if letter == "s":
            return self.sender
        if letter == "l":
            return self.local
        if letter == "o":
            return self.sender_domain
        if letter == "d":
            return domain
        if letter == "i" or letter == "v":
            return ip_macro(ip, letter)
        if letter == "p":
            return self._p_macro(domain)
        if letter == "h":
            return self.helo
        if letter == "c":
            return str(ip)
        if letter == "r":
            return self.receiver
        if letter == "t":
            return str(self.now)
        raise PermError(f"unknown macro letter {letter!r}")  # the parser already refused it

    def _expand(self, tokens: list[Token], domain: str) -> str:
        return expand_tokens(tokens, lambda letter: self._macro_value(letter, domain))

    def _target(self, tokens: list[Token] | None, domain: str) -> str:
        """A mechanism's target-name: the expanded domain-spec, or <domain>.

        §7.3: an expansion longer than 253 characters loses labels from the left.
        """
        if tokens is None:
            return domain
        return target_name(self._expand(tokens, domain))

    # -- record lookup ----------------------------------------------------------------

    def _record(self, domain: str) -> str | None:
        """§4.4/§4.5: the one ``v=spf1`` TXT record of ``domain`` (None: no record)."""
        try:
            txts = txt_records(self.resolver, domain, "TXT")
        except NXDomain:
            return None
        except DnsCnameLoop as e:
            raise PermError(f"CNAME loop looking up TXT {domain}") from e
        except DnsTempError as temp:  # its own name: compiled, one name holds one exception type
            raise TempError(_dns_problem(temp)) from temp
        spf = [t for t in ("".join(r) for r in txts) if is_spf1(t)]
        if not spf:
            return None
        if len(spf) > 1:
            raise PermError(f"{domain} publishes {len(spf)} SPF records (exactly one is allowed)")
        return spf[0]

    # -- check_host -------------------------------------------------------------------

    def check_host(self, domain: str, *, want_exp: bool) -> _Outcome:
        domain = domain[:-1] if domain.endswith(".") else domain
        if not valid_domain(domain):
            return _Outcome("none", None, domain, note=f"{domain!r} is not a valid domain name")
        text = self._record(domain)
        if text is None:
            return _Outcome("none", None, domain, note=f"no SPF record at {domain}")
        try:
            record = parse_record(text)
        except PermError as e:
            raise PermError(f"syntax error in the SPF record of {domain}: {e}") from e
        for d in record.directives:
            if self.depth == 0:
                self.top_term = d.text
            matched, via = self._mechanism(d, domain)
            if not matched:
                continue
            result = QUALIFIERS[d.qualifier]
            exp = None
            if result == "fail" and want_exp and record.exp is not None:
                exp = self._explain(record.exp, domain)
            return _Outcome(result, d.text, domain, via=via, exp=exp)
        if record.redirect is not None and not any(d.name == "all" for d in record.directives):
            if self.depth == 0:
                self.top_term = record.redirect_text
            self._count(record.redirect_text, domain)
            target = self._target(record.redirect, domain)
            self.depth += 1
            try:
                sub = self.check_host(target, want_exp=want_exp)
            finally:
                self.depth -= 1
            if sub.result == "none":
                raise PermError(f"'{record.redirect_text}' in {domain}: {sub.note}")
            redirected = f"redirected from {domain} by '{record.redirect_text}'"
            sub.note = f"{sub.note}; {redirected}" if sub.note else redirected
            return sub
        return _Outcome("neutral", None, domain, note=f"no mechanism matched in {domain}; default neutral")

    def _mechanism(self, d: Directive, domain: str) -> tuple[bool, str]:
        """Whether ``d`` matches; the second value names a nested match (include)."""
        name = d.name
        if name == "all":
            return True, ""
        if name == "ip4" or name == "ip6":
            assert d.network is not None
            return d.network.version == self.ip.version and self.ip in d.network, ""
        if name in DNS_MECHANISMS:
            self._count(d.text, domain)
        target = self._target(d.spec, domain)
        if name == "include":
            self.depth += 1
            try:
                sub = self.check_host(target, want_exp=False)
            finally:
                self.depth -= 1
            if sub.result == "none":
                raise PermError(f"'{d.text}' in {domain}: {sub.note}")
            if sub.result == "pass":
                via = f"'{sub.term}' in {sub.where}" + (f", {sub.via}" if sub.via else "")
                return True, via
            return False, ""
        if name == "a":
            found = self._query_addresses(target, self._addr_type(), count_void=True)
            return self._ip_in(found, d.cidr4, d.cidr6), ""
        if name == "mx":
            return self._mx(target, d), ""
        if name == "ptr":
            return self._ptr(target), ""
        if name == "exists":
            return bool(self._query_addresses(target, "A", count_void=True)), ""
        raise PermError(f"unknown mechanism {d.text!r}")

    def _mx(self, target: str, d: Directive) -> bool:
        try:
            mxs = mx_hosts(self.resolver, target)
        except NXDomain:
            mxs = []
        except DnsCnameLoop as e:
            raise PermError(f"CNAME loop looking up MX {target}") from e
        except DnsTempError as temp:  # its own name: compiled, one name holds one exception type
            raise TempError(_dns_problem(temp)) from temp
        if not mxs:
            self._void(f"MX {target}")
            return False
        if len(mxs) > MAX_MX_NAMES:
            raise PermError(f"'{d.text}': {target} has {len(mxs)} MX hosts (at most {MAX_MX_NAMES})")
        for _pref, host in mxs:
            if host == ".":
                continue  # RFC 7505 null MX: no host to look up
            found = self._query_addresses(host, self._addr_type(), count_void=False)
            if self._ip_in(found, d.cidr4, d.cidr6):
                return True
        return False

    def _ptr(self, target: str) -> bool:
        try:
            ptrs = names(self.resolver, self.ip.reverse_pointer, "PTR")
        except NXDomain:
            ptrs = []
        except DnsError:
            return False  # §5.5: a DNS error on the PTR query is simply no match
        if not ptrs:
            self._void(f"PTR {self.ip.reverse_pointer}")
            return False
        t = target.lower()
        for host in ptrs[:MAX_PTR_NAMES]:
            if host != t and not host.endswith("." + t):
                continue
            try:
                found = addresses(self.resolver, host, self._addr_type())
            except DnsError:
                continue
            if self._ip_in(found, 32, 128):
                return True
        return False

    def _explain(self, spec: list[Token], domain: str) -> str | None:
        """§6.2: the exp= text, or None when anything about it is wrong."""
        try:
            target = self._target(spec, domain)
            txts = txt_records(self.resolver, target, "TXT")
        except (DnsError, PermError, TempError):
            return None
        if len(txts) != 1:
            return None
        try:
            tokens = parse_macro_string("".join(txts[0]), explain=True)
            return self._expand(tokens, domain)
        except (PermError, TempError):
            return None


def _describe(ip: IPAddress, o: _Outcome) -> str:
    if o.term is None:
        return o.note
    text = f"{ip} matched '{o.term}' in {o.where}"
    if o.via:
        text += f" (via {o.via})"
    if o.note:
        text += f"; {o.note}"
    if o.exp is not None:
        text += f"; explanation: {o.exp}"
    return text


def check_host(
    ip: str,
    domain: str,
    sender: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = DEFAULT_RECEIVER,
    now: int = 0,
) -> SpfResult:
    """RFC 7208 §4 check_host(<ip>, <domain>, <sender>).

    ``helo`` feeds the %{h} macro, ``receiver`` %{r} and ``now`` (seconds,
    virtual time) %{t}. Raises ValueError only for an ``ip`` that is not an
    address; every DNS or record problem becomes one of the seven results.
    """
    addr = _normalize_ip(ip)
    dom = domain.strip()
    dom = dom[:-1] if dom.endswith(".") else dom
    full, local, sender_domain = _split_sender(sender, dom)
    ev = _Evaluation(addr, full, local, sender_domain, helo.strip(), resolver, receiver, now)
    try:
        o = ev.check_host(dom, want_exp=True)
    except PermError as e:
        return SpfResult("permerror", display(str(e)), ev.top_term, ev.lookups, ev.voids, dom)
    except TempError as temp:
        return SpfResult("temperror", display(str(temp)), ev.top_term, ev.lookups, ev.voids, dom)
    except RecursionError:
        return SpfResult("permerror", "SPF evaluation nested too deeply", ev.top_term, ev.lookups, ev.voids, dom)
    # the explanation is for people (traces, explain, terminals): names from PTR or MX data and
    # macro expansions can carry any bytes, so they are shown escaped; ``exp`` stays exact
    return SpfResult(o.result, display(_describe(addr, o)), o.term, ev.lookups, ev.voids, dom, o.exp)


def check_mail_from(
    ip: str,
    mail_from: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = DEFAULT_RECEIVER,
    now: int = 0,
) -> SpfResult:
    """The MAIL FROM identity check (§2.4).

    A null reverse-path (``<>``, e.g. a bounce) is checked as
    ``postmaster@<helo>``; a sender without a local part gets ``postmaster``.
    """
    mf = mail_from.strip()
    if mf.startswith("<") and mf.endswith(">"):
        mf = mf[1:-1].strip()
    if not mf:
        return check_host(ip, helo, f"postmaster@{helo}", helo, resolver, receiver=receiver, now=now)
    domain = mf.rsplit("@", 1)[1] if "@" in mf else mf
    return check_host(ip, domain, mf, helo, resolver, receiver=receiver, now=now)


def check_helo(
    ip: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = DEFAULT_RECEIVER,
    now: int = 0,
) -> SpfResult:
    """The HELO identity check (§2.3); an address literal has no policy (``none``)."""
    h = helo.strip()
    literal = h.startswith("[") and h.endswith("]")
    if not literal:
        try:
            ipaddress.ip_address(h)
            literal = True
        except ValueError:
            pass
    if literal:
        return SpfResult("none", f"HELO {h!r} is an address literal, not a domain", domain=h)
    return check_host(ip, h, f"postmaster@{h}", h, resolver, receiver=receiver, now=now)


class _NoDns:
    """A resolver for macro expansion without DNS: every name is absent (%{p} → unknown)."""

    def resolve(self, name: str, rdtype: str) -> list[RData]:
        raise NXDomain(name, rdtype)


def expand(
    macro_string: str,
    *,
    ip: str,
    sender: str,
    domain: str,
    helo: str = "",
    resolver: Resolver | None = None,
    receiver: str = DEFAULT_RECEIVER,
    now: int = 0,
    explain: bool = False,
) -> str:
    """Expand an SPF macro-string (§7) as check_host() would for <domain>.

    For tooling and tests: lets a user see what ``%{ir}.%{v}._spf.%{d2}`` turns
    into for a given connection. ``explain`` selects the exp-text grammar
    (spaces, %{c} %{r} %{t}). Raises ValueError on a macro syntax error.
    """
    addr = _normalize_ip(ip)
    full, local, sender_domain = _split_sender(sender, domain)
    ev = _Evaluation(addr, full, local, sender_domain, helo, resolver or _NoDns(), receiver, now)
    try:
        tokens = parse_macro_string(macro_string, explain=explain)
        return ev._expand(tokens, domain)
    except (PermError, TempError) as e:
        raise ValueError(str(e)) from e
