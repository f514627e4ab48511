"""RFC 3339 timestamps as events carry them: parsed into aware UTC datetimes,
written back with a ``Z`` (re-exported by :mod:`plugins.base`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_timestamp", "parse_timestamp"]


# RFC 3339 date-time: a full date, a time with seconds, optional fraction, and an offset.
# ASCII digits, and a T (RFC 3339 section 5.6; its note's space is left out, as in
# JSON Schema's date-time format: the OpenAPI document, ingest/schemas.py).
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?P<frac>\.[0-9]+)?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with an offset into an aware UTC datetime.

    Fractions beyond microseconds are truncated (Python's datetime resolution).
    """
    m = _RFC3339.match(value)
    if m is None:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2023-10-27T09:30:00Z")
    text = value
    frac = m.group("frac")
    if frac and len(frac) > 7:
        text = value[: m.start("frac")] + frac[:7] + value[m.end("frac") :]
    if m.group("tz") in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; fractional seconds only when present
    (milliseconds when they are whole). ``isoformat`` zero-pads years before
    1000 and, being C code, is ~10x faster than strftime on the ingest path."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    micros = value.microsecond
    spec = "seconds" if not micros else "milliseconds" if micros % 1000 == 0 else "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
