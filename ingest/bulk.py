"""The cheap path of ``POST /ingest`` and ``POST /ingest/batch`` (issue 11).

A body is parsed and validated as Events in one call into pydantic-core
(``TypeAdapter(list[Event]).validate_json``) instead of ``json.loads`` and one
``Event.model_validate`` per event; validators see the request's events at once
(:meth:`plugins.base.Validator.validate_batch`).

The fast parse is exact or it declines: on any body it does not take as a
whole (a schema error in one event, JSON it would read otherwise than
``json.loads``), it returns None and the caller runs the per-event path, so
every error message, index and rejection count stays what it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ops.metrics.recording import events_rejected
from plugins.base import Event, Validator
from sources.access import WriteAccess

__all__ = ["Checked", "event_parse_fast", "events_check", "events_parse_fast"]

FORBIDDEN = "forbidden"  # as ingest.services.FORBIDDEN (the metric's reason label)

_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

# json.loads refuses these constants (ingest.services.json_parse); pydantic-core
# reads them as floats. A body holding one, even inside a string, takes the
# per-event path.
_CONSTANTS = (b"NaN", b"Infinity")


def _declined(body: bytes) -> bool:
    return any(constant in body for constant in _CONSTANTS)


def events_parse_fast(body: bytes) -> list[Event] | None:
    """A JSON array of valid events, parsed and validated in one call; None when
    the body is anything else (not JSON, not an array, one invalid event)."""
    if _declined(body):
        return None
    try:
        return _EVENTS.validate_json(body)
    except ValidationError:
        return None


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

    accepted: list[Event] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "error"}
    forbidden: int = 0  # how many of the rejected were refused by the access check


def events_check(
    events: list[Event], *, access: WriteAccess, chain: Sequence[Validator]
) -> Checked:
    """The access check, then each validator on the events still in (the first
    validator to reject an event decides its reason, as event by event);
    rejections counted by reason, listed in index order."""
    reasons: dict[int, str] = {}
    left: list[tuple[int, Event]] = []
    for index, event in enumerate(events):
        refusal = access.refusal(event.source_id)
        if refusal is None:
            left.append((index, event))
        else:
            reasons[index] = refusal
    forbidden = len(reasons)
    if forbidden:
        events_rejected(FORBIDDEN, forbidden)
    for validator in chain:
        if not left:
            break
        refused = validator.validate_batch([event for _, event in left])
        if not refused:
            continue
        events_rejected(validator.name, len(refused))
        for position, exc in refused.items():
            reasons[left[position][0]] = exc.reason
        left = [item for position, item in enumerate(left) if position not in refused]
    return Checked(
        accepted=[event for _, event in left],
        rejected=[{"index": i, "error": reasons[i]} for i in sorted(reasons)],
        forbidden=forbidden,
    )
