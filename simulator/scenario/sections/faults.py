"""``faults:`` — injected failures of the recipients' servers and of DNS."""

from __future__ import annotations

from simulator.domain.faults import DNS_FAULT_KINDS, FAULT_KINDS, SMTP_STAGES, Fault
from simulator.scenario.convert import Pos, Reader
from simulator.scenario.fields import JSON, REQUIRED, Field, Kind, Table, list_schema
from simulator.scenario.kinds import DNS_NAME, DURATION, PROBABILITY, TEXT, TIME, choice
from simulator.scenario.limits import MAX_FAULTS

FAULT_TABLE = Table(
    (
        Field("kind", choice(FAULT_KINDS, "fault kind"), "What goes wrong.", REQUIRED),
        Field("at", TIME, "When the fault begins; unset: from the start."),
        Field("for", DURATION, "How long it lasts; unset: until the end."),
        Field(
            "stage", choice(SMTP_STAGES, "stage"), "The SMTP stage it hits (SMTP faults only); unset: the kind's own."
        ),
        Field("probability", PROBABILITY, "Chance per attempt, drawn from the seed.", 1.0),
        Field("target", DNS_NAME, "Recipient domain (SMTP faults) or DNS name; unset: everything."),
        Field("delay", DURATION, "kind: slow only: added before the stage's reply.", 0),
        Field("note", TEXT, "A trainer's caption shown when the playhead reaches it; ignored by the rules."),
    ),
    "An injected failure.",
)


def _faults(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Fault, ...]:
    out = []
    items = reader.seq(
        value,
        pos,
        where,
        "a list of faults",
        MAX_FAULTS,
        "a fault without target: applies to every domain; probability: picks a share of the messages",
    )
    for i, (v, p, w) in enumerate(items):
        entry = FAULT_TABLE.read(reader, v, p, w, keys_what=f"{w} (a fault)")
        kind = entry["kind"]
        stage = entry["stage"]
        if stage is not None and kind in DNS_FAULT_KINDS:
            reader.fail(
                entry.kpos("stage"), f"{entry.sub('stage')}: {kind} is a DNS fault; stage applies to SMTP faults"
            )
        delay = entry["delay"]
        if entry.has("delay") and kind != "slow":
            reader.fail(entry.kpos("delay"), f"{entry.sub('delay')}: delay applies only to kind: slow")
        out.append(
            Fault(
                index=i,
                kind=kind,
                at=entry["at"],
                for_=entry["for"],
                stage=stage,
                probability=entry["probability"],
                target=entry["target"],
                delay=delay,
                loc=reader.loc(entry.pos),
                note=entry["note"],
            )
        )
    return tuple(out)


def _fault_schema() -> JSON:
    dns_kinds = sorted(DNS_FAULT_KINDS)
    return FAULT_TABLE.schema(
        {
            "allOf": [
                {
                    "if": {"properties": {"kind": {"enum": dns_kinds}}, "required": ["kind"]},
                    "then": {"properties": {"stage": {"type": "null"}}},
                },
                {
                    "if": {"properties": {"kind": {"not": {"const": "slow"}}}, "required": ["kind"]},
                    "then": {"properties": {"delay": {"type": "null"}}},
                },
            ]
        }
    )


FAULTS = Kind(_faults, list_schema(_fault_schema(), MAX_FAULTS))
