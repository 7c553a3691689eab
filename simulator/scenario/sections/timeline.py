"""``timeline:`` — changes at given times, one event per entry (DESIGN §3).

Each event kind's arguments are a key table (or, for ``<kind>: <id>`` events, one reference
kind) in EVENT_ARGUMENTS; the entry's ``at`` and ``note`` are the ENTRY_TABLE's.
"""

from __future__ import annotations

from typing import Any

from simulator.domain.events import EVENT_KINDS, USER_EVENT_KINDS, Event, make_event
from simulator.scenario.convert import Pos, Reader, describe
from simulator.scenario.fields import JSON, REQUIRED, Field, Kind, Table, list_schema
from simulator.scenario.kinds import (
    ADDRESS,
    BATCH_REF,
    BOOLEAN,
    BRANCH_REF,
    CONTACT_REF,
    ID,
    OWNER_NAME,
    POSITIVE_DURATION,
    PROPERTY_REF,
    PROVIDER_NAME,
    REGION_REF,
    STRING,
    TEXT,
    TIME_NOT_BEFORE_START,
    USER_REF,
)
from simulator.scenario.limits import MAX_TIMELINE_EVENTS
from simulator.scenario.sections.dns import DNS_TYPE, RECORD_VALUE, dns_value, record_value_rules

_TARGETS = ("branch", "region", "configuration")

#: The arguments of each event kind: a reference (``login: u1``) or a table of keys.
EVENT_ARGUMENTS: dict[str, Kind[Any] | Table] = {
    "complete_batch": BATCH_REF,
    **{kind: USER_REF for kind in USER_EVENT_KINDS},
    "set_contact_email": Table(
        (
            Field("contact", CONTACT_REF, "The contact whose address changes.", REQUIRED),
            Field("email", STRING, "The new address, as written; refused if another contact has it.", REQUIRED),
        )
    ),
    "set_contact_active": Table(
        (
            Field("contact", CONTACT_REF, "The contact.", REQUIRED),
            Field("active", BOOLEAN, "Whether it is active from now on.", REQUIRED),
        )
    ),
    "set_property_contact": Table(
        (
            Field("property", PROPERTY_REF, "The property.", REQUIRED),
            Field("contact", CONTACT_REF, "The contact on it (added if not yet there).", REQUIRED),
            Field("email_invoice", BOOLEAN, '"Email Invoice"; absent: unchanged.'),
            Field("primary", BOOLEAN, "Primary contact; absent: unchanged."),
            Field("billing", BOOLEAN, "Billing contact; absent: unchanged."),
        )
    ),
    "set_invoicing_email_from": Table(
        (
            Field("branch", BRANCH_REF, "Set the branch's Invoicing Email From (or region:, or configuration: true)."),
            Field("region", REGION_REF, "Set the region's Invoicing Email From."),
            Field("configuration", BOOLEAN, "true: set Configuration's Invoice Email From."),
            Field("email", ADDRESS, "The sender address; absent or null: unset."),
        )
    ),
    "set_sync": Table(
        (
            Field("user", USER_REF, "The user (synced at the event's time).", REQUIRED),
            Field("provider", PROVIDER_NAME, "The sync provider.", REQUIRED),
        )
    ),
    "dns_set": Table(
        (
            Field("name", OWNER_NAME, "The owner name.", REQUIRED),
            Field("type", DNS_TYPE, "The record type.", REQUIRED),
            Field("value", RECORD_VALUE, "The record's value (as in dns:); replaces that name+type.", REQUIRED),
        )
    ),
    "set_token_lifetime": Table(
        (
            Field(
                "lifetime", POSITIVE_DURATION, "The tenant's new token lifetime; every expiry is rescheduled.", REQUIRED
            ),
        )
    ),
    "dns_delete": Table(
        (
            Field("name", OWNER_NAME, "The owner name.", REQUIRED),
            Field("type", DNS_TYPE, "The record type.", REQUIRED),
        )
    ),
}
assert set(EVENT_ARGUMENTS) == set(EVENT_KINDS), "every event kind needs its arguments here"

ENTRY_TABLE = Table(
    (
        Field("at", TIME_NOT_BEFORE_START, "When the event happens (not before start).", REQUIRED),
        Field("note", TEXT, "A trainer's caption shown when the playhead reaches it; ignored by the rules."),
    )
)


def _set_invoicing_email_from(reader: Reader, table: Table, value: object, pos: Pos, where: str) -> dict[str, Any]:
    entry = table.read(reader, value, pos, where)
    targets = [k for k in _TARGETS if k in entry.data]
    if len(targets) != 1:
        at = entry.pos if not targets else entry.kpos(targets[1])
        reader.fail(
            at,
            f"{where}: needs exactly one of branch:, region:, configuration: true"
            + (f"; got {', '.join(targets)}" if targets else ""),
        )
    args: dict[str, Any] = {"email": entry["email"]}
    target = targets[0]
    if target == "configuration":
        if not entry.view.req("configuration", BOOLEAN):
            reader.fail(
                entry.vpos("configuration"),
                f"{entry.sub('configuration')}: must be true (or name a branch: or region: instead)",
            )
        args["configuration"] = True
    else:
        args[target] = entry.view.req(target, table.by_key[target].kind)
    return args


def event_arguments(reader: Reader, kind: str, value: object, pos: Pos, where: str) -> dict[str, Any]:
    """The keyword arguments of :func:`make_event` for one entry's ``<kind>: value``."""
    if value is None:
        reader.fail(pos, f"{where}: a value is required, got null")
    spec = EVENT_ARGUMENTS[kind]
    if isinstance(spec, Kind):
        if kind in USER_EVENT_KINDS:
            if isinstance(value, dict):
                reader.fail(pos, f"{where}: expected a user id, e.g. {kind}: u1; got {describe(value)}")
            return {"user": spec(reader, value, pos, where)}
        return {"batch": spec(reader, value, pos, where)}
    if kind == "set_invoicing_email_from":
        return _set_invoicing_email_from(reader, spec, value, pos, where)
    entry = spec.read(reader, value, pos, where)
    if kind == "dns_set":
        name, rtype = entry["name"], entry["type"]
        rvalue = entry.view.req("value", lambda r, v, p, w: dns_value(r, v, p, w, rtype))
        return {"name": name, "type": rtype, "value": rvalue}
    return {key: entry[key] for key in spec.keys}


def _timeline(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Event, ...]:
    out = []
    items = reader.seq(
        value, pos, where, "a list of {at, <event>: ...}", MAX_TIMELINE_EVENTS, "split the run into several scenarios"
    )
    for i, (v, p, w) in enumerate(items):
        view = reader.map(v, p, w, "an entry {at: TIME, <event>: ...}")
        view.check_keys((*ENTRY_TABLE.keys, *EVENT_KINDS), f"{w} (an event)")
        kinds = [k for k in view.data if k not in ENTRY_TABLE.by_key]
        if not kinds:
            reader.fail(view.pos, f"{w}: needs one event key ({', '.join(EVENT_KINDS)})")
        if len(kinds) > 1:
            reader.fail(view.kpos(kinds[1]), f"{w}: one event per entry, got {kinds[0]!r} and {kinds[1]!r}")
        kind = str(kinds[0])
        at = view.req("at", ENTRY_TABLE.by_key["at"].kind)
        args = event_arguments(reader, kind, view.raw(kind), view.vpos(kind), view.sub(kind))
        note = view.opt("note", ENTRY_TABLE.by_key["note"].kind)
        out.append(make_event(kind, at=at, index=i, loc=reader.loc(view.pos), note=note, **args))
    return tuple(out)


def _arguments_schema(kind: str) -> JSON:
    spec = EVENT_ARGUMENTS[kind]
    if isinstance(spec, Kind):
        return dict(spec.schema)
    out = spec.schema()
    if kind == "set_invoicing_email_from":
        props = out["properties"]
        props["branch"] = dict(ID.schema, description=props["branch"]["description"])
        props["region"] = dict(ID.schema, description=props["region"]["description"])
        props["configuration"] = {"const": True, "description": props["configuration"]["description"]}
        out["oneOf"] = [{"required": [target]} for target in _TARGETS]
    if kind == "dns_set":
        out["allOf"] = record_value_rules()
    return out


def _entry_schema() -> JSON:
    out = ENTRY_TABLE.schema()
    for kind in EVENT_KINDS:
        out["properties"][kind] = _arguments_schema(kind) | {"description": _event_description(kind)}
    out["oneOf"] = [{"required": [kind]} for kind in EVENT_KINDS]
    return out


def _event_description(kind: str) -> str:
    spec = EVENT_ARGUMENTS[kind]
    if isinstance(spec, Kind):
        what = "a user id" if kind in USER_EVENT_KINDS else "a batch id"
        return f"{kind}: {what}."
    return f"{kind}: {{{', '.join(f.key for f in spec.fields)}}}."


TIMELINE = Kind(_timeline, list_schema(_entry_schema(), MAX_TIMELINE_EVENTS))
