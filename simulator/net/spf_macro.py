"""SPF macro-strings (RFC 7208 §7): their grammar and their expansion.

Split from the evaluator because the macro language is a small language of its
own — parsed once per record, expanded per connection — and the record parser
(domain-specs, modifiers) and the explanation (exp=) text both build on it.
``PermError``/``TempError`` live here, the lowest SPF module, so every part
raises the same two outcomes that check_host() maps to permerror/temperror.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

MACRO_LETTERS = frozenset("slodiphv")
EXP_ONLY_LETTERS = frozenset("crt")
DELIMITERS = frozenset(".-+,/_=")
_TOPLABEL_RE = re.compile(r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])$")


class PermError(Exception):
    """The record (or a name it leads to) is broken: check_host() says permerror."""


class TempError(Exception):
    """A DNS failure that may pass: check_host() says temperror."""


# --- macro strings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Macro:
    letter: str  # as written (upper case = URL-escape the result)
    digits: int | None
    reverse: bool
    delimiters: str


Token = str | Macro


def parse_macro_string(text: str, *, explain: bool) -> list[Token]:
    """Tokenize a macro-string (§7.1); raises PermError on any syntax error.

    ``explain`` selects the explain-string grammar: spaces allowed and the
    exp-only letters c, r, t accepted.
    """
    out: list[Token] = []
    lit: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            if i + 1 >= n:
                raise PermError(f"'%' at the end of {text!r}")
            nxt = text[i + 1]
            if nxt == "%":
                lit.append("%")
                i += 2
                continue
            if nxt == "_":
                lit.append(" ")
                i += 2
                continue
            if nxt == "-":
                lit.append("%20")
                i += 2
                continue
            if nxt != "{":
                raise PermError(f"invalid macro '%{nxt}' in {text!r}")
            end = text.find("}", i + 2)
            if end < 0:
                raise PermError(f"unterminated macro in {text!r}")
            body = text[i + 2 : end]
            m = re.fullmatch(r"([A-Za-z])([0-9]*)([rR]?)(.*)", body, re.DOTALL)
            if m is None:
                raise PermError(f"invalid macro '%{{{body}}}' in {text!r}")
            letter, digits, rev, delims = m.groups()
            low = letter.lower()
            if low not in MACRO_LETTERS and not (explain and low in EXP_ONLY_LETTERS):
                where = "" if low in EXP_ONLY_LETTERS else "unknown "
                raise PermError(f"{where}macro letter '{letter}' not allowed in {text!r}")
            if any(d not in DELIMITERS for d in delims):
                raise PermError(f"invalid macro delimiter in '%{{{body}}}'")
            if digits and int(digits) == 0:
                raise PermError(f"macro transformer 0 in '%{{{body}}}'")
            if lit:
                out.append("".join(lit))
                lit = []
            out.append(Macro(letter, int(digits) if digits else None, bool(rev), delims))
            i = end + 1
            continue
        code = ord(ch)
        if not (0x21 <= code <= 0x7E or (explain and ch == " ")):
            raise PermError(f"invalid character {ch!r} in {text!r}")
        lit.append(ch)
        i += 1
    if lit:
        out.append("".join(lit))
    return out


def parse_domain_spec(text: str) -> list[Token]:
    """A domain-spec (§7.1): a macro-string ending in a macro or '.' toplabel ['.']."""
    if not text:
        raise PermError("empty domain-spec")
    tokens = parse_macro_string(text, explain=False)
    last = tokens[-1]
    if isinstance(last, Macro):
        return tokens
    # The trailing literal run must hold the '.' toplabel [ '.' ] ending; a
    # %%/%_/%- expansion is also a macro-expand, so the raw text decides.
    if re.search(r"%[%_\-]$", text):
        return tokens
    tail = last[:-1] if last.endswith(".") else last
    dot = tail.rfind(".")
    if dot < 0 or not _TOPLABEL_RE.match(tail[dot + 1 :]):
        raise PermError(f"domain-spec {text!r} does not end in a valid top-level label")
    return tokens


def ip_macro(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, letter: str) -> str:
    """``%{i}`` or ``%{v}`` of a client address (§7.3).

    IPv6 nibbles are upper case, as the RFC 7208 test suite (v-macro-ip6) and
    pyspf have them; the DNS compares names case-insensitively, so only
    explanation texts see the case.
    """
    if letter == "v":
        return "in-addr" if ip.version == 4 else "ip6"
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", "").upper())


def target_name(expanded: str) -> str:
    """An expanded domain-spec as a name to ask: no trailing dot, at most 253 characters.

    §7.3: an expansion longer than 253 characters loses labels from the left.
    """
    name = expanded[:-1] if expanded.endswith(".") else expanded
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


def expand_tokens(tokens: list[Token], value_of: Callable[[str], str]) -> str:
    """§7.3: expand parsed tokens; ``value_of(letter)`` gives a macro letter's (lower case) value."""
    out: list[str] = []
    for tok in tokens:
        if isinstance(tok, str):
            out.append(tok)
            continue
        value = value_of(tok.letter.lower())
        if tok.digits is not None or tok.reverse or tok.delimiters:
            delims = tok.delimiters or "."
            parts = re.split("[" + re.escape(delims) + "]", value)
            if tok.reverse:
                parts.reverse()
            if tok.digits is not None:
                parts = parts[-tok.digits :]
            value = ".".join(parts)
        if tok.letter.isupper():
            value = urllib.parse.quote(value, safe="-._~")
        out.append(value)
    return "".join(out)
