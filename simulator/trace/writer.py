"""The JSONL trace (DESIGN §5): deterministic, so two runs can be compared byte for byte.

Each event goes through a structlog processor chain ending in structlog's
``JSONRenderer`` with orjson, so users can add processors as with any structlog
pipeline; the rendered line is written straight to the file (no BoundLogger, no
lock and no per-line flush: those cost more than the event itself). Nothing here
reads a clock: ``t`` is the virtual time and ``at`` its ISO rendering.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from simulator.domain.entities import format_time
from simulator.scenario.model import Scenario

TRACE_SCHEMA = "mailsim-trace/1"

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, Any], Any]


def package_version() -> str:
    """The installed distribution's version: pyproject.toml is its one source (the top package reads it here too)."""
    from importlib import metadata  # here, not at the top: most commands never ask (≈30 ms of start-up)

    try:
        return metadata.version("mailsim")
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


class TraceWriter:
    """Writes one header line, then ``{"seq", "t", "at", "event", ...}`` per event."""

    def __init__(self, out: BinaryIO, scn: Scenario, extra_processors: list[Processor] | None = None,
                 records: list[dict[str, Any]] | None = None, *, version: str | None = None) -> None:
        self._out = out
        self._start: datetime = scn.start
        self._seq = 0
        self._iso_t = -1
        self._iso = ""
        import structlog  # only a run with a trace needs it (≈0.1 s of every process's start-up otherwise)

        self._processors: list[Processor] = [
            *(extra_processors or ()),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        self._write = out.write
        self.records = records  # when given, every event dict is also kept here (stepping, timelines)
        header = {
            "schema": TRACE_SCHEMA,
            "scenario": scn.name,
            "scenario_sha256": scn.sha256,
            "seed": scn.seed,
            "start": format_time(scn.start, 0),
            "version": version if version is not None else package_version(),
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
        self._write(ed + b"\n")

    @property
    def count(self) -> int:
        return self._seq

    def flush(self) -> None:
        self._out.flush()


Emit = Callable[[int, str, dict[str, Any]], None]
