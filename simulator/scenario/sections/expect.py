"""``expect:`` — what ``mailsim run`` checks, in five shapes told apart by their leading key."""

from __future__ import annotations

from typing import Any

from simulator.domain.vocabulary import BATCH_STATUSES, EMAIL_STATUSES, REASON_CODES, RECIPIENT_OUTCOMES
from simulator.scenario.convert import Pos, Reader, describe, plain
from simulator.scenario.fields import JSON, REQUIRED, Entry, Field, Kind, Table, list_schema
from simulator.scenario.kinds import ADDRESS, COUNT, TIME_OR_END, choice
from simulator.scenario.limits import MAX_EXPECTATIONS
from simulator.scenario.model import Expectation
from simulator.scenario.sections.batches import INVOICE_REF

EMAIL_STATUS = choice(EMAIL_STATUSES, "email status")
BATCH_STATUS = choice(BATCH_STATUSES, "batch status")
OUTCOME = choice(RECIPIENT_OUTCOMES, "outcome")
REASON = choice(REASON_CODES, "reason code")

MATCH_TABLE = Table(
    (
        Field("email_status", EMAIL_STATUS, "The invoice's email status."),
        Field("batch_status", BATCH_STATUS, "Its batch's status."),
        Field("outcome", OUTCOME, "The recipient's outcome (needs recipient:)."),
        Field("reason", REASON, "The reason code."),
    )
)


def _match(reader: Reader, value: object, pos: Pos, where: str) -> tuple[tuple[str, str], ...]:
    entry = MATCH_TABLE.read(reader, value, pos, where, "a mapping like {email_status: In Queue}")
    out = tuple((str(k), entry.view.req(str(k), MATCH_TABLE.by_key[str(k)].kind)) for k in entry.data)
    if not out:
        reader.fail(pos, f"{where}: needs one of {', '.join(MATCH_TABLE.keys)}")
    return out


MATCH = Kind(_match, MATCH_TABLE.schema({"minProperties": 1}))


def _mailbox_address(reader: Reader, value: object, pos: Pos, where: str) -> str:
    mailbox = reader.address(value, pos, where)
    if "@" not in mailbox:
        reader.fail(pos, f"{where}: expected an email address, got {describe(mailbox)}")
    return mailbox


MAILBOX_ADDRESS = Kind(_mailbox_address, {"type": "string", "pattern": "@"})
_AT = Field("at", TIME_OR_END, "When it is checked: a time or end; unset: the end of the run.")

#: The shapes in the order their leading key decides (DESIGN §3); each lists the keys it allows.
SHAPES: dict[str, Table] = {
    "count": Table(
        (
            Field("count", MATCH, "What to count, e.g. {email_status: In Queue}.", REQUIRED),
            Field("equals", COUNT, "How many invoices (or recipients, with outcome:) must match.", REQUIRED),
            _AT,
        ),
        "Count the invoices (or recipients) that match.",
    ),
    "mailbox": Table(
        (
            Field("mailbox", MAILBOX_ADDRESS, "The mailbox's address.", REQUIRED),
            Field("bounces", COUNT, "Delivery status notifications in it."),
            Field("inbox", COUNT, "Messages in its inbox."),
            Field("junk", COUNT, "Messages in its junk folder."),
            _AT,
        ),
        "Message counts in one mailbox.",
    ),
    "never": Table(
        (
            Field("invoice", INVOICE_REF, "The invoice.", REQUIRED),
            Field("recipient", ADDRESS, "One of its recipients (needed for outcome:)."),
            Field("never", MATCH, "A state that must never hold.", REQUIRED),
            Field("until", TIME_OR_END, "Checked up to this time; unset: the end of the run."),
        ),
        "A state the invoice (or recipient) never reaches before until.",
    ),
    "recipient": Table(
        (
            Field("invoice", INVOICE_REF, "The invoice.", REQUIRED),
            Field("recipient", ADDRESS, "The recipient's address (its presence decides this shape)."),
            Field("outcome", OUTCOME, "The outcome reached."),
            Field("reason", REASON, "The reason code."),
            Field("within", TIME_OR_END, "Reached by this time (or give at:)."),
            _AT,
        ),
        "A recipient's outcome or reason by a time.",
    ),
    "invoice": Table(
        (
            Field("invoice", INVOICE_REF, "The invoice.", REQUIRED),
            Field("email_status", EMAIL_STATUS, "Its email status."),
            Field("batch_status", BATCH_STATUS, "Its batch's status."),
            Field("reason", REASON, "The reason code that decides its status."),
            _AT,
        ),
        "An invoice's state at a time.",
    ),
}
ALL_KEYS = tuple(dict.fromkeys(key for table in SHAPES.values() for key in table.keys))


def _shape_of(view_data: dict[Any, Any]) -> str | None:
    return next((shape for shape in SHAPES if shape in view_data), None)


def _expectation(reader: Reader, index: int, value: object, pos: Pos, where: str) -> Expectation:
    view = reader.map(value, pos, where, "an expectation mapping")
    view.check_keys(ALL_KEYS, f"{where} (an expectation)")
    shape = _shape_of(view.data)
    if shape is None:
        reader.fail(view.pos, f"{where}: an expectation needs invoice:, mailbox: or count:")
    table = SHAPES[shape]
    for key in view.data:
        if key not in table.by_key:
            owner = next(s for s in SHAPES if key in SHAPES[s].by_key)
            reader.fail(
                view.kpos(key),
                f"{where}: {key!r} does not go with {shape}: "
                f"(allowed: {', '.join(table.keys)}; {key!r} belongs with {owner}:)",
            )
    entry = Entry(view, table)
    fields: dict[str, Any] = {}
    if shape == "count":
        fields.update(count=entry["count"], equals=entry["equals"], at=entry["at"])
    elif shape == "mailbox":
        fields["mailbox"] = entry["mailbox"]
        for key in ("bounces", "inbox", "junk"):
            fields[key] = entry[key]
        if all(fields[k] is None for k in ("bounces", "inbox", "junk")):
            reader.fail(view.pos, f"{where}: a mailbox expectation needs bounces:, inbox: or junk:")
        fields["at"] = entry["at"]
    else:
        fields["invoice"] = entry["invoice"]
        fields["recipient"] = view.opt("recipient", ADDRESS)
        if shape == "never":
            fields["never"] = entry["never"]
            if any(k == "outcome" for k, _ in fields["never"]) and fields["recipient"] is None:
                reader.fail(view.kpos("never"), f"{view.sub('never')}: outcome needs recipient:")
            fields["until"] = entry["until"]
        elif shape == "recipient":
            fields["outcome"] = entry["outcome"]
            fields["reason"] = entry["reason"]
            if fields["outcome"] is None and fields["reason"] is None:
                reader.fail(view.pos, f"{where}: a recipient expectation needs outcome: or reason:")
            if view.has("within") and view.has("at"):
                reader.fail(view.kpos("at"), f"{where}: give within: or at:, not both")
            fields["within"] = entry["within"]
            fields["at"] = entry["at"]
        else:
            for key in ("email_status", "batch_status", "reason"):
                fields[key] = entry[key]
            if all(fields[k] is None for k in ("email_status", "batch_status", "reason")):
                reader.fail(view.pos, f"{where}: an invoice expectation needs email_status:, batch_status: or reason:")
            fields["at"] = entry["at"]
    return Expectation(index=index, text=_render(view.data), loc=reader.loc(view.pos), **fields)


def _expectations(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Expectation, ...]:
    items = reader.seq(
        value, pos, where, "a list of expectations", MAX_EXPECTATIONS, "a count: expectation covers many invoices"
    )
    return tuple(_expectation(reader, i, v, p, w) for i, (v, p, w) in enumerate(items))


def _render_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(plain(value))


def _render(data: dict[Any, Any]) -> str:
    """An expect: entry on one line, as written: ``INV-1 email_status=In Queue at +2h``."""
    parts: list[str] = []
    for key, value in data.items():
        if key == "invoice":
            parts.append(_render_scalar(value))
        elif key == "mailbox":
            parts.append(f"mailbox {_render_scalar(value)}")
        elif key in ("at", "within", "until"):
            parts.append(f"{key} {_render_scalar(value)}")
        elif isinstance(value, dict):
            inner = " ".join(f"{k}={_render_scalar(v)}" for k, v in value.items())
            parts.append(f"{key} {inner}")
        else:
            parts.append(f"{key}={_render_scalar(value)}")
    return " ".join(parts)


def _shape_schema(shape: str) -> JSON:
    table = SHAPES[shape]
    out = table.schema()
    # the leading keys of the shapes before this one must be absent (they would decide the shape)
    earlier = list(SHAPES)[: list(SHAPES).index(shape)]
    absent = [key for key in earlier if key in table.by_key]
    assert not absent, absent
    needs = {
        "mailbox": ["bounces", "inbox", "junk"],
        "recipient": ["outcome", "reason"],
        "invoice": ["email_status", "batch_status", "reason"],
    }.get(shape)
    if needs:
        out["anyOf"] = [{"required": [key], "properties": {key: {"not": {"type": "null"}}}} for key in needs]
    if shape == "recipient":
        out["required"] = [*out["required"], "recipient"]
        out["not"] = {
            "required": ["within", "at"],
            "properties": {"within": {"not": {"type": "null"}}, "at": {"not": {"type": "null"}}},
        }
    if shape == "never":
        out["if"] = {"properties": {"never": {"required": ["outcome"]}}, "required": ["never"]}
        out["then"] = {"required": ["recipient"], "properties": {"recipient": {"not": {"type": "null"}}}}
    return out


EXPECT = Kind(
    _expectations,
    list_schema({"anyOf": [_shape_schema(shape) for shape in SHAPES], "type": "object"}, MAX_EXPECTATIONS),
)
