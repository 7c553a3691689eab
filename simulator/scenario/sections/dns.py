"""``dns:`` — the zone the simulation resolves against — and the record values ``dns_set`` uses."""

from __future__ import annotations

import ipaddress

from simulator.domain.dns import DNS_RECORD_TYPES, Dns, DnsRecord, Unreachable, canonical_value, check_record
from simulator.scenario.convert import Pos, Reader, describe
from simulator.scenario.fields import JSON, REQUIRED, Field, Kind, Table, list_schema
from simulator.scenario.kinds import (
    BOOLEAN,
    COUNT,
    IPV4_PATTERN,
    IPV6_PATTERN,
    MX_HOST_BODY,
    OWNER_NAME,
    SPACE,
    TARGET_NAME,
    TXT_PATTERN,
    whole,
)
from simulator.scenario.limits import MAX_DNS_RECORDS, MAX_SMALL_LIST

_MX_PREFERENCE = "0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
MX_PATTERN = whole(f"{_MX_PREFERENCE}{SPACE}+(?:{MX_HOST_BODY})")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def type_pattern(rtype: str) -> str:
    """The record type as the loader reads it: any case, surrounding spaces stripped."""
    return whole(_any_case(rtype))


TYPE_PATTERN = whole("|".join(_any_case(t) for t in DNS_RECORD_TYPES))


def _value_schema(rtype: str) -> JSON:
    if rtype == "A":
        return {"type": "string", "pattern": IPV4_PATTERN}
    if rtype == "AAAA":
        return {"type": "string", "pattern": IPV6_PATTERN}
    if rtype == "MX":
        return {"type": "string", "pattern": MX_PATTERN}
    if rtype in ("TXT", "SPF"):
        text = {"type": "string", "pattern": TXT_PATTERN}
        return {"anyOf": [text, list_schema(text, MAX_SMALL_LIST, min_items=1)]}
    return dict(TARGET_NAME.schema)  # CNAME, PTR, NS


def record_value_rules() -> list[JSON]:
    """``if type is T then value is T's form``, one rule per record type (for the JSON Schema)."""
    return [
        {
            "if": {"properties": {"type": {"pattern": type_pattern(t)}}, "required": ["type"]},
            "then": {"properties": {"value": _value_schema(t)}},
        }
        for t in DNS_RECORD_TYPES
    ]


def dns_type(reader: Reader, value: object, pos: Pos, where: str) -> str:
    if isinstance(value, str):
        value = str(value).strip().upper()
    return reader.choice(value, pos, where, DNS_RECORD_TYPES, "record type")


def dns_value(reader: Reader, value: object, pos: Pos, where: str, rtype: str) -> str | tuple[str, ...]:
    """A record value of type ``rtype``, as the zone will serve it."""
    result = _dns_value(reader, value, pos, where, rtype)
    # the zone's own check, so a record the loader accepts never fails mid-run
    problem = check_record(rtype, result)
    if problem is not None:
        reader.fail(pos, f"{where}: {problem}")
    return canonical_value(rtype, result)


def _dns_value(reader: Reader, value: object, pos: Pos, where: str, rtype: str) -> str | tuple[str, ...]:
    if rtype == "A" or rtype == "AAAA":
        version = 4 if rtype == "A" else 6
        example = "192.0.2.25" if version == 4 else "2001:db8::25"
        try:
            if not isinstance(value, str):
                raise ValueError
            addr = ipaddress.ip_address(str(value).strip())
            if addr.version != version:
                raise ValueError
        except ValueError:
            reader.fail(
                pos,
                f"{where}: expected an IPv{version} address like {example} for "
                f"{'an' if rtype == 'A' else 'a'} {rtype} record, got {describe(value)}",
            )
        return str(addr)
    if rtype == "MX":
        parts = str(value).split() if isinstance(value, str) else []
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or int(parts[0]) > 65535:
            reader.fail(
                pos,
                f'{where}: expected an MX value like "10 mx.client.example" '
                f"(preference 0-65535, then host), got {describe(value)}",
            )
        host = reader.zone_target(parts[1], pos, where)
        return f"{int(parts[0])} {host}"
    if rtype == "TXT" or rtype == "SPF":
        if isinstance(value, str):
            return str(value)
        if isinstance(value, list):
            items = tuple(
                reader.string(v, p, w) for v, p, w in reader.seq(value, pos, where, "a list of strings", MAX_SMALL_LIST)
            )
            if not items:
                reader.fail(pos, f"{where}: expected a string or a non-empty list of strings")
            return items
        reader.fail(pos, f"{where}: expected a string or a list of strings for a {rtype} record, got {describe(value)}")
    return reader.zone_target(value, pos, where)  # CNAME, PTR, NS


def _no_value(reader: Reader, value: object, pos: Pos, where: str) -> str:  # pragma: no cover - schema only
    raise AssertionError("a record value is read by dns_value, which needs the record's type")


DNS_TYPE = Kind(dns_type, {"type": "string", "pattern": TYPE_PATTERN})
RECORD_VALUE = Kind(_no_value, {"type": ["string", "array"]})

RECORD_TABLE = Table(
    (
        Field("name", OWNER_NAME, "The owner name (may start with *.); lower-cased, trailing dot removed.", REQUIRED),
        Field("type", DNS_TYPE, f"The record type: {' '.join(DNS_RECORD_TYPES)} (any case).", REQUIRED),
        Field(
            "value",
            RECORD_VALUE,
            'A: an IPv4 address; AAAA: an IPv6 address; MX: "<preference> <host>"; TXT/SPF: a string or a '
            "list of strings; CNAME/PTR/NS: a DNS name.",
            REQUIRED,
        ),
        Field("ttl", COUNT, "Time to live, in seconds.", 300),
    )
)


def _records(reader: Reader, value: object, pos: Pos, where: str) -> tuple[DnsRecord, ...]:
    out = []
    for v, p, w in reader.seq(value, pos, where, "a list of {name, type, value, ttl}", MAX_DNS_RECORDS):
        entry = RECORD_TABLE.read(reader, v, p, w)
        name = entry["name"]
        rtype = entry["type"]
        rvalue = entry.view.req("value", lambda r, v, p, w, t=rtype: dns_value(r, v, p, w, t))  # type: ignore[misc]
        out.append(DnsRecord(name, rtype, rvalue, entry["ttl"]))
    return tuple(out)


UNREACHABLE_TABLE = Table(
    (
        Field("name", TARGET_NAME, "The name whose questions get no reply.", REQUIRED),
        Field(
            "types",
            Kind(
                lambda reader, value, pos, where: tuple(
                    dns_type(reader, v, p, w) for v, p, w in reader.seq(value, pos, where, "a list of types", 16)
                ),
                list_schema({"type": "string", "pattern": TYPE_PATTERN}, 16),
            ),
            "Only these query types time out; unset: every type.",
            (),
        ),
        Field("subdomains", BOOLEAN, "Every name below it times out too.", True),
    ),
    "A name whose server drops some or all questions.",
)


def _unreachable(reader: Reader, value: object, pos: Pos, where: str) -> str | Unreachable:
    """A name (it and all below time out) or {name, types, subdomains} for finer failures."""
    if not isinstance(value, dict):
        return reader.zone_target(value, pos, where)
    entry = UNREACHABLE_TABLE.read(reader, value, pos, where)
    return Unreachable(entry["name"], entry["types"], entry["subdomains"])


def _unreachable_list(reader: Reader, value: object, pos: Pos, where: str) -> tuple[str | Unreachable, ...]:
    items = reader.seq(value, pos, where, "a list of names", MAX_DNS_RECORDS)
    return tuple(_unreachable(reader, v, p, w) for v, p, w in items)


RECORDS = Kind(_records, list_schema(RECORD_TABLE.schema({"allOf": record_value_rules()}), MAX_DNS_RECORDS))
UNREACHABLE = Kind(
    _unreachable_list,
    list_schema({"anyOf": [dict(TARGET_NAME.schema), UNREACHABLE_TABLE.schema()]}, MAX_DNS_RECORDS),
)

DNS_TABLE = Table(
    (
        Field("records", RECORDS, "The zone's records.", ()),
        Field(
            "unreachable",
            UNREACHABLE,
            "Names whose queries time out (SPF temperror): a name, or {name, types, subdomains}.",
            (),
        ),
    ),
    "The DNS zone the simulation resolves against.",
)


def _dns(reader: Reader, value: object, pos: Pos, where: str) -> Dns:
    entry = DNS_TABLE.read(reader, value, pos, where)
    records = entry["records"]
    entries = entry["unreachable"]
    names = tuple(e for e in entries if isinstance(e, str))
    return Dns(records, names, tuple(e for e in entries if isinstance(e, Unreachable)))


DNS = Kind(_dns, DNS_TABLE.schema())
