"""``batches:`` — invoice batches, written out or compact — and references to their invoices.

Compact batches (``invoices: {count, properties}``) are never expanded: uniqueness of invoice
ids and references to them (from ``expect:``) are checked arithmetically by :class:`InvoiceIds`.
"""

from __future__ import annotations

from simulator.domain.entities import Batch, CompactInvoices, Invoice
from simulator.scenario import fields
from simulator.scenario.convert import CompactBatch, Pos, Reader, describe, value_pos
from simulator.scenario.errors import did_you_mean
from simulator.scenario.fields import REQUIRED, SLOW, Field, Kind, Table, list_schema
from simulator.scenario.kinds import AMOUNT, ID, PROPERTY_REF, integer, quick_ident
from simulator.scenario.limits import MAX_ENTITIES, MAX_EXPLICIT_INVOICES, MAX_LIST_ITEMS, MAX_TOTAL_INVOICES
from simulator.scenario.yamltree import YMap, YSeq

MAX_COMPACT_COUNT = 1_000_000_000
_INSTEAD = "use the compact form, invoices: {count: N, properties: [...]}"


def _add_invoices(reader: Reader, n: int, pos: Pos, where: str) -> None:
    """Count invoices against the total cap, failing at the count or invoice that crosses it."""
    ids = reader.invoices
    ids.total += n
    if ids.total > MAX_TOTAL_INVOICES:
        reader.fail(
            pos,
            f"{where}: this makes {ids.total:,} invoices across all batches; at most "
            f"{MAX_TOTAL_INVOICES:,} fit in one run (the engine keeps ~420 bytes per email); "
            "split the batches over several scenarios",
        )


def _quick_property_list(reader: Reader, value: object) -> object:
    """The ids when every one is defined already, else SLOW."""
    if type(value) is not YSeq or len(value) > MAX_ENTITIES:
        return SLOW
    known = reader.ids.properties
    for v in value:
        if type(v) is not str or v not in known:
            return SLOW
    return tuple(value)


def _property_list(reader: Reader, value: object, pos: Pos, where: str) -> tuple[str, ...]:
    items = reader.items(value, pos, where, "a list of property ids", MAX_ENTITIES)
    # a defined id is returned as is; anything else gets its position and path for the message
    known = reader.ids.properties if fields.QUICK_PATHS else {}
    return tuple(
        v if type(v) is str and v in known else reader.property_ref(v, reader.item_pos(items, i, pos), f"{where}[{i}]")
        for i, v in enumerate(items)
    )


COMPACT_TABLE = Table(
    (
        Field(
            "count",
            integer(1, MAX_COMPACT_COUNT),
            "Number of invoices; ids <batch>-000001 … zero-padded to the digits of count (at most 5,000,000 "
            "across all batches).",
            REQUIRED,
        ),
        Field(
            "properties",
            Kind(
                _property_list,
                list_schema(PROPERTY_REF.schema, MAX_ENTITIES, min_items=1),
                quick=_quick_property_list,
            ),
            "Property ids, assigned to the invoices round-robin in this order.",
            REQUIRED,
        ),
    ),
    "The compact form for large runs: count invoices over these properties.",
)


def _compact(reader: Reader, batch: str, value: object, pos: Pos, where: str) -> CompactInvoices:
    entry = COMPACT_TABLE.read(reader, value, pos, where, keys_what=f"{where} (compact form)")
    count = entry["count"]
    properties = entry["properties"]
    if not properties:
        reader.fail(entry.vpos("properties"), f"{entry.sub('properties')}: needs at least one property")
    _add_invoices(reader, count, entry.vpos("count"), entry.sub("count"))
    reader.invoices.compact[batch] = CompactBatch(batch, count, len(str(count)))
    return CompactInvoices(count, properties)


INVOICE_TABLE = Table(
    (
        Field("id", ID, "The invoice's id, unique across all batches.", REQUIRED),
        Field("property", PROPERTY_REF, "The property invoiced.", REQUIRED),
        Field("amount", AMOUNT, "The invoice's amount (shown, not used by the rules)."),
    )
)


def _invoices(reader: Reader, batch: str, value: object, pos: Pos, where: str) -> tuple[Invoice, ...]:
    ids = reader.invoices
    out = []
    for v, p, w in reader.seq(value, pos, where, "a list of invoices", MAX_LIST_ITEMS, _INSTEAD):
        entry = INVOICE_TABLE.read(reader, v, p, w, "an invoice {id, property, amount}")
        ident = entry["id"]
        first = ids.explicit.get(ident)
        if first is not None:
            reader.fail(
                entry.vpos("id"),
                f"duplicate invoice id {ident!r} (first in batch {first[0]!r} at line {first[1].line})",
            )
        ids.explicit[ident] = (batch, entry.vpos("id"))
        ids.written_out += 1
        if ids.written_out > MAX_EXPLICIT_INVOICES:
            reader.fail(
                p,
                f"{w}: more than {MAX_EXPLICIT_INVOICES:,} invoices written out one by one across all batches; "
                f"{_INSTEAD}",
            )
        _add_invoices(reader, 1, p, w)
        out.append(Invoice(ident, entry["property"], entry["amount"]))
    return tuple(out)


def _check_compact_collisions(reader: Reader) -> None:
    ids = reader.invoices
    if not ids.compact:
        return
    for ident, (_batch, pos) in ids.explicit.items():
        c = ids.compact_match(ident)
        if c is not None:
            reader.fail(
                pos, f"duplicate invoice id {ident!r}: compact batch {c.batch!r} generates {c.first()} … {c.last()}"
            )


def _no_invoices(reader: Reader, value: object, pos: Pos, where: str) -> None:  # pragma: no cover - schema only
    raise AssertionError("batches read invoices: with their own parser")


BATCH_TABLE = Table(
    (
        Field("id", ID, "The batch's id.", REQUIRED),
        Field(
            "invoices",
            Kind(
                _no_invoices,
                {
                    "oneOf": [
                        list_schema(INVOICE_TABLE.schema(), MAX_LIST_ITEMS),
                        COMPACT_TABLE.schema(),
                    ]
                },
            ),
            "The batch's invoices: a list of {id, property, amount}, or {count: N, properties: [...]}.",
        ),
    ),
    "An invoice batch: Draft until complete_batch, then Sent.",
)


def _batches(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Batch, ...]:
    items = reader.items(value, pos, where, "a list of batches", MAX_ENTITIES)
    out = []
    for i, v in enumerate(items):
        quick = _quick_compact_batch(reader, v)
        out.append(quick if quick is not None else _batch(reader, v, reader.item_pos(items, i, pos), f"{where}[{i}]"))
    _check_compact_collisions(reader)
    return tuple(out)


def _quick_compact_batch(reader: Reader, value: object) -> Batch | None:
    """A plainly valid compact batch {id, invoices: {count, properties}} with a new id, within the
    invoice cap, read as :func:`_batch` would; None for any other row (the general path)."""
    if type(value) is not YMap or len(value) != 2 or "invoices" not in value or not fields.QUICK_PATHS:
        return None
    ident = value.get("id")
    invoices = value["invoices"]
    ids = reader.invoices
    if quick_ident(reader, ident) is SLOW or ident in reader.ids.batches or type(invoices) is not YMap:
        return None
    row = COMPACT_TABLE.quick_row(reader, invoices)
    if row is None or not row[1] or ids.total + row[0] > MAX_TOTAL_INVOICES:
        return None
    assert isinstance(ident, str)
    count, properties = row
    reader.ids.batches[ident] = value_pos(value, "id")
    ids.total += count
    ids.compact[ident] = CompactBatch(ident, count, len(str(count)))
    return Batch(ident, compact=CompactInvoices(count, properties), loc=reader.loc(value.pos))


def _batch(reader: Reader, value: object, pos: Pos, where: str) -> Batch:
    """One batch through the general path: the first problem in it is the one reported."""
    entry = BATCH_TABLE.read(reader, value, pos, where)
    ident = entry["id"]
    reader.define(reader.ids.batches, ident, entry.vpos("id"), "batch")
    raw = entry.raw("invoices")
    loc = reader.loc(entry.pos)
    vpos, sub = entry.vpos("invoices"), entry.sub("invoices")
    if raw is None:
        return Batch(ident, loc=loc)
    if isinstance(raw, dict):
        return Batch(ident, compact=_compact(reader, ident, raw, vpos, sub), loc=loc)
    if isinstance(raw, list):
        return Batch(ident, invoices=_invoices(reader, ident, raw, vpos, sub), loc=loc)
    reader.fail(vpos, f"{sub}: expected a list of invoices or {{count: N, properties: [...]}}, got {describe(raw)}")


BATCHES = Kind(_batches, list_schema(BATCH_TABLE.schema(), MAX_ENTITIES))


def invoice_ref(reader: Reader, value: object, pos: Pos, where: str) -> str:
    """An invoice id defined by a batch, written out or generated by a compact batch."""
    ident = reader.ident(value, pos, where)
    ids = reader.invoices
    if ident in ids.explicit or ids.compact_match(ident) is not None:
        return ident
    candidates = list(ids.explicit)
    for c in ids.compact.values():
        candidates.append(c.first())
        candidates.append(c.last())
    hint = did_you_mean(ident, candidates)
    prefix, dash, _digits = ident.rpartition("-")
    batch = ids.compact.get(prefix) if dash else None
    if batch is not None:
        hint = (
            f"; compact batch {batch.batch!r} has {batch.first()} … {batch.last()} "
            f"(ids are zero-padded to {batch.width} digits)"
        )
    elif not candidates:
        hint = "; no invoices are defined"
    reader.fail(pos, f"{where}: unknown invoice {ident!r}{hint}")


INVOICE_REF = Kind(invoice_ref, ID.schema)
