"""The JSONL trace (DESIGN §5): deterministic, so two runs can be compared byte for byte.

Built on structlog (a ``BytesLogger`` with an orjson renderer) so the trace is
an ordinary structlog pipeline that users can tap, yet the hot path stays a
single processor call. Nothing here reads a clock: ``t`` is the virtual time
and ``at`` its ISO rendering.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson
import structlog

from simulator import __version__
from simulator.scenario.model import Scenario, format_time

TRACE_SCHEMA = "mailsim-trace/1"

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, Any], Any]


def _render(_: Any, __: str, event_dict: EventDict) -> bytes:
    return orjson.dumps(event_dict)


class _Buffered:
    """The file as BytesLogger sees it: writes go through, per-line flushes do not.

    BytesLogger flushes after every line (a syscall per event, a third of the cost
    of a traced run); the writer flushes once, when the run ends.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.write = out.write

    def flush(self) -> None:
        return None


class TraceWriter:
    """Writes one header line, then ``{"seq", "t", "at", "event", ...}`` per event."""

    def __init__(self, out: BinaryIO, scn: Scenario, extra_processors: list[Processor] | None = None,
                 records: list[dict[str, Any]] | None = None) -> None:
        self._out = out
        self._start: datetime = scn.start
        self._seq = 0
        self._iso_t = -1
        self._iso = ""
        # The structlog pipeline: processors then a BytesLogger. ``emit`` runs the same
        # chain without a BoundLogger per call, which costs ~8 µs an event otherwise.
        self._processors: list[Processor] = [*(extra_processors or ()), _render]
        self._sink = structlog.BytesLogger(_Buffered(out))  # type: ignore[arg-type]
        self._write = out.write
        self.records = records  # when given, every event dict is also kept here (stepping, timelines)
        header = {
            "schema": TRACE_SCHEMA,
            "scenario": scn.name,
            "scenario_sha256": scn.sha256,
            "seed": scn.seed,
            "start": format_time(scn.start, 0),
            "version": __version__,
            "scenario_path": scn.source,  # an addition to the §5 header: lets ``mailsim replay`` find the file
        }
        self.header = header
        out.write(orjson.dumps(header) + b"\n")

    def emit(self, t: int, event: str, fields: dict[str, Any]) -> None:
        if t != self._iso_t:
            self._iso_t = t
            self._iso = format_time(self._start, t)
        self._seq += 1
        record: dict[str, Any] = {"seq": self._seq, "t": t, "at": self._iso, "event": event, **fields}
        if self.records is not None:
            self.records.append(record)
        ed: Any = record
        for proc in self._processors:
            ed = proc(None, event, ed)
        self._write(ed + b"\n")  # what BytesLogger.msg does, minus its lock and per-line flush

    @property
    def count(self) -> int:
        return self._seq

    def flush(self) -> None:
        self._out.flush()


Emit = Callable[[int, str, dict[str, Any]], None]
