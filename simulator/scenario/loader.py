"""Load a ``mailsim/1`` scenario file (DESIGN §3) into the immutable :class:`Scenario`.

The YAML is composed by :mod:`simulator.scenario.yamltree`, which keeps the line and column
of every key, value and list item, so each :class:`ScenarioError` points at the offending
node. Each part of the file is read by its section (:mod:`simulator.scenario.sections`)
through its key table (:mod:`simulator.scenario.fields`); DOCUMENT_TABLE below is the top
level. The same tables give the JSON Schema (:mod:`simulator.scenario.schema`). The first
problem found is raised; nothing but :class:`ScenarioError` leaves :func:`load_scenario`.

The size limits of :mod:`simulator.scenario.limits` (file size, total invoices, section
lengths) are checked before the work they bound, so an absurd file fails in milliseconds.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from simulator.domain.dns import Dns
from simulator.domain.entities import DEFAULT_PROVIDERS, Organization, Platform, Settings
from simulator.scenario.convert import Pos, Reader, describe
from simulator.scenario.errors import ScenarioError, TimeFormatError
from simulator.scenario.fields import REQUIRED, Entry, Field, Kind, Table, enum_schema, list_schema
from simulator.scenario.kinds import STRING, TEXT, TIME_NOT_BEFORE_START, integer
from simulator.scenario.limits import MAX_FILE_BYTES, MAX_QUEUE_POLLS, MAX_SMALL_LIST
from simulator.scenario.model import Scenario
from simulator.scenario.sections.batches import BATCHES
from simulator.scenario.sections.dns import DNS
from simulator.scenario.sections.expect import EXPECT
from simulator.scenario.sections.faults import FAULTS
from simulator.scenario.sections.mailboxes import MAILBOXES
from simulator.scenario.sections.organization import CONTACTS, ORGANIZATION, PROPERTIES, USERS
from simulator.scenario.sections.platform import PLATFORM, PROVIDERS, SETTINGS
from simulator.scenario.sections.timeline import TIMELINE
from simulator.scenario.times import START_PATTERN, format_duration, parse_start
from simulator.scenario.yamltree import no_cyclic_gc, parse_yaml, too_large

__all__ = [
    "DOCUMENT_TABLE",
    "SUPPORTED_SCHEMAS",
    "ScenarioError",
    "load_scenario",
    "load_scenario_text",
    "load_tree",
]

SUPPORTED_SCHEMAS: tuple[str, ...] = ("mailsim/1",)
MAX_SEED = 2**64 - 1


def _tags(reader: Reader, value: object, pos: Pos, where: str) -> tuple[str, ...]:
    return tuple(reader.text(v, p, w) for v, p, w in reader.seq(value, pos, where, "a list of tags", MAX_SMALL_LIST))


def _checked_apart(reader: Reader, value: object, pos: Pos, where: str) -> object:  # pragma: no cover - schema only
    raise AssertionError("schema: and start: are read before the other keys, by read_document")


TAGS = Kind(_tags, list_schema(TEXT.schema, MAX_SMALL_LIST))

#: The top level of a scenario file, in the order messages list its keys.
DOCUMENT_TABLE = Table(
    (
        Field("schema", Kind(_checked_apart, enum_schema(SUPPORTED_SCHEMAS)), "The format: mailsim/1.", REQUIRED),
        Field("name", TEXT, "Shown in reports and traces; unset: the file name without extension."),
        Field("description", STRING, "Free text.", ""),
        Field(
            "start",
            Kind(_checked_apart, {"type": "string", "pattern": START_PATTERN}),
            "The instant the initial state describes: an ISO-8601 time with a zone (2026-11-02T09:00:00Z).",
            REQUIRED,
        ),
        Field("seed", integer(0, MAX_SEED), "Every random choice (fault draws) derives from it.", 0),
        Field(
            "until",
            TIME_NOT_BEFORE_START,
            "End of the run; unset: when nothing more is scheduled, capped at 30 days.",
        ),
        Field("tags", TAGS, "Labels (e.g. guide steps).", ()),
        Field("settings", SETTINGS, "Timing of the queue, the sync tokens and the retries."),
        Field("platform", PLATFORM, "The platform's own outgoing MTA."),
        Field("providers", PROVIDERS, "Mailbox-sync providers (microsoft365 and google are built in)."),
        Field("organization", ORGANIZATION, "Configuration, regions and branches."),
        Field("users", USERS, "Platform users (possible senders).", ()),
        Field("contacts", CONTACTS, "Customer contacts (recipients).", ()),
        Field("properties", PROPERTIES, "Customer properties and their contacts.", ()),
        Field("batches", BATCHES, "Invoice batches.", ()),
        Field("dns", DNS, "The DNS zone the simulation resolves against."),
        Field("mailboxes", MAILBOXES, "The recipients' mail servers, one entry per domain.", ()),
        Field("timeline", TIMELINE, "Changes at given times.", ()),
        Field("faults", FAULTS, "Injected failures.", ()),
        Field("expect", EXPECT, "Expectations checked by mailsim run.", ()),
    ),
    "A mailsim scenario: the state of an invoicing platform at start, what happens afterwards, "
    "what goes wrong and what should be observed.",
)


def read_document(reader: Reader, doc: object, default_name: str, source: str, sha256: str) -> Scenario:
    """The whole file: ``schema`` and ``start`` first (the other keys' meaning depends on them)."""
    view = reader.map(doc, Pos(1, 1), "", "a mapping of scenario keys (schema, name, start, ...)")
    if "schema" not in view.data:
        reader.fail(view.pos, f"missing required key 'schema' (use schema: {SUPPORTED_SCHEMAS[0]})")
    schema = view.raw("schema")
    if not isinstance(schema, str) or str(schema) not in SUPPORTED_SCHEMAS:
        reader.fail(
            view.vpos("schema"),
            f"schema: unsupported schema {describe(schema)}; supported: {', '.join(SUPPORTED_SCHEMAS)}",
        )
    view.check_keys(DOCUMENT_TABLE.keys, "the scenario")
    if "start" not in view.data:
        reader.fail(view.pos, "missing required key 'start' (e.g. start: 2026-11-02T09:00:00Z)")
    try:
        reader.start = parse_start(view.raw("start"))
    except TimeFormatError as e:
        reader.fail(view.vpos("start"), f"start: {e}")
    entry = Entry(view, DOCUMENT_TABLE)
    name = entry.get("name", default_name)
    description = entry["description"]
    seed = entry["seed"]
    until = entry["until"]
    tags = entry["tags"]
    settings = entry.get("settings", Settings())
    if until is not None and until // settings.queue_poll > MAX_QUEUE_POLLS:
        reader.fail(
            view.vpos("until"),
            f"until: a run of {describe(view.raw('until'))} polls the queue {until // settings.queue_poll:,} times "
            f"(every {format_duration(settings.queue_poll)}); at most {MAX_QUEUE_POLLS:,} "
            "(raise settings.queue_poll or end the run sooner)",
        )
    return Scenario(
        name=name,
        start=reader.start,
        seed=seed,
        description=description,
        until=until,
        tags=tags,
        settings=settings,
        platform=entry.get("platform", Platform()),
        providers=entry.get("providers", DEFAULT_PROVIDERS),
        organization=entry.get("organization", Organization()),
        users=entry["users"],
        contacts=entry["contacts"],
        properties=entry["properties"],
        batches=entry["batches"],
        dns=entry.get("dns", Dns()),
        mailboxes=entry["mailboxes"],
        timeline=entry["timeline"],
        faults=entry["faults"],
        expect=entry["expect"],
        source=source,
        sha256=sha256,
        warnings=tuple(reader.warnings),
    )


# --- YAML ---------------------------------------------------------------------------------------


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        prefix = data[: e.start]
        line = prefix.count(b"\n") + 1
        col = len(prefix) - (prefix.rfind(b"\n") + 1) + 1
        raise ScenarioError(path, line, col, "the file is not valid UTF-8") from None


def _load(text: str, path: str, sha256: str, default_name: str) -> Scenario:
    with no_cyclic_gc():  # around both steps, so no collection runs between them over the whole tree
        doc = parse_yaml(text, path)
        if doc is None:
            raise ScenarioError(path, 1, 1, "the file is empty; a scenario starts with 'schema: mailsim/1'")
        return load_tree(doc, path, sha256, default_name)


def load_tree(doc: object, path: str, sha256: str, default_name: str = "scenario") -> Scenario:
    """Validate an already-parsed YAML tree (from ``parse_yaml``, possibly edited, e.g. by a sweep)."""
    reader = Reader(path)
    try:
        with no_cyclic_gc():
            return read_document(reader, doc, default_name, path, sha256)
    except RecursionError:
        raise ScenarioError(path, 1, 1, "the document is nested too deeply") from None


def _read(path: Path, name: str) -> bytes:
    """The file's bytes, never more than MAX_FILE_BYTES of them.

    ``stat`` rejects a huge regular file before a byte is read (a sparse 10 GB file costs
    nothing); the bounded read covers what ``stat`` cannot size (pipes, ``/dev/zero``).
    """
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise too_large(name, info.st_size)
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(name, 1, 1, f"cannot read the file: {e.strerror or e}") from None
    except (ValueError, OverflowError) as e:  # e.g. a NUL in the path
        raise ScenarioError(name, 1, 1, f"cannot read the file: {e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_large(name, None)
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario file. Raises :class:`ScenarioError` only."""
    name = str(path)
    data = _read(Path(path), name)
    text = _decode(data, name)
    return _load(text, name, hashlib.sha256(data).hexdigest(), Path(path).stem or "scenario")


def load_scenario_text(text: str, path: str = "<string>") -> Scenario:
    """Validate and resolve scenario YAML given as text; ``path`` is used in messages and ``source``."""
    if len(text) > MAX_FILE_BYTES:
        raise too_large(path, len(text))
    data = text.encode("utf-8", errors="surrogatepass")
    if text.startswith("\ufeff"):
        text = text[1:]
    default = Path(path).stem if path and not path.startswith("<") else "scenario"
    return _load(text, path, hashlib.sha256(data).hexdigest(), default or "scenario")
