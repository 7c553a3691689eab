"""The kinds of scalar values a scenario holds: each one converter and its JSON Schema fragment.

The patterns are built from the same pieces as the parsers (:mod:`simulator.scenario.times`,
the id and DNS-label rules of :mod:`simulator.scenario.convert`), and tests/test_schema.py
checks that each accepts exactly the strings its converter accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulator.scenario import times
from simulator.scenario.convert import ID_RE, MAX_ID_LENGTH, MAX_SMALL_INT, Pos, Reader
from simulator.scenario.fields import SLOW, Kind, enum_schema, list_schema
from simulator.scenario.limits import MAX_SMALL_LIST

SPACE = f"[{times.SPACE_CLASS}]"


def whole(body: str) -> str:
    """An anchored pattern for ``body`` with the surrounding spaces the converters strip."""
    return f"^{SPACE}*(?:{body}){SPACE}*{times.END}"


# --- ids, strings ---------------------------------------------------------------------------

ID_PATTERN = f"^[^{times.SPACE_CLASS}\\u0000-\\u001f\\u007f-\\u009f]+{times.END}"
NON_EMPTY_PATTERN = f"[^{times.SPACE_CLASS}]"

_IPV4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = (
    "(?:"
    + "|".join(
        (
            f"(?:{_H16}:){{6}}{_LS32}",
            f"::(?:{_H16}:){{5}}{_LS32}",
            f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        )
    )
    + ")"
)
IPV4_PATTERN = whole(_IPV4)
IPV6_PATTERN = whole(_IPV6)
#: Python's ``ipaddress`` also reads an IPv6 scope (``fe80::1%eth0``); DNS records do not.
IP_PATTERN = whole(f"{_IPV4}|{_IPV6}(?:%[^%/]*[^%/{times.SPACE_CLASS}])?")

# DNS names as the loader reads them: case-insensitive, an optional final dot, <= 253 characters
_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = f"(?=[A-Za-z0-9_.*-]{{1,253}}\\.?{SPACE}*{times.END})(?:{_LABEL}\\.)*{_LABEL}\\.?"
DNS_NAME_BODY = _NAME
DNS_NAME_PATTERN = whole(DNS_NAME_BODY)

# Names inside dns: (DESIGN §8): any label characters, with the zone-file escapes \DDD (000-255)
# and \X; an empty label is an error. Label and name lengths (63 and 255 octets) are the loader's.
_ESCAPE = "\\\\(?:[01][0-9]{2}|2[0-4][0-9]|25[0-5]|[^0-9])"
_ZONE_LABEL = f"(?:[^.\\\\]|{_ESCAPE})+"
_STAR_LABEL = f"(?:\\*|\\\\\\*|\\\\042)(?:\\.|{SPACE}*{times.END})"
#: A record's owner name: a '*' label only leftmost (the wildcard); not the root.
# strip() comes first: a name neither starts nor ends with a space (nor with an escaped one)
_STRIPPED, _STRIPPED_END = f"(?=[^{times.SPACE_CLASS}])", f"(?<=[^{times.SPACE_CLASS}])"
OWNER_NAME_PATTERN = whole(
    f"{_STRIPPED}{_ZONE_LABEL}(?:\\.(?!{_STAR_LABEL}){_ZONE_LABEL})*\\.?{_STRIPPED_END}"
)
#: A name a record points at: any labels, or the root ('.', or nothing at all).
TARGET_NAME_BODY = f"(?:{_STRIPPED}(?:{_ZONE_LABEL}(?:\\.{_ZONE_LABEL})*\\.?|\\.){_STRIPPED_END})?"
TARGET_NAME_PATTERN = whole(TARGET_NAME_BODY)
#: A TXT character-string as written: any characters, backslashes only in escapes.
TXT_PATTERN = f"^(?:[^\\\\]|{_ESCAPE})*{times.END}"
#: An MX host: as a target, but split on spaces first (so no unescaped or escaped space in it).
_MX_ESCAPE = f"\\\\(?:[01][0-9]{{2}}|2[0-4][0-9]|25[0-5]|[^0-9{times.SPACE_CLASS}])"
_MX_LABEL = f"(?:[^.\\\\{times.SPACE_CLASS}]|{_MX_ESCAPE})+"
MX_HOST_BODY = f"{_MX_LABEL}(?:\\.{_MX_LABEL})*\\.?|\\."


def _string(pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern, **extra}


# --- quick paths (fields.Kind.quick): plainly valid values without a position or a path -------
# Each accepts only values its converter returns unchanged without a message (plain str, bool);
# anything else is SLOW and goes through the converter. Only the kinds of the tables the sections
# read row by row on a quick path (contacts, properties, property contacts) have one.


def _quick_string(reader: Reader, value: object) -> object:
    return value if type(value) is str else SLOW


def quick_ident(reader: Reader, value: object) -> object:
    """An id as :meth:`Reader.ident` returns it when it is plainly valid, else SLOW."""
    if type(value) is str and len(value) <= MAX_ID_LENGTH and ID_RE.fullmatch(value):
        return value
    return SLOW


def _quick_boolean(reader: Reader, value: object) -> object:
    return value if type(value) is bool else SLOW


# a reference to an id already defined: every defined id passed Reader.ident (the tables' keys are str)


def _quick_branch_ref(reader: Reader, value: object) -> object:
    return value if type(value) is str and value in reader.ids.branches else SLOW


def _quick_contact_ref(reader: Reader, value: object) -> object:
    return value if type(value) is str and value in reader.ids.contacts else SLOW


STRING = Kind(Reader.string, {"type": "string"}, quick=_quick_string)
TEXT = Kind(Reader.text, _string(NON_EMPTY_PATTERN))
ADDRESS = Kind(Reader.address, _string(NON_EMPTY_PATTERN))
ID = Kind(Reader.ident, _string(ID_PATTERN, minLength=1, maxLength=MAX_ID_LENGTH), quick=quick_ident)
BOOLEAN = Kind(Reader.boolean, {"type": "boolean"}, quick=_quick_boolean)
COUNT = Kind(Reader.count_int, {"type": "integer", "minimum": 0, "maximum": MAX_SMALL_INT})
AMOUNT = Kind(Reader.amount, {"type": "number", "minimum": -1e15, "maximum": 1e15})
PROBABILITY = Kind(Reader.probability, {"type": "number", "minimum": 0, "maximum": 1})

DURATION = Kind(
    Reader.duration,
    {"anyOf": [_string(times.DURATION_PATTERN), {"type": "integer", "const": 0}]},
    times.format_duration,
)
POSITIVE_DURATION = Kind(Reader.positive_duration, _string(times.POSITIVE_DURATION_PATTERN), times.format_duration)
TIME = Kind(Reader.time, _string(times.TIME_PATTERN))
TIME_NOT_BEFORE_START = Kind(Reader.time_not_before_start, _string(times.TIME_NOT_BEFORE_START_PATTERN))
INITIAL_TIME = Kind(Reader.initial_time, _string(times.INITIAL_TIME_PATTERN))
TIME_OR_END = Kind(Reader.time_or_end, _string(times.TIME_OR_END_PATTERN))

IP = Kind(Reader.ip, _string(IP_PATTERN))
IP_LIST = Kind(Reader.ip_list, list_schema(_string(IP_PATTERN), MAX_SMALL_LIST))
DNS_NAME = Kind(Reader.dns_name, _string(DNS_NAME_PATTERN))
OWNER_NAME = Kind(Reader.wildcard_name, _string(OWNER_NAME_PATTERN))
TARGET_NAME = Kind(Reader.zone_target, _string(TARGET_NAME_PATTERN))

PROVIDER_NAME = Kind(Reader.provider_name, ID.schema)
REGION_REF = Kind(Reader.region_ref, ID.schema)
BRANCH_REF = Kind(Reader.branch_ref, ID.schema, quick=_quick_branch_ref)
USER_REF = Kind(Reader.user_ref, ID.schema)
CONTACT_REF = Kind(Reader.contact_ref, ID.schema, quick=_quick_contact_ref)
PROPERTY_REF = Kind(Reader.property_ref, ID.schema)
BATCH_REF = Kind(Reader.batch_ref, ID.schema)


def choice(options: Sequence[str], what: str) -> Kind[str]:
    """One of ``options`` (a closed vocabulary); ``what`` names it in messages."""

    def convert(reader: Reader, value: object, pos: Pos, where: str) -> str:
        return reader.choice(value, pos, where, options, what)

    return Kind(convert, enum_schema(options))


def integer(lo: int, hi: int = MAX_SMALL_INT) -> Kind[int]:
    """A whole number from ``lo`` to ``hi``."""

    def convert(reader: Reader, value: object, pos: Pos, where: str) -> int:
        return reader.integer(value, pos, where, lo, hi)

    def quick(reader: Reader, value: object) -> object:
        return value if type(value) is int and lo <= value <= hi else SLOW  # not a bool, not TooLarge

    return Kind(convert, {"type": "integer", "minimum": lo, "maximum": hi}, quick=quick)
