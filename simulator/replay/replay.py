"""Replay a trace: re-run the scenario its header names and check the new trace is byte-identical.

The trace header (DESIGN §5) names the scenario (``scenario``, ``scenario_sha256``,
``seed``) and, since ``scenario_path`` was added to it, the file it came from. The
file is read, its sha256 checked against the header (a changed file is bad input,
not a divergence) and it is run again with the header's seed — a trace made with
``mailsim run --seed N`` replays with ``N``. The scenario is loaded under the path
the header records, so the source locations the trace carries (``line`` on
timeline events) come out the same even when ``--scenario`` names another copy.

The comparison streams both files line by line, so a trace of any size replays in
constant memory. Line 1 (the header) may differ only in ``version`` and
``scenario_path`` (reported as notes); every other line must be byte-identical.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any

import orjson

from simulator.engine.result import RunResult
from simulator.scenario.errors import ScenarioError
from simulator.scenario.model import Scenario
from simulator.trace.writer import TRACE_SCHEMA

__all__ = [
    "HEADER_KEYS",
    "KeyChange",
    "LineDiff",
    "ReplayResult",
    "TraceInputError",
    "key_diff",
    "read_header",
    "read_records",
    "replay",
    "scenario_for_trace",
]

HEADER_KEYS: tuple[str, ...] = ("schema", "scenario", "scenario_sha256", "seed", "start", "version")
# header keys that may differ between a trace and its replay without the replay having diverged
_HEADER_INFORMATIONAL = frozenset({"version", "scenario_path"})
_MAX_HEADER_BYTES = 1 << 20


class TraceInputError(Exception):
    """Bad input (exit 2): not a trace, a missing or changed scenario, an unreadable file."""


# -- reading traces ------------------------------------------------------------------------------

def _first_line(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            line = fh.readline(_MAX_HEADER_BYTES)
    except IsADirectoryError:
        raise TraceInputError(f"{path}: is a directory, not a trace file") from None
    except OSError as exc:
        raise TraceInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return line


def parse_header(line: bytes, path: Path | str) -> dict[str, Any]:
    """Validate line 1 of a trace; raises :class:`TraceInputError` saying what is wrong."""
    if not line.strip():
        raise TraceInputError(f"{path}: empty file, not a mailsim trace")
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise TraceInputError(f"{path}: not a mailsim trace (line 1 is not JSON)") from None
    if not isinstance(header, dict) or "schema" not in header:
        raise TraceInputError(f"{path}: not a mailsim trace (line 1 is not a header with a 'schema')")
    schema = header["schema"]
    if schema != TRACE_SCHEMA:
        if isinstance(schema, str) and schema.startswith("mailsim-trace/"):
            raise TraceInputError(f"{path}: unsupported trace schema {schema!r} (this mailsim reads {TRACE_SCHEMA!r})")
        raise TraceInputError(f"{path}: not a mailsim trace (schema {schema!r}, expected {TRACE_SCHEMA!r})")
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise TraceInputError(f"{path}: the trace header lacks {', '.join(repr(k) for k in missing)}")
    if not isinstance(header["seed"], int) or isinstance(header["seed"], bool):
        raise TraceInputError(f"{path}: the trace header's seed is not an integer: {header['seed']!r}")
    sha = header["scenario_sha256"]
    if not isinstance(sha, str) or len(sha) != 64:
        raise TraceInputError(f"{path}: the trace header's scenario_sha256 is not a sha256: {sha!r}")
    sp = header.get("scenario_path")
    if sp is not None and not isinstance(sp, str):
        raise TraceInputError(f"{path}: the trace header's scenario_path is not a string: {sp!r}")
    return header


def read_header(path: str | Path) -> dict[str, Any]:
    """The header (line 1) of a ``mailsim-trace/1`` file."""
    p = Path(path)
    return parse_header(_first_line(p), p)


def is_trace(path: str | Path) -> bool:
    """Does the file start like a mailsim trace (a JSON line with a ``mailsim-trace/…`` schema)?"""
    try:
        line = _first_line(Path(path))
        header = orjson.loads(line)
    except (TraceInputError, orjson.JSONDecodeError):
        return False
    return isinstance(header, dict) and str(header.get("schema", "")).startswith("mailsim-trace/")


def read_records(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and every event of a trace (events in memory: meant for diffs and notebooks)."""
    p = Path(path)
    header = read_header(p)
    records: list[dict[str, Any]] = []
    try:
        with p.open("rb") as fh:
            fh.readline(_MAX_HEADER_BYTES)
            for n, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise TraceInputError(f"{p}:{n}: not a JSON trace event") from None
                if not isinstance(rec, dict) or "event" not in rec or "t" not in rec:
                    raise TraceInputError(f"{p}:{n}: not a trace event (no 'event' and 't')")
                records.append(rec)
    except OSError as exc:
        raise TraceInputError(f"cannot read {p}: {exc.strerror or exc}") from None
    return header, records


# -- finding the scenario --------------------------------------------------------------------------

def scenario_for_trace(header: dict[str, Any], scenario: str | Path | None = None) -> tuple[Scenario, list[str]]:
    """The scenario that wrote the trace, checked against the header, with the header's seed.

    Returns the scenario and notes for the reader. Raises :class:`TraceInputError`
    when the file cannot be found or read, is not valid, or its sha256 differs.
    """
    from simulator.scenario.loader import load_scenario_text

    notes: list[str] = []
    recorded_path: str | None = header.get("scenario_path")
    if scenario is not None:
        path = Path(scenario)
    elif recorded_path and not recorded_path.startswith("<"):
        path = Path(recorded_path)
        if not path.exists():
            raise TraceInputError(
                f"cannot find the scenario file {recorded_path!r} named in the trace header (relative to the"
                f" current directory); pass --scenario FILE")
    else:
        raise TraceInputError(
            "the trace header names no scenario file"
            + (" (the run was given a scenario as text)" if recorded_path else
               " (it was written before traces recorded scenario_path)")
            + f"; pass --scenario FILE for scenario {header.get('scenario')!r}")
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise TraceInputError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise TraceInputError(f"cannot read the scenario {path}: {exc.strerror or exc}") from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != header["scenario_sha256"]:
        raise TraceInputError(
            f"{path} has changed since the trace was written: its sha256 is {sha[:12]}…, the trace header"
            f" says {str(header['scenario_sha256'])[:12]}… (scenario {header.get('scenario')!r})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceInputError(f"{path}: the scenario file is not valid UTF-8") from None
    # Load under the recorded path: timeline events carry ``line: PATH:LINE:COL`` in the trace.
    source = recorded_path if recorded_path else str(path)
    try:
        scn = load_scenario_text(text, source)
    except ScenarioError as exc:
        raise TraceInputError(f"the scenario does not load: {exc}") from None
    if recorded_path and scenario is not None and Path(recorded_path) != path:
        notes.append(f"scenario read from {path} (the trace recorded {recorded_path}; same sha256)")
    seed = header["seed"]
    if seed != scn.seed:
        notes.append(f"the trace was made with --seed {seed} (the file says seed {scn.seed}); replaying with {seed}")
        scn = replace(scn, seed=seed)
    return scn, notes


# -- comparing -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyChange:
    """One key that differs between two JSON objects (``a``: the first, ``b``: the second)."""

    key: str  # dotted path into nested objects, e.g. ``accounting.inbox``
    kind: str  # "changed" | "only-a" | "only-b"
    a: Any = None
    b: Any = None

    def render(self, a_name: str = "a", b_name: str = "b") -> str:
        def j(v: Any) -> str:
            return orjson.dumps(v).decode()

        if self.kind == "only-a":
            return f"- {self.key}: {j(self.a)}   (only in {a_name})"
        if self.kind == "only-b":
            return f"+ {self.key}: {j(self.b)}   (only in {b_name})"
        return f"~ {self.key}: {j(self.a)} → {j(self.b)}"

    def to_json(self, a_name: str = "a", b_name: str = "b") -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, a_name: self.a, b_name: self.b}


def key_diff(a: Any, b: Any, prefix: str = "") -> list[KeyChange]:
    """Key-level differences of two JSON values (recursing into objects; lists compare whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[KeyChange] = []
        for k in [*a, *(k for k in b if k not in a)]:
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in b:
                out.append(KeyChange(key, "only-a", a=a[k]))
            elif k not in a:
                out.append(KeyChange(key, "only-b", b=b[k]))
            else:
                out.extend(key_diff(a[k], b[k], key))
        return out
    if a == b and type(a) is type(b):
        return []
    return [KeyChange(prefix or "(value)", "changed", a, b)]


def _parse(line: bytes | None) -> Any:
    if line is None:
        return None
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class LineDiff:
    """The first line where the recorded trace and the replay differ."""

    line: int  # 1-based line number in the trace file
    recorded: bytes | None  # None: the recorded trace ended before this line
    replayed: bytes | None  # None: the replay ended before this line

    @property
    def recorded_obj(self) -> Any:
        return _parse(self.recorded)

    @property
    def replayed_obj(self) -> Any:
        return _parse(self.replayed)

    @property
    def seq(self) -> int | None:
        for obj in (self.recorded_obj, self.replayed_obj):
            if isinstance(obj, dict) and isinstance(obj.get("seq"), int):
                return int(obj["seq"])
        return None

    @property
    def at(self) -> str | None:
        for obj in (self.recorded_obj, self.replayed_obj):
            if isinstance(obj, dict) and isinstance(obj.get("at"), str):
                return str(obj["at"])
        return None

    @property
    def changes(self) -> list[KeyChange]:
        a, b = self.recorded_obj, self.replayed_obj
        if isinstance(a, dict) and isinstance(b, dict):
            return key_diff(a, b)
        return []

    @property
    def explanation(self) -> str:
        if self.recorded is None:
            return "the recorded trace ends here; the replay goes on"
        if self.replayed is None:
            return "the replay ends here; the recorded trace goes on"
        if self.recorded.rstrip(b"\r\n") == self.replayed.rstrip(b"\r\n"):
            return "the lines differ only in their line ending"
        if self.recorded_obj is None:
            return "the recorded line is not JSON"
        return "the events differ"

    def to_json(self) -> dict[str, Any]:
        def text(b: bytes | None) -> str | None:
            return None if b is None else b.rstrip(b"\r\n").decode("utf-8", errors="replace")

        return {
            "line": self.line,
            "seq": self.seq,
            "at": self.at,
            "explanation": self.explanation,
            "recorded": text(self.recorded),
            "replayed": text(self.replayed),
            "recorded_event": self.recorded_obj,
            "replayed_event": self.replayed_obj,
            "changes": [c.to_json("recorded", "replayed") for c in self.changes],
        }


@dataclass
class ReplayResult:
    trace: Path
    header: dict[str, Any]
    scenario: Scenario
    identical: bool
    events: int  # events in the recorded trace
    replayed_events: int
    divergence: LineDiff | None
    notes: list[str] = field(default_factory=list)
    result: RunResult | None = None  # the re-run (its final state)

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": str(self.trace),
            "scenario": self.header.get("scenario"),
            "scenario_path": self.header.get("scenario_path") or self.scenario.source,
            "scenario_sha256": self.header.get("scenario_sha256"),
            "seed": self.scenario.seed,
            "identical": self.identical,
            "events": self.events,
            "replayed_events": self.replayed_events,
            "notes": list(self.notes),
            "divergence": self.divergence.to_json() if self.divergence is not None else None,
        }


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from fh


def compare_traces(recorded: Path, replayed: Path) -> tuple[LineDiff | None, int, int, list[str]]:
    """Stream both traces: (first differing line or None, events in each, notes on the header)."""
    notes: list[str] = []
    first: LineDiff | None = None
    n_rec = n_rep = 0
    for n, (a, b) in enumerate(zip_longest(_lines(recorded), _lines(replayed)), start=1):
        if n == 1:
            ha, hb = _parse(a), _parse(b)
            if a != b and isinstance(ha, dict) and isinstance(hb, dict):
                changes = key_diff(ha, hb)
                if changes and all(c.key in _HEADER_INFORMATIONAL for c in changes):
                    for c in changes:
                        if c.key == "version":
                            notes.append(f"the trace was written by mailsim {c.a}; replayed with {c.b}")
                        elif c.kind == "only-b":
                            notes.append(f"the replay's header adds {c.key} = {orjson.dumps(c.b).decode()}")
                        else:
                            notes.append(f"header {c.key} differs: {c.a!r} → {c.b!r}")
                    continue
            if a != b:
                first = LineDiff(1, a, b)
            continue
        if a is not None:
            n_rec += 1
        if b is not None:
            n_rep += 1
        if first is None and a != b:
            first = LineDiff(n, a, b)
    return first, n_rec, n_rep, notes


def replay(trace: str | Path, scenario: str | Path | None = None, *, out: str | Path | None = None) -> ReplayResult:
    """Re-run the scenario ``trace`` was written from and compare the two traces byte for byte.

    ``scenario`` names the file explicitly (its sha256 must still match the header);
    ``out`` keeps the replayed trace. Raises :class:`TraceInputError` on bad input.
    """
    from simulator.engine.run import simulate

    tpath = Path(trace)
    header = read_header(tpath)
    scn, notes = scenario_for_trace(header, scenario)
    with tempfile.TemporaryDirectory(prefix="mailsim-replay-") as tmp:
        new = Path(out) if out is not None else Path(tmp) / "replay.jsonl"
        result = simulate(scn, trace=new)
        div, n_rec, n_rep, hnotes = compare_traces(tpath, new)
    return ReplayResult(tpath, header, scn, div is None, n_rec, n_rep, div, notes + hnotes, result)
