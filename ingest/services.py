"""Ingest: parse, validate (schema, then the validator chain), hand to the batcher."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ingest.backpressure import queue_gate_check
from ingest.batcher import get_batcher
from ops.metrics.recording import events_accepted, events_rejected
from plugins.base import Event, EventRejected, Validator
from plugins.live import get_chains
from telemetron_site.errors import BadRequest, PayloadTooLarge, loc_text, validation_messages

__all__ = ["BatchResult", "batch_ingest", "event_ingest", "event_parse"]


def _schema_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": loc_text(loc, "body"), "message": msg} for loc, msg in validation_messages(exc)
    ]


def _schema_message(details: list[dict[str, str]]) -> str:
    first = details[0]
    return f"Invalid event: {first['field']}: {first['message']}"


def event_parse(value: Any) -> Event:
    """Validate one decoded JSON value as an Event; raise BadRequest."""
    if not isinstance(value, dict):
        events_rejected()
        raise BadRequest("Invalid event: expected a JSON object")
    try:
        return Event.model_validate(value)
    except ValidationError as exc:
        details = _schema_details(exc)
        events_rejected()
        raise BadRequest(_schema_message(details), details) from None


def _validate(event: Event, chain: Sequence[Validator]) -> None:
    for validator in chain:
        try:
            validator.validate(event)
        except EventRejected as exc:
            events_rejected(validator.name)
            raise BadRequest(
                exc.reason, [{"validator": validator.name, "reason": exc.reason}]
            ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_parse(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity, which no database's JSON type can store)."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        events_rejected()  # a body that is not JSON counts as one rejected event
        raise BadRequest(f"Invalid JSON: {exc}") from None
    except RecursionError:
        events_rejected()
        raise BadRequest("Invalid JSON: nested too deeply") from None


def event_ingest(*, body: bytes) -> None:
    """Accept one event (JSON object) or raise an ApiError."""
    event = event_parse(json_parse(body))
    _validate(event, get_chains().validators)
    queue_gate_check()
    get_batcher().submit([event.to_wire()])
    events_accepted(1)


@dataclass
class BatchResult:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def batch_ingest(*, body: bytes, max_events: int) -> BatchResult:
    """Accept the valid events of a JSON array; report the others by index."""
    values = json_parse(body)
    if not isinstance(values, list):
        events_rejected()
        raise BadRequest("Request body must be a JSON array of events")
    if len(values) > max_events:
        raise PayloadTooLarge(f"Batch has {len(values)} events; the limit is {max_events}")
    if not values:
        raise BadRequest("Batch is empty: nothing accepted")

    chain = get_chains().validators
    result = BatchResult()
    wire: list[dict[str, Any]] = []
    for index, value in enumerate(values):
        try:
            event = event_parse(value)
            _validate(event, chain)
        except BadRequest as exc:
            result.rejected.append({"index": index, "error": exc.message})
            continue
        wire.append(event.to_wire())
    if not wire:
        raise BadRequest("No event accepted", result.rejected)
    queue_gate_check()
    get_batcher().submit(wire)
    events_accepted(len(wire))
    result.accepted = len(wire)
    return result
