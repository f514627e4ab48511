"""The fast parse of ``POST /ingest`` and ``POST /ingest/batch``: the cheap path.

A batch body is parsed and checked in one call into pydantic-core (a schema of
plain types: ``TypeAdapter(list[_Row]).validate_json``), then one tight loop does
the checks :class:`~plugins.base.Event` makes in Python (a type not blank, storable
text and data, the RFC 3339 timestamp) and writes each event's wire form
(:meth:`Event.to_wire`) without building an Event: a canonical UTC timestamp is
kept as it came. Validators see the request's events at once
(:meth:`plugins.base.Validator.validate_batch`), as Event objects made only if
they read them.

The fast parse is exact or it declines: it accepts only bodies every event of
which ``Event`` accepts, with the same values; on anything else (a schema error
in one event, JSON it would read otherwise than ``json.loads``, the
``source_id`` spelling of the field) it returns None and the caller runs the
per-event path, so every error message, index and rejection count stays what it
was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, NotRequired, overload

from pydantic import Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from core.metrics.recording import events_rejected
from core.metrics.series import FORBIDDEN
from plugins.base import (
    MAX_DATA_DEPTH,
    MAX_ID_LENGTH,
    MAX_TYPE_LENGTH,
    U64_MAX,
    Event,
    Validator,
    format_timestamp,
    parse_timestamp,
)
from plugins.storable import data_problem, string_problem
from sources.access import WriteAccess

__all__ = ["Checked", "Parsed", "event_parse_fast", "events_check", "events_parse_fast"]


class _Row(TypedDict):
    """An event as pydantic-core checks it alone: Event's constraints that need
    no Python (the rest is :func:`_row_wire`'s)."""

    sourceId: Annotated[int, Strict(), Field(ge=0, le=U64_MAX)]
    type: Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TYPE_LENGTH)]
    timestamp: Annotated[str, Strict()]
    data: NotRequired[Any]
    id: NotRequired[Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID_LENGTH)]]


_ROWS: TypeAdapter[list[_Row]] = TypeAdapter(list[_Row])

# json.loads refuses these constants (ingest.services.json_parse); pydantic-core
# reads them as floats. A body holding one, even inside a string, takes the
# per-event path.
_CONSTANTS = (b"NaN", b"Infinity")
# format_timestamp's own output: such a timestamp is its wire form as it is.
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?Z")
_FRACTION = {0: 20, 1: 24, 2: 27}  # length of the canonical form: no, milli, micro


# The only ways a JSON text can give a string a NUL or an unpaired surrogate (what
# plugins.storable refuses) are the escapes \u0000 and \uD800-\uDFFF: raw
# control characters and invalid UTF-8 are not JSON (pydantic-core refuses them).
# A body with no \u escape at all (two memchr-fast searches, where a regex was
# slower than the checks it saves) has only storable strings.
_ESCAPE, _NUL = b"\\u", b"\x00"


def _strings_storable(body: bytes) -> bool:
    return _ESCAPE not in body and _NUL not in body


def _declined(body: bytes) -> bool:
    return any(constant in body for constant in _CONSTANTS)


def _timestamp(text: str) -> tuple[datetime, str]:
    """(the UTC datetime Event would hold, its wire text); ValueError as Event's."""
    if _CANONICAL.fullmatch(text):
        value = datetime.fromisoformat(text)
        micros = value.microsecond
        kind = 0 if not micros else 1 if micros % 1000 == 0 else 2
        if len(text) == _FRACTION[kind]:
            return value, text
        return value, format_timestamp(value)
    value = parse_timestamp(text)
    return value, format_timestamp(value)


class Parsed:
    """A body's events: their wire forms (what the broker gets), and the Event
    objects, each made when first read (:meth:`Event.from_wire`'s way: no second
    validation)."""

    __slots__ = ("_events", "times", "wire")

    def __init__(self, wire: list[dict[str, Any]], times: list[datetime]) -> None:
        self.wire = wire
        self.times = times
        self._events: list[Event | None] = [None] * len(wire)

    def __len__(self) -> int:
        return len(self.wire)

    def event(self, index: int) -> Event:
        made = self._events[index]
        if made is None:
            w = self.wire[index]
            made = self._events[index] = Event.model_construct(
                source_id=w["sourceId"],
                type=w["type"],
                timestamp=self.times[index],
                data=w["data"],
                id=w.get("id"),
            )
        return made


class _Events(Sequence[Event]):
    """Some of a body's events (by index) as a sequence of Event, lazily."""

    def __init__(self, parsed: Parsed, indices: list[int]) -> None:
        self._parsed = parsed
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, i: int) -> Event: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Event]: ...

    def __getitem__(self, i: int | slice) -> Event | Sequence[Event]:
        if isinstance(i, slice):
            return _Events(self._parsed, self._indices[i])
        return self._parsed.event(self._indices[i])

    def __iter__(self) -> Iterator[Event]:
        return (self._parsed.event(i) for i in self._indices)


def events_parse_fast(body: bytes) -> Parsed | None:
    """A JSON array of valid events, parsed and checked as ``Event`` would; None
    when the body is anything else (not JSON, not an array, one invalid event)."""
    if _declined(body):
        return None
    try:
        rows = _ROWS.validate_json(body)
    except ValidationError:
        return None
    wire: list[dict[str, Any]] = []
    times: list[datetime] = []
    storable = _strings_storable(body)  # then only the data's depth is checked
    for row in rows:
        event_type, data = row["type"], row.get("data")
        if not event_type.strip():
            return None
        if not storable and string_problem(event_type) is not None:
            return None
        if (
            data is not None
            and data_problem(data, MAX_DATA_DEPTH, strings=not storable) is not None
        ):
            return None
        try:
            value, text = _timestamp(row["timestamp"])
        except ValueError:
            return None
        one = {"sourceId": row["sourceId"], "type": event_type, "timestamp": text, "data": data}
        if "id" in row:  # exactly once by id (broker/commit.py)
            if not storable and string_problem(row["id"]) is not None:
                return None
            one["id"] = row["id"]
        wire.append(one)
        times.append(value)
    return Parsed(wire, times)


def event_parse_fast(body: bytes) -> Event | None:
    """One valid event (a JSON object) in one call; None otherwise."""
    if _declined(body):
        return None
    try:
        return Event.model_validate_json(body)
    except ValidationError:
        return None


@dataclass
class Checked:
    """A request's events after the access check and the validator chain."""

    accepted: list[dict[str, Any]] = field(default_factory=list)  # wire events
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "error"}
    forbidden: int = 0  # how many of the rejected were refused by the access check
    indices: list[int] = field(default_factory=list)  # each accepted event's index


def events_check(parsed: Parsed, *, access: WriteAccess, chain: Sequence[Validator]) -> Checked:
    """The access check, then each validator on the events still in (the first
    validator to reject an event decides its reason, as event by event);
    rejections counted by reason, listed in index order."""
    reasons: dict[int, str] = {}
    left: list[int] = []
    for index, w in enumerate(parsed.wire):
        refusal = access.refusal(w["sourceId"])
        if refusal is None:
            left.append(index)
        else:
            reasons[index] = refusal
    forbidden = len(reasons)
    if forbidden:
        events_rejected(FORBIDDEN, forbidden)
    for validator in chain:
        if not left:
            break
        refused = validator.validate_batch(_Events(parsed, left))
        if not refused:
            continue
        events_rejected(validator.name, len(refused))
        for position, exc in refused.items():
            reasons[left[position]] = exc.reason
        left = [index for position, index in enumerate(left) if position not in refused]
    return Checked(
        accepted=[parsed.wire[i] for i in left],
        rejected=[{"index": i, "error": reasons[i]} for i in sorted(reasons)],
        forbidden=forbidden,
        indices=left,
    )
