"""SPF records (RFC 7208 §4.5, §4.6, §5, §6): selection and the parse of every term.

The whole record is parsed before anything is evaluated — §4.6 wants a syntax
error anywhere, even after a term that would match, to be permerror — so the
parse is its own step, with its own module: the evaluator only walks parsed
directives.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

from simulator.net.spf_macro import PermError, Token, parse_domain_spec, parse_macro_string

DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_MODIFIER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9\-_.]*)=(.*)$", re.DOTALL)
_DIRECTIVE_RE = re.compile(r"^([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)$", re.DOTALL)
_DUAL_CIDR_RE = re.compile(r"^(.*?)(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?$", re.DOTALL)
_IP4_RE = re.compile(r"^(.+?)(?:/(0|[1-9][0-9]?))?$", re.DOTALL)
_IP6_RE = re.compile(r"^(.+?)(?:/(0|[1-9][0-9]{0,2}))?$", re.DOTALL)
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IP4_NETWORK_RE = re.compile(rf"^{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}$")


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Directive:
    text: str
    qualifier: str
    name: str  # lower case
    spec: list[Token] | None = None  # domain-spec, when given
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int = 32
    cidr6: int = 128


@dataclass(slots=True)
class Record:
    directives: list[Directive] = field(default_factory=list)
    redirect: list[Token] | None = None
    redirect_text: str = ""
    exp: list[Token] | None = None


def parse_directive(term: str) -> Directive:
    m = _DIRECTIVE_RE.match(term)
    if m is None:
        raise PermError(f"unknown term {term!r}")
    qual, raw_name, rest = m.groups()
    name = raw_name.lower()
    qualifier = qual or "+"
    if name == "all":
        if rest:
            raise PermError(f"'all' takes no argument: {term!r}")
        return Directive(term, qualifier, name)
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            raise PermError(f"'{name}' needs ':domain': {term!r}")
        return Directive(term, qualifier, name, spec=parse_domain_spec(rest[1:]))
    if name in ("a", "mx"):
        if rest and rest[0] not in ":/":
            raise PermError(f"unknown mechanism {term!r}")
        body = rest[1:] if rest.startswith(":") else rest
        cm = _DUAL_CIDR_RE.match(body)
        assert cm is not None  # the pattern matches every string
        dom, c4, c6 = cm.groups()
        if rest.startswith(":"):
            spec = parse_domain_spec(dom)
        elif dom:
            raise PermError(f"invalid CIDR length in {term!r}")
        else:
            spec = None
        cidr4 = int(c4) if c4 is not None else 32
        cidr6 = int(c6) if c6 is not None else 128
        if cidr4 > 32 or cidr6 > 128:
            raise PermError(f"CIDR length out of range in {term!r}")
        return Directive(term, qualifier, name, spec=spec, cidr4=cidr4, cidr6=cidr6)
    if name == "ptr":
        if not rest:
            return Directive(term, qualifier, name)
        if not rest.startswith(":"):
            raise PermError(f"invalid 'ptr' term {term!r}")
        return Directive(term, qualifier, name, spec=parse_domain_spec(rest[1:]))
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise PermError(f"'{name}' needs ':network': {term!r}")
        regex = _IP4_RE if name == "ip4" else _IP6_RE
        im = regex.match(rest[1:])
        if im is None:
            raise PermError(f"invalid network in {term!r}")
        addr_text, length = im.groups()
        try:
            if name == "ip4":
                if not _IP4_NETWORK_RE.match(addr_text):
                    raise ValueError(addr_text)
                bits = int(length) if length is not None else 32
                if bits > 32:
                    raise ValueError(length)
                net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network(
                    f"{addr_text}/{bits}", strict=False
                )
            else:
                if "%" in addr_text or "/" in addr_text:
                    raise ValueError(addr_text)
                bits = int(length) if length is not None else 128
                if bits > 128:
                    raise ValueError(length)
                net = ipaddress.IPv6Network(f"{ipaddress.IPv6Address(addr_text)}/{bits}", strict=False)
        except ValueError as e:
            raise PermError(f"invalid network in {term!r}") from e
        return Directive(term, qualifier, name, network=net)
    raise PermError(f"unknown mechanism {term!r}")


def parse_record(text: str) -> Record:
    """Parse a whole selected record up front: §4.6 wants syntax errors anywhere to win.

    Memoised by the record's text (:func:`_parsed`): every sender whose record includes a
    provider's (Microsoft's, Google's: dozens of ``ip4:``/``ip6:`` terms) parsed that same text
    again, ≈0.2 ms a check — a tenth of a small varied run went to it. The record returned is
    shared: callers read it and never change it.
    """
    record, error = _parsed(text)
    if record is None:
        raise PermError(error)
    return record


@lru_cache(maxsize=1024)
def _parsed(text: str) -> tuple[Record | None, str]:
    """(the record, "") or (None, why it is a permerror): a pure function of the text."""
    try:
        return _parse(text), ""
    except PermError as e:
        return None, str(e)


def _parse(text: str) -> Record:
    terms = [t for t in text.split(" ") if t]
    rec = Record()
    for term in terms[1:]:
        if any(not (0x21 <= ord(c) <= 0x7E) for c in term):
            raise PermError(f"invalid character in term {term!r}")
        mod = _MODIFIER_RE.match(term)
        if mod is not None:
            mname, value = mod.group(1).lower(), mod.group(2)
            if mname == "redirect":
                if rec.redirect is not None:
                    raise PermError("more than one redirect= modifier")
                rec.redirect = parse_domain_spec(value)
                rec.redirect_text = term
            elif mname == "exp":
                if rec.exp is not None:
                    raise PermError("more than one exp= modifier")
                rec.exp = parse_domain_spec(value)
            else:
                parse_macro_string(value, explain=False)  # unknown modifiers: ignored, but well-formed
            continue
        rec.directives.append(parse_directive(term))
    return rec


def is_spf1(text: str) -> bool:
    head = text[:7].lower()
    return head == "v=spf1" or head == "v=spf1 "


def valid_domain(domain: str) -> bool:
    """§4.3: a usable <domain> is a fully qualified, multi-label ASCII name.

    Anything else (an address literal, a single label, an empty or oversize
    label) makes check_host() return ``none`` without asking the DNS.
    """
    d = domain[:-1] if domain.endswith(".") else domain
    if not d or len(d) > 253 or not d.isascii():
        return False
    # no whitespace or control character anywhere: for ASCII that is "printable and no space" (the
    # other whitespace characters are not printable), one pass in C instead of one per character
    if not d.isprintable() or " " in d:
        return False
    labels = d.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not 0 < len(label) <= 63:
            return False
    return not labels[-1].isdigit()


