"""Durations and times of the scenario format (simulator.scenario.times)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.scenario.errors import TimeFormatError
from simulator.scenario.times import (
    MAX_SECONDS,
    format_duration,
    format_offset,
    parse_duration,
    parse_start,
    parse_time,
    parse_time_required,
)

START = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("5m", 300),
        ("1h30m", 5400),
        ("90d", 90 * 86400),
        ("1d2h30m", 86400 + 2 * 3600 + 1800),
        ("0s", 0),
        ("2w", 14 * 86400),
        ("1w2d3h4m5s", 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        (" 5m ", 300),
        ("0", 0),
        (0, 0),
    ],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("five minutes", "expected a duration like 5m or 1h30m, got 'five minutes'"),
        ("", "expected a duration like 5m or 1h30m, got ''"),
        ("1.5h", "got '1.5h'"),
        ("30m1h", "got '30m1h'"),  # units in order w d h m s
        ("5M", "got '5M'"),
        ("1h 30m", "got '1h 30m'"),
        ("-5m", "a duration has no sign"),
        ("+5m", "a duration has no sign"),
        (300, "add a unit, e.g. 300s"),
        (True, "got true"),
        (1.5, "got 1.5"),
        (None, "got null"),
        ("9" * 13 + "s", "expected a duration"),
        (f"{MAX_SECONDS + 1}s", "too long"),
    ],
)
def test_bad_durations(value: object, fragment: str) -> None:
    with pytest.raises(TimeFormatError) as e:
        parse_duration(value)
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("+2h", 7200),
        ("-95d", -95 * 86400),
        ("+1d2h30m", 95400),
        ("+0s", 0),
        ("-0s", 0),
        ("2026-11-02T09:00:00Z", 0),
        ("2026-11-02T11:00:00Z", 7200),
        ("2026-11-02T10:00:00+01:00", 0),
        ("2026-11-02 10:00:00+01:00", 0),
        ("2026-11-01T09:00:00Z", -86400),
        (datetime(2026, 11, 2, 10, 0, tzinfo=UTC), 3600),
        (datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))), 0),
    ],
)
def test_times(text: object, seconds: int) -> None:
    assert parse_time(text, START) == seconds
    assert parse_time_required(text, START) == seconds


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2h", "did you mean '+2h'?"),
        ("2026-11-02T09:00:00", "a time zone is required"),
        (datetime(2026, 11, 2, 9), "a time zone is required"),
        ("2026-11-02", "a time of day and a time zone are required"),
        (date(2026, 11, 2), "a time of day and a time zone are required"),
        ("tomorrow", "expected a time like +2h, -95d or 2026-11-02T09:00:00Z, got 'tomorrow'"),
        ("+", "got '+'"),
        ("+2x", "got '+2x'"),
        ("end", "'end' is only allowed in expect:"),
        (5, "got 5"),
        (True, "got true"),
        ([], "got a list"),
        ("2026-11-02T09:00:00.5Z", "whole seconds"),
        ("2300-01-01T00:00:00Z", "too far from start"),
        (f"+{MAX_SECONDS + 1}s", "too far from start"),
    ],
)
def test_bad_times(value: object, fragment: str) -> None:
    with pytest.raises(TimeFormatError) as e:
        parse_time(value, START)
    assert fragment in str(e.value)


def test_end_only_when_allowed() -> None:
    assert parse_time("end", START, allow_end=True) is None
    assert parse_time(" end ", START, allow_end=True) is None
    assert parse_time("+1h", START, allow_end=True) == 3600
    with pytest.raises(TimeFormatError, match="or end"):
        parse_time("later", START, allow_end=True)


def test_start() -> None:
    s = parse_start("2026-11-02T09:00:00Z")
    assert s == START and s.tzinfo is UTC and type(s) is datetime
    s = parse_start("2026-11-02T10:00:00+01:00")
    assert s == START and s.utcoffset() == timedelta(hours=1)


class _Stamp(datetime):
    """Like ruamel's TimeStamp: a datetime subclass."""


def test_start_from_yaml_datetime_is_plain() -> None:
    s = parse_start(_Stamp(2026, 11, 2, 9, tzinfo=timezone(timedelta(0), "Z")))
    assert type(s) is datetime and s == START and s.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("+2h", "start must be an absolute time"),
        ("2026-11-02T09:00:00", "a time zone is required"),
        ("2026-11-02T09:00:00.25Z", "whole seconds"),
        ("1800-01-01T00:00:00Z", "between the years"),
        ("noon", "expected a start time like 2026-11-02T09:00:00Z, got 'noon'"),
        (None, "got null"),
    ],
)
def test_bad_start(value: object, fragment: str) -> None:
    with pytest.raises(TimeFormatError) as e:
        parse_start(value)
    assert fragment in str(e.value)


@given(st.integers(min_value=0, max_value=MAX_SECONDS))
def test_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=-MAX_SECONDS, max_value=MAX_SECONDS))
def test_offset_round_trip(seconds: int) -> None:
    assert parse_time(format_offset(seconds), START) == seconds


def test_format_examples() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_offset(-95 * 86400) == "-95d"
    assert format_offset(7200) == "+2h"
    with pytest.raises(ValueError):
        format_duration(-1)
