"""Durations and instants as operators type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.timespans import format_age, parse_duration, parse_instant

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        (" 30D ", timedelta(days=30)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_instant(text, now=NOW) == NOW - delta


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T10:00Z", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T10:00+02:00", datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_instants(text: str, when: datetime) -> None:
    assert parse_instant(text, now=NOW) == when


@pytest.mark.parametrize("text", ["", "3", "3 days", "-2h", "yesterday", "2026-13-01"])
def test_bad_values_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_instant(text, now=NOW)


def test_ages() -> None:
    assert [format_age(timedelta(seconds=s)) for s in (-5, 59, 60, 7200, 90000)] == [
        "0s", "59s", "1m", "2h", "1d"
    ]  # fmt: skip
