"""Durations and times of the scenario format (DESIGN §3).

Durations: ``45s``, ``5m``, ``1h30m``, ``90d``, ``2w``, ``1d2h30m``, ``0s`` — units in the order
w d h m s, each at most once, whole numbers only. Result: int seconds.

Times: ISO-8601 with a zone (``2026-11-02T09:00:00Z``, ``…+01:00``) or an offset from the
scenario's start (``+2h``, ``-95d``, ``+1d2h30m``). Result: int seconds relative to ``start``.
YAML may hand over a ``datetime`` for unquoted timestamps; that is accepted too (it must
carry a zone). In expectations ``end`` means the end of the run (``None``).

Errors are :class:`~simulator.scenario.errors.TimeFormatError` (a ``ValueError``) carrying
the message only; the loader adds the file position.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from simulator.scenario.errors import TimeFormatError

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
#: Durations and offsets are bounded so later date arithmetic can never overflow.
MAX_SECONDS = 100 * 366 * DAY
MIN_START_YEAR = 1900
MAX_START_YEAR = 2999

_UNITS: tuple[tuple[str, int], ...] = (("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1))


def _duration_body(digit: str = "[0-9]", capture: bool = False) -> str:
    """The regex of a duration's text: units in the order w d h m s, each at most once, ASCII digits."""
    group = "(" if capture else "(?:"
    return "".join(f"(?:{group}{digit}{{1,12}}){unit})?" for unit, _size in _UNITS)


_DURATION_RE = re.compile(_duration_body(capture=True))
_OFFSET_RE = re.compile(r"([+-])(.*)", re.DOTALL)

# The timestamps the loader reads: ISO-8601's extended format, date and time of day separated by
# T or a space, whole seconds (a fraction of zeros is tolerated), and a zone. The gate below also
# lets a bare date, a time without zone and a non-zero fraction through, so they get their own
# messages; TIMESTAMP_PATTERN (for the JSON Schema) is the strict form.
_DATE = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_ZONE = r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
_TIMESTAMP_GATE_RE = re.compile(rf"{_DATE}(?:[T ]{_CLOCK}(?::[0-5][0-9](?:\.[0-9]{{1,6}})?)?{_ZONE}?)?")
TIMESTAMP_PATTERN = rf"{_DATE}[T ]{_CLOCK}(?::[0-5][0-9](?:\.0{{1,6}})?)?{_ZONE}"

#: What ``str.strip()`` removes around a value, as a regex character class body (``\uXXXX`` escapes
#: read the same in Python's ``re`` and ECMA-262, whose own ``\s`` differs from Python's).
def _char_class(codes: list[int]) -> str:
    """A character class body from code points, runs written as ranges (``\\u2000-\\u200a``)."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs)


SPACE_CLASS = _char_class([c for c in range(0x10000) if chr(c).isspace()])
#: The end of the text in both dialects (Python's ``$`` also matches before a final newline).
END = r"(?![\s\S])"


def _whole(body: str) -> str:
    """An anchored pattern for ``body`` with the surrounding spaces ``strip()`` tolerates."""
    return f"^[{SPACE_CLASS}]*(?:{body})[{SPACE_CLASS}]*{END}"


_DURATION = "(?=[0-9])" + _duration_body()
_ZERO_DURATION = "(?=0)" + _duration_body("0")
#: JSON Schema ``pattern``s (ECMA-262 and Python ``re`` alike) of exactly the text the parsers
#: accept. Magnitudes (at most 100 years; a start between the years 1900 and 2999; real calendar
#: days; a timestamp's place relative to ``start``) are checked by the loader only.
DURATION_PATTERN = _whole(f"0|{_DURATION}")
POSITIVE_DURATION_PATTERN = _whole(f"(?=[0-9wdhms]*[1-9]){_DURATION}")
START_PATTERN = _whole(TIMESTAMP_PATTERN)
TIME_PATTERN = _whole(f"[+-]{_DURATION}|{TIMESTAMP_PATTERN}")
TIME_NOT_BEFORE_START_PATTERN = _whole(f"\\+{_DURATION}|-{_ZERO_DURATION}|{TIMESTAMP_PATTERN}")
INITIAL_TIME_PATTERN = _whole(f"-{_DURATION}|\\+{_ZERO_DURATION}|{TIMESTAMP_PATTERN}")
TIME_OR_END_PATTERN = _whole(f"\\+{_DURATION}|-{_ZERO_DURATION}|{TIMESTAMP_PATTERN}|end")

DURATION_HINT = "a duration like 5m or 1h30m"
TIME_HINT = "a time like +2h, -95d or 2026-11-02T09:00:00Z"
START_HINT = "a start time like 2026-11-02T09:00:00Z"
ZONE_REQUIRED = "a time zone is required"


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _match_duration(text: str) -> int | None:
    if not text:
        return None
    m = _DURATION_RE.fullmatch(text)
    if m is None:
        return None
    total = 0
    for group, (_unit, size) in zip(m.groups(), _UNITS, strict=True):
        if group is not None:
            total += int(group) * size
    return total


def parse_duration(value: object) -> int:
    """``1h30m`` → 5400. ``0`` (a bare zero) is accepted; other bare numbers need a unit."""
    if isinstance(value, bool):
        raise TimeFormatError(f"expected {DURATION_HINT}, got {_show(value)}")
    if isinstance(value, int):
        if value == 0:
            return 0
        raise TimeFormatError(f"expected {DURATION_HINT}, got {value} (add a unit, e.g. {value}s)")
    if not isinstance(value, str):
        raise TimeFormatError(f"expected {DURATION_HINT}, got {_show(value)}")
    text = value.strip()
    seconds = 0 if text == "0" else _match_duration(text)
    if seconds is None:
        hint = ""
        if text[:1] in ("+", "-") and _match_duration(text[1:]) is not None:
            hint = " (a duration has no sign)"
        raise TimeFormatError(f"expected {DURATION_HINT}, got {_show(value)}{hint}")
    if seconds > MAX_SECONDS:
        raise TimeFormatError(f"duration {_show(value)} is too long (at most 100 years)")
    return seconds


def format_duration(seconds: int) -> str:
    """5400 → ``1h30m``; 0 → ``0s``. Inverse of :func:`parse_duration` (weeks shown as days)."""
    if seconds < 0:
        raise ValueError("durations are not negative")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS[1:]:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def format_offset(t: int) -> str:
    """-8208000 → ``-95d``; 7200 → ``+2h``."""
    return ("-" if t < 0 else "+") + format_duration(abs(t))


def _aware(value: datetime, original: object) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise TimeFormatError(
            f"{ZONE_REQUIRED}: got {_show(original)}; write e.g. 2026-11-02T09:00:00Z or 2026-11-02T10:00:00+01:00"
        )
    return value


def _plain_datetime(value: datetime) -> datetime:
    """A plain ``datetime`` (not ruamel's TimeStamp subclass); a zero offset becomes UTC."""
    offset = value.utcoffset()
    tz = UTC if offset == timedelta(0) else timezone(offset) if offset is not None else None
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=tz
    )


def _to_datetime(value: object, hint: str) -> datetime:
    if isinstance(value, datetime):
        return _plain_datetime(_aware(value, value.isoformat()))
    if isinstance(value, date):
        raise TimeFormatError(
            f"a time of day and a time zone are required: got {value.isoformat()}; write e.g. "
            f"{value.isoformat()}T00:00:00Z"
        )
    if not isinstance(value, str):
        raise TimeFormatError(f"expected {hint}, got {_show(value)}")
    text = value.strip()
    if len(text) > 64 or not _TIMESTAMP_GATE_RE.fullmatch(text):
        raise TimeFormatError(f"expected {hint}, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:  # the grammar holds, the calendar does not (2026-02-30, year 0)
        raise TimeFormatError(f"expected {hint}, got {_show(value)} (not a real date: {e})") from None
    if len(text) == 10:  # a bare date
        raise TimeFormatError(
            f"a time of day and a time zone are required: got {_show(value)}; write e.g. {text}T00:00:00Z"
        )
    return _plain_datetime(_aware(parsed, value))


def parse_start(value: object) -> datetime:
    """The scenario's ``start``: an ISO-8601 time with a zone, whole seconds."""
    if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        raise TimeFormatError(
            f"start must be an absolute time with a zone, like 2026-11-02T09:00:00Z, got {_show(value)}"
        )
    dt = _to_datetime(value, START_HINT)
    if dt.microsecond:
        raise TimeFormatError(f"times are whole seconds, got {_show(value)}")
    if not MIN_START_YEAR <= dt.year <= MAX_START_YEAR:
        raise TimeFormatError(
            f"start must be between the years {MIN_START_YEAR} and {MAX_START_YEAR}, got {_show(value)}"
        )
    return dt


def parse_time(value: object, start: datetime, *, allow_end: bool = False) -> int | None:
    """A time → int seconds relative to ``start``; ``end`` → None when ``allow_end``.

    Without ``allow_end`` the result is never None (typed as optional for one signature).
    """
    if isinstance(value, str):
        text = value.strip()
        if text == "end":
            if allow_end:
                return None
            raise TimeFormatError(f"expected {TIME_HINT}, got 'end' ('end' is only allowed in expect:)")
        m = _OFFSET_RE.fullmatch(text)
        if m is not None:
            seconds = _match_duration(m.group(2))
            if seconds is None:
                raise TimeFormatError(f"expected {TIME_HINT}, got {_show(value)}")
            if seconds > MAX_SECONDS:
                raise TimeFormatError(f"time {_show(value)} is too far from start (at most 100 years)")
            return -seconds if m.group(1) == "-" else seconds
        if _match_duration(text) is not None:
            raise TimeFormatError(f"expected {TIME_HINT}, got {_show(value)}; did you mean '+{text}'?")
    hint = TIME_HINT + (" or end" if allow_end else "")
    if isinstance(value, bool | int | float):
        raise TimeFormatError(f"expected {hint}, got {_show(value)}")
    dt = _to_datetime(value, hint)
    delta = dt - start
    if delta.microseconds:
        raise TimeFormatError(f"times are whole seconds, got {_show(value)}")
    seconds = delta // timedelta(seconds=1)
    if abs(seconds) > MAX_SECONDS:
        raise TimeFormatError(f"time {_show(value)} is too far from start (at most 100 years)")
    return seconds


def parse_time_required(value: object, start: datetime) -> int:
    """:func:`parse_time` without ``end``."""
    t = parse_time(value, start)
    assert t is not None
    return t
