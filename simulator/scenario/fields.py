"""Declarative key tables: one :class:`Table` of :class:`Field` per scenario mapping.

A field names its key, the :class:`Kind` of its value (the converter the loader calls *and*
the JSON Schema fragment an editor checks), its default and its description. The section
parsers read their mappings through these tables (:meth:`Table.read`), and
:mod:`simulator.scenario.schema` turns the same tables into the JSON Schema of ``mailsim/1`` —
so the loader and the schema cannot drift apart: adding a key is one table row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from simulator.scenario.convert import Converter, MapView, Pos, Reader
from simulator.scenario.yamltree import YMap

T = TypeVar("T")
JSON = dict[str, Any]

#: A field's default when the key must be given.
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()

#: What a :attr:`Kind.quick` returns for a value it does not vouch for: the full converter decides.
SLOW: Any = type("Slow", (), {"__repr__": lambda self: "SLOW"})()

#: The quick paths are on; tests turn them off to compare every outcome with the general path's.
QUICK_PATHS = True

#: ``quick(reader, value)``: the converted value when it is plainly valid, else :data:`SLOW`. It never
#: fails and has no side effect, so a caller may try it first and fall back to the converter.
Quick = Callable[[Reader, object], Any]


def _as_written(value: object) -> object:
    """A default as a file would write it: tuples become lists."""
    if isinstance(value, tuple):
        return [_as_written(v) for v in value]
    return value


class Kind(Generic[T]):
    """What a value may be: ``convert`` checks it for the loader, ``schema`` describes it to editors.

    ``show`` turns a loaded default back into its written form for the schema's ``default``
    (e.g. 3600 seconds → ``"1h"``). A Kind is called like the converter it wraps.

    ``quick`` (optional) converts a plainly valid value without its position or path — those are
    made only for a message — and must agree with ``convert`` on every value it accepts.

    A plain class, not a frozen dataclass: this module is compiled with the engine (setup.py) and
    mypyc cannot import a generic dataclass (mypyc/mypyc#827). Nothing sets its attributes after
    ``__init__``.
    """

    __slots__ = ("convert", "quick", "schema", "show")

    def __init__(self, convert: Converter[T], schema: Mapping[str, Any], show: Callable[[Any], object] = _as_written,
                 quick: Quick | None = None) -> None:
        self.convert = convert
        self.schema = schema
        self.show = show
        self.quick = quick

    def __repr__(self) -> str:
        return f"Kind(convert={self.convert!r}, quick={self.quick!r})"

    def __call__(self, reader: Reader, value: object, pos: Pos, where: str) -> T:
        return self.convert(reader, value, pos, where)


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a mapping. ``default`` None means unset (the key may be left out or be null)."""

    key: str
    kind: Kind[Any]
    description: str
    default: Any = None
    required: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", self.default is REQUIRED)


@dataclass(frozen=True, slots=True)
class Table:
    """The keys of one kind of mapping, in the order messages list them."""

    fields: tuple[Field, ...]
    description: str = ""
    by_key: Mapping[str, Field] = field(init=False, repr=False, compare=False)
    keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # key -> (index, required, quick) when every field's kind has a quick path, else None
    plan: Mapping[str, tuple[int, bool, Quick]] | None = field(init=False, repr=False, compare=False)
    defaults: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    required_count: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {f.key: f for f in self.fields})
        object.__setattr__(self, "keys", tuple(f.key for f in self.fields))
        plan = {f.key: (i, f.required, f.kind.quick) for i, f in enumerate(self.fields) if f.kind.quick is not None}
        object.__setattr__(self, "plan", plan if len(plan) == len(self.fields) else None)
        object.__setattr__(self, "defaults", tuple(None if f.required else f.default for f in self.fields))
        object.__setattr__(self, "required_count", sum(f.required for f in self.fields))

    def quick_row(self, reader: Reader, value: object) -> list[Any] | None:
        """Every field's value, in table order, when the row is plainly valid; else None.

        Plainly valid: a composed mapping (positions at hand) of known keys only, each required
        key given, each value taken by its kind's ``quick``. Then :meth:`read` and ``entry[key]``
        for each key would give the same values without an error, and nothing was built for a
        message. None sends the caller to that general path, which finds the problem (if any)
        and reports the first one exactly as before. Only the keys written are visited; the
        others keep their defaults.
        """
        plan = self.plan
        if plan is None or type(value) is not YMap or not QUICK_PATHS:
            return None
        out = list(self.defaults)
        required = 0
        for key, raw in value.items():
            step = plan.get(key)
            if step is None:  # an unknown key
                return None
            index, needed, quick = step
            if raw is None:  # null: unset, the default (a required key is not counted as given)
                continue
            converted = quick(reader, raw)
            if converted is SLOW:
                return None
            out[index] = converted
            required += needed
        return out if required == self.required_count else None

    def read(
        self, reader: Reader, value: object, pos: Pos, where: str, what: str = "a mapping", keys_what: str = ""
    ) -> Entry:
        """The mapping at ``value`` with its keys checked against the table (unknown keys fail)."""
        view = reader.map(value, pos, where, what)
        view.check_keys(self.keys, keys_what)
        return Entry(view, self)

    def schema(self, extra: Mapping[str, Any] | None = None) -> JSON:
        """The JSON Schema of a mapping of these keys (no others, ``null`` for unset)."""
        out: JSON = {
            "type": "object",
            "properties": {f.key: field_schema(f) for f in self.fields},
            "additionalProperties": False,
        }
        required = [f.key for f in self.fields if f.required]
        if required:
            out["required"] = required
        if self.description:
            out["description"] = self.description
        out.update(extra or {})
        return out


class Entry:
    """A mapping read through its :class:`Table`: ``entry["key"]`` converts that key on demand.

    Conversion happens when a key is asked for, so a section parser keeps the order in which
    it checks its keys (the first problem found is the one reported).
    """

    __slots__ = ("table", "view")

    def __init__(self, view: MapView, table: Table) -> None:
        self.view = view
        self.table = table

    def __getitem__(self, key: str) -> Any:
        f = self.table.by_key[key]
        if f.required:
            return self.view.req(key, f.kind.convert)
        if f.default is None:
            return self.view.opt(key, f.kind.convert)
        return self.view.get(key, f.kind.convert, f.default)

    def get(self, key: str, default: T) -> Any:
        """The key's value, or ``default`` instead of the table's (a default that depends on the file)."""
        return self.view.get(key, self.table.by_key[key].kind, default)

    @property
    def pos(self) -> Pos:
        return self.view.pos

    @property
    def data(self) -> dict[Any, Any]:
        return self.view.data

    def has(self, key: str) -> bool:
        return self.view.has(key)

    def raw(self, key: str) -> object:
        return self.view.raw(key)

    def sub(self, key: str) -> str:
        return self.view.sub(key)

    def kpos(self, key: object) -> Pos:
        return self.view.kpos(key)

    def vpos(self, key: object) -> Pos:
        return self.view.vpos(key)


# --- schema fragments ---------------------------------------------------------------------------


def nullable(schema: Mapping[str, Any]) -> JSON:
    """``schema`` or null (``null`` means unset in a scenario)."""
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str) and not any(k in out for k in ("anyOf", "oneOf", "allOf", "const", "enum")):
        out["type"] = [kind, "null"]
        return out
    if isinstance(kind, list) and not any(k in out for k in ("anyOf", "oneOf", "allOf", "const", "enum")):
        out["type"] = [*kind, "null"] if "null" not in kind else kind
        return out
    notes: JSON = {k: out.pop(k) for k in ("description", "default", "title") if k in out}
    return {"anyOf": [out, {"type": "null"}], **notes}


def field_schema(f: Field) -> JSON:
    """A field's schema: its kind's, nullable unless required, with its description and default."""
    base = dict(f.kind.schema)
    base.pop("description", None)
    out = base if f.required else nullable(base)
    out["description"] = f.description
    if not f.required and f.default is not None:
        out["default"] = f.kind.show(f.default)
    return out


def list_schema(items: Mapping[str, Any], limit: int, min_items: int = 0) -> JSON:
    out: JSON = {"type": "array", "items": dict(items), "maxItems": limit}
    if min_items:
        out["minItems"] = min_items
    return out


def enum_schema(options: Sequence[str]) -> JSON:
    return {"type": "string", "enum": list(options)}
