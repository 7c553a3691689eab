"""DNS data as a zone holds it: the records a scenario publishes and the names that never answer.

Real zones hold bytes, not text: TXT strings may carry control and 8-bit bytes,
labels may carry spaces, ``%``, ``:`` or ``/`` (the RFC 7208 test suite relies on
both). Scenario files and every printed line are text, so records are kept in
their *presentation form*, the zone-file spelling (RFC 1035 §5.1): ``\\DDD`` for a
byte by its decimal value, ``\\X`` for a character taken literally. This module is
the one codec for that spelling, used by the loader (to accept and canonicalise
what a file says) and by the DNS code (to serve the bytes exactly). Keeping the
canonical presentation in ``DnsRecord`` means a value that reaches a terminal or
a trace is already escaped: it can never carry a raw control byte.

Canonical presentation:

- TXT strings: printable characters stay as written (non-ASCII ones too, as
  UTF-8); ``\\`` is ``\\\\``; every other byte is ``\\DDD``.
- names: labels joined by ``.``, ASCII lower-cased (DNS compares names
  case-insensitively), no trailing dot; printable ASCII other than space stays;
  a ``.`` or ``\\`` inside a label is ``\\.``/``\\\\``; every other byte (space,
  control, 8-bit) is ``\\DDD`` — what ``dig`` shows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DNS_RECORD_TYPES: tuple[str, ...] = ("A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS")
NAME_VALUED_TYPES: frozenset[str] = frozenset({"CNAME", "PTR", "NS"})
TXT_TYPES: frozenset[str] = frozenset({"TXT", "SPF"})

MAX_LABEL = 63
MAX_NAME_WIRE = 255  # octets of the wire form, root label included (RFC 1035 §2.3.4)
MAX_STRING = 255  # octets of one TXT character-string
# octets of a TXT value (DESIGN §8). With the length octet of each string the record can then
# exceed what one DNS message holds: such an answer is SERVFAIL, in memory and on the wire alike.
MAX_RDATA = 65535


class DnsTextError(ValueError):
    """A presentation-form name or value that cannot be decoded (the message says why)."""


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One record as a zone holds it; TXT/SPF values may be several strings (joined for SPF, RFC 7208 §3.3)."""

    name: str  # canonical presentation, lower case, no trailing dot; may start with "*." (wildcard)
    type: str  # upper case: A, AAAA, MX, TXT, SPF, CNAME, PTR, NS
    value: str | tuple[str, ...]  # TXT/SPF may be several character-strings (presentation form)
    ttl: int = 300

    @property
    def text(self) -> str:
        """TXT/SPF strings joined as RFC 7208 §3.3 says (no separator), in presentation form."""
        return "".join(self.value) if isinstance(self.value, tuple) else self.value


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A name whose questions get no reply: a dead server, or one that drops some query types.

    ``types`` empty means every type; ``subdomains`` extends it to every name below.
    """

    name: str
    types: tuple[str, ...] = ()
    subdomains: bool = True

    def covers(self, name: str, rtype: str, is_below: bool) -> bool:
        if self.types and rtype not in self.types:
            return False
        return name == self.name or (self.subdomains and is_below)


@dataclass(frozen=True, slots=True)
class Dns:
    """A scenario's published records and the names whose queries never answer (``temperror`` for SPF)."""

    records: tuple[DnsRecord, ...] = ()
    unreachable: tuple[str, ...] = ()  # each name and everything below it, every type
    unreachable_rules: tuple[Unreachable, ...] = ()  # the mapping form: exact names, some types only
    # ``records`` as a zone serves them (normalize_record), worked out once per value rather than by every
    # run's zone: every simulate() of a scenario (a sweep, the stepper stepping back, a benchmark) used to
    # check and canonicalise each record again. None when a record is invalid: the zone then normalises
    # and raises as it always did, at the same point of a run.
    canonical: tuple[DnsRecord, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            canonical: tuple[DnsRecord, ...] | None = tuple(normalize_record(r) for r in self.records)
        except ValueError:
            canonical = None
        object.__setattr__(self, "canonical", canonical)


def normalize_name(name: str) -> str:
    """A presentation name in the zone's one spelling (canonical, lower case, no trailing dot).

    Names compare case-insensitively; one spelling keeps dict lookups exact. A
    name that cannot be decoded keeps its lower-cased text (it then matches nothing).
    """
    n = name.strip()
    if "\\" not in n and " " not in n:
        n = n.lower()
        return n[:-1] if n.endswith(".") and n != "." else n
    try:
        return canonical_name(n, root=True)
    except DnsTextError:
        return n.lower()


def normalize_record(rec: DnsRecord) -> DnsRecord:
    """``rec`` as a zone holds it: type upper case, name normalised, value canonical; ValueError if invalid.

    A record already in that form is returned as it is (no new object).
    """
    t = rec.type.upper()
    problem = check_record(t, rec.value)
    if problem is not None:
        raise ValueError(f"{rec.name} {t}: {problem}")
    name, value = normalize_name(rec.name), canonical_value(t, rec.value)
    if name == rec.name and t == rec.type and value == rec.value:
        return rec
    return DnsRecord(name=name, type=t, value=value, ttl=rec.ttl)


# --- the codec -----------------------------------------------------------------------------


def text_to_bytes(text: str) -> bytes:
    """Zone-file escapes → bytes: ``\\DDD`` (000–255) is that byte, ``\\X`` is X; the rest UTF-8."""
    if "\\" not in text:
        return text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "\\":
            j = text.find("\\", i)
            j = n if j < 0 else j
            out += text[i:j].encode("utf-8", "surrogateescape")
            i = j
            continue
        if i + 1 >= n:
            raise DnsTextError(f"a lone '\\' at the end (write '\\\\' for a backslash) in {_show(text)}")
        nxt = text[i + 1]
        if nxt.isascii() and nxt.isdigit():
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or not (digits.isascii() and digits.isdigit()):
                raise DnsTextError(
                    f"'\\{digits}' at character {i + 1}: a byte escape is '\\' and exactly three digits "
                    f"(\\000-\\255) in {_show(text)}"
                )
            value = int(digits)
            if value > 255:
                raise DnsTextError(f"'\\{digits}' at character {i + 1}: a byte is \\000-\\255 in {_show(text)}")
            out.append(value)
            i += 4
            continue
        out += nxt.encode("utf-8", "surrogateescape")
        i += 2
    return bytes(out)


def bytes_to_text(data: bytes) -> str:
    """Bytes → canonical TXT presentation (printable characters kept, the rest ``\\DDD``)."""
    text = data.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend(f"\\{b:03d}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def canonical_text(text: str) -> str:
    """A TXT string as written (escapes allowed) → its canonical presentation."""
    return bytes_to_text(text_to_bytes(text))


def _label_text(label: bytes) -> str:
    if label.isascii():  # printable ASCII but space, dot and backslash stands for itself (host names: always)
        text = label.decode("ascii")
        if text.isprintable() and " " not in text and "." not in text and "\\" not in text:
            return text
    out: list[str] = []
    for b in label:
        if b in (0x2E, 0x5C):  # . and \
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def labels_to_name(labels: Iterable[bytes]) -> str:
    """Labels (no root label) → canonical presentation name; ``"."`` for the root."""
    parts = [_label_text(lab.lower()) for lab in labels]
    return ".".join(parts) if parts else "."


def name_to_labels(text: str) -> tuple[bytes, ...]:
    """A presentation name → its labels (no root label); ``.`` or ``""`` is the root.

    Escape-aware: ``\\.`` and ``\\046`` are a dot inside a label. A trailing dot is
    allowed (absolute name); an empty label elsewhere raises ``DnsTextError``.
    """
    if text in ("", "."):
        return ()
    if "\\" not in text:
        parts = text.split(".")
        if parts[-1] == "":
            parts.pop()
        if any(p == "" for p in parts):
            raise DnsTextError(f"empty label in {_show(text)}")
        return tuple(p.encode("utf-8", "surrogateescape") for p in parts)
    labels: list[bytes] = []
    cur: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n and text[i + 1].isascii() and text[i + 1].isdigit():
                cur.append(text[i : i + 4])
                i += 4
            else:
                cur.append(text[i : i + 2])
                i += 2
            continue
        if ch == ".":
            if not cur:
                raise DnsTextError(f"empty label in {_show(text)}")
            labels.append(text_to_bytes("".join(cur)))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    if cur:
        labels.append(text_to_bytes("".join(cur)))
    return tuple(labels)


def _simple_name(text: str) -> bool:
    return "\\" not in text and text.isascii() and text.isprintable() and " " not in text


def canonical_name(text: str, *, wildcard: bool = False, root: bool = False) -> str:
    """A name as written (escapes allowed) → canonical presentation, validated.

    Raises ``DnsTextError`` for an empty label, a label over 63 octets, a name over
    255 octets on the wire, the root without ``root``, or — for a record's owner
    name (``wildcard``) — a ``*`` label other than the leftmost one. In targets a
    ``*`` label is just a label.
    """
    s = text.strip()
    if s in ("", "."):
        if root:
            return "."
        raise DnsTextError("an empty name")
    labels = name_to_labels(s)
    for lab in labels:
        if len(lab) > MAX_LABEL:
            raise DnsTextError(f"a label of {len(lab)} octets (at most {MAX_LABEL}) in {_show(text)}")
    wire = sum(len(lab) + 1 for lab in labels) + 1
    if wire > MAX_NAME_WIRE:
        raise DnsTextError(f"a name of {wire} octets on the wire (at most {MAX_NAME_WIRE}) in {_show(text)}")
    if wildcard and any(lab == b"*" for lab in labels[1:]):
        raise DnsTextError(f"a '*' label is a wildcard only as the leftmost label of a record name: {_show(text)}")
    return labels_to_name(labels)


def name_key(raw: str) -> str:
    """A name as a program spells it (dots separate labels, no escapes) → canonical presentation.

    SPF macro expansion and the engine build names from addresses; this maps
    them to the zone's keys without reading a backslash as an escape.
    """
    if _simple_name(raw):
        n = raw.lower()
        return n[:-1] if n.endswith(".") and n != "." else n
    if raw in ("", "."):
        return "."
    parts = raw.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    return labels_to_name(p.encode("utf-8", "surrogateescape") for p in parts)


def raw_name(labels: Sequence[bytes]) -> str:
    """Labels → the program spelling (``name_key``'s inverse for dot-free labels); ``"."`` for the root."""
    if not labels:
        return "."
    return ".".join(lab.lower().decode("utf-8", "surrogateescape") for lab in labels)


def presentation_to_raw(name: str) -> str:
    """A canonical presentation name → the program spelling (what resolvers hand to SPF)."""
    if "\\" not in name:
        return name
    return raw_name(name_to_labels(name))


def display(text: str) -> str:
    """Text that may hold raw control bytes (a sender typed on a command line, a raw label) made terminal-safe."""
    if text.isprintable():
        return text
    return bytes_to_text(text.encode("utf-8", "surrogateescape"))


def _show(text: str) -> str:
    shown = display(text)
    return "'" + (shown if len(shown) <= 60 else shown[:57] + "...") + "'"


# --- record values -------------------------------------------------------------------------


def parse_mx(value: str) -> tuple[int, str]:
    """``"10 mx.host"`` → ``(10, "mx.host")`` (host canonical; ``"."`` is RFC 7505's null MX)."""
    parts = value.split()
    if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit():
        raise ValueError(f"MX value must be 'PREFERENCE HOST', got {display(value)!r}")
    pref = int(parts[0])
    if pref > 65535:
        raise ValueError(f"MX preference must be 0..65535, got {pref}")
    try:
        host = canonical_name(parts[1], root=True)
    except DnsTextError as e:
        raise ValueError(f"MX host: {e}") from None
    return pref, host


def txt_strings(value: str | tuple[str, ...]) -> tuple[bytes, ...]:
    """The character-strings a TXT/SPF record holds on the wire, escapes decoded.

    A string longer than 255 octets cannot be one DNS character-string, so it is
    split into 255-octet pieces — what RFC 7208 §3.3 expects publishers to rely
    on (the pieces are re-joined). Both resolvers use this, so memory and wire
    return identical tuples.
    """
    items = value if isinstance(value, tuple) else (value,)
    out: list[bytes] = []
    for item in items:
        raw = text_to_bytes(item)
        if not raw:
            out.append(b"")
            continue
        for i in range(0, len(raw), MAX_STRING):
            out.append(raw[i : i + MAX_STRING])
    return tuple(out)


def check_record(rtype: str, value: str | tuple[str, ...]) -> str | None:
    """Why a record value is unusable, or None when it is fine.

    The loader reports it with a file position; the zone refuses the same
    values, so a record the loader accepts never fails in the middle of a run.
    """
    t = rtype.upper()
    if t not in DNS_RECORD_TYPES:
        return f"unsupported record type {rtype!r} (use one of {', '.join(DNS_RECORD_TYPES)})"
    if isinstance(value, tuple) or t in TXT_TYPES:
        if isinstance(value, tuple) and t not in TXT_TYPES:
            return f"only TXT and SPF records may hold several strings, not {t}"
        # the loader hands YAML values as they are (an int among the strings is a problem to report): looked at
        # as objects, or compiled code would refuse the int itself
        items: tuple[object, ...] = value if isinstance(value, tuple) else ()
        if not all(isinstance(v, str) for v in items):
            return "TXT strings must be text"
        try:
            strings = txt_strings(value)
        except DnsTextError as e:
            return str(e)
        size = sum(len(s) for s in strings)
        if size > MAX_RDATA:
            return f"a {t} value of {size:,} octets (at most {MAX_RDATA:,})"
        return None
    if t == "A":
        try:
            v = value.strip()
            if ipv4_text(v) is None:
                ipaddress.IPv4Address(v)
        except ValueError:
            return f"A value must be an IPv4 address, got {display(value)!r}"
    elif t == "AAAA":
        try:
            if "%" in value:
                raise ValueError(value)
            ipaddress.IPv6Address(value.strip())
        except ValueError:
            return f"AAAA value must be an IPv6 address, got {display(value)!r}"
    elif t == "MX":
        try:
            parse_mx(value)
        except ValueError as bad_mx:  # its own name: compiled, one name holds one exception type
            return str(bad_mx)
    elif t in NAME_VALUED_TYPES:
        try:
            canonical_name(value, root=True)
        except DnsTextError as e:
            return f"{t} value must be a DNS name: {e}"
    return None


def ipv4_text(value: str) -> str | None:
    """``value`` when it is an IPv4 address already in canonical dotted decimal (no leading zeros), else None.

    The zone checks, canonicalises and answers every A record, and ``ipaddress`` takes ≈2 µs a
    parse; records are nearly always written this way already, so this decides them without it
    (None: ask ``ipaddress``, which also says what is wrong).
    """
    parts = value.split(".")
    if len(parts) != 4:
        return None
    for p in parts:
        if not (0 < len(p) <= 3 and p.isascii() and p.isdigit()) or (p[0] == "0" and len(p) > 1) or int(p) > 255:
            return None
    return value


def canonical_value(rtype: str, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    """A checked record value in canonical presentation (addresses canonical, names lower-cased)."""
    t = rtype.upper()
    if isinstance(value, tuple):
        return tuple(canonical_text(v) for v in value)
    if t in TXT_TYPES:
        return canonical_text(value)
    if t in ("A", "AAAA"):
        v = value.strip()
        return (ipv4_text(v) if t == "A" else None) or str(ipaddress.ip_address(v))
    if t == "MX":
        pref, host = parse_mx(value)
        return f"{pref} {host}"
    if t in NAME_VALUED_TYPES:
        return canonical_name(value, root=True)
    return value
