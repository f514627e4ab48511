"""Operator-friendly times for the management commands: a duration such as
``30m``, ``2h``, ``3d`` or ``1w``, or an instant given as such a duration ago or
as an ISO 8601 date / date-time (UTC unless it carries an offset); and the short
and long ways of writing them back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["format_age", "format_duration", "parse_duration", "parse_instant"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """``"30d"`` -> 30 days. Raises ValueError with a message for the operator."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a duration; use a number and a unit: s, m, h, d or w (e.g. 2h, 30d)"
        )
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def parse_instant(text: str, *, now: datetime) -> datetime:
    """``"2h"`` -> two hours before ``now``; ``"2026-11-20"`` / ``"2026-11-20T10:00"``
    -> that time (UTC unless an offset is given)."""
    if _DURATION.match(text):
        return now - parse_duration(text)
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (e.g. 2h, 3d) nor an ISO date"
            " (e.g. 2026-11-20 or 2026-11-20T10:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_age(delta: timedelta) -> str:
    """A short age for tables: ``45s``, ``12m``, ``5h``, ``3d``."""
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_duration(delta: timedelta) -> str:
    """A duration in words: ``30 days``, ``1 week``, ``90 seconds``."""
    seconds = int(delta.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count:,} {unit if count == 1 else unit + 's'}"
    return f"{seconds:,} {'second' if seconds == 1 else 'seconds'}"
