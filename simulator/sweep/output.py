"""Rows on disk: CSV or JSON Lines, appended and flushed as runs finish, sorted by run when all are in.

Appending as each run finishes is what lets Ctrl-C keep every finished row and ``--resume`` pick up
where a sweep stopped; the final sort makes a completed file identical byte for byte whatever the
executor, worker count or completion order was.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

FORMATS = ("csv", "jsonl")


class OutputError(ValueError):
    """The output file cannot be used as asked (exists, other columns, other scenario)."""


def guess_format(path: Path | None, given: str | None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise OutputError(f"--format must be one of {', '.join(FORMATS)}, got {given!r}")
        return given
    if path is not None and path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def encode(row: dict[str, Any], columns: Sequence[str], fmt: str) -> str:
    if fmt == "jsonl":
        return orjson.dumps({c: row.get(c) for c in columns}).decode() + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def header(columns: Sequence[str], fmt: str) -> str:
    if fmt == "jsonl":
        return ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(columns))
    return buf.getvalue()


def _coerce(v: str) -> Any:
    """CSV cells back to numbers where they were numbers (for summaries of resumed files)."""
    if v == "":
        return None
    if v.lstrip("-").isdigit():
        return int(v)
    return v


def read_rows(path: Path, fmt: str, columns: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The complete rows already in ``path`` and their raw lines (a torn last line is dropped)."""
    text = path.read_text(encoding="utf-8")
    if not text:
        return [], []
    lines = text.splitlines(keepends=True)
    if not lines[-1].endswith("\n"):  # killed mid-write: that run is simply done again
        lines.pop()
    rows: list[dict[str, Any]] = []
    raw: list[str] = []
    if fmt == "jsonl":
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise OutputError(f"{path}:{i}: not a JSON line; is this a sweep output?") from None
            if not isinstance(rec, dict) or list(rec) != list(columns):
                raise OutputError(f"{path}:{i}: its fields differ from this sweep's "
                                  "(another --vary set or another version?); use another --out or --force")
            rows.append(rec)
            raw.append(line)
        return rows, raw
    if not lines:
        return [], []
    head = next(csv.reader([lines[0]]))
    if head != list(columns):
        raise OutputError(f"{path}:1: its columns differ from this sweep's "
                          "(another --vary set or another version?); use another --out or --force")
    for i, line in enumerate(lines[1:], 2):
        cells = next(csv.reader([line]), [])
        if len(cells) != len(columns):
            raise OutputError(f"{path}:{i}: expected {len(columns)} cells, found {len(cells)}")
        rows.append({c: _coerce(v) for c, v in zip(columns, cells, strict=True)})
        raw.append(line)
    return rows, raw


class RowWriter:
    """Appends rows to a file (or a stream), flushing each, and can put the file in run order at the end."""

    def __init__(self, path: Path | None, fmt: str, columns: Sequence[str], *, keep: Sequence[str] = (),
                 stream: TextIO | None = None) -> None:
        self.path = path
        self.fmt = fmt
        self.columns = list(columns)
        self.count = 0
        if path is None:
            self.fh: TextIO | None = stream
            if stream is not None:
                stream.write(header(self.columns, fmt))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # rewrite what is kept (drops a torn last line), then append from there
        self.fh = path.open("w", encoding="utf-8", newline="")
        self.fh.write(header(self.columns, fmt))
        self.fh.writelines(keep)
        self.fh.flush()

    def write(self, row: dict[str, Any]) -> None:
        if self.fh is None:
            return
        self.fh.write(encode(row, self.columns, self.fmt))
        self.fh.flush()
        self.count += 1

    def close(self) -> None:
        if self.fh is not None and self.path is not None:
            self.fh.close()
        self.fh = None

    def sort_by_run(self) -> None:
        """Rewrite the finished file in run order (atomically: a crash leaves the old file whole)."""
        if self.path is None:
            return
        self.close()
        rows, raw = read_rows(self.path, self.fmt, self.columns)
        order = sorted(range(len(rows)), key=lambda i: (rows[i].get("run") is None, rows[i].get("run") or 0, i))
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(header(self.columns, self.fmt))
            fh.writelines(raw[i] for i in order)
        os.replace(tmp, self.path)
