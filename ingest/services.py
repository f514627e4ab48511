"""Ingest: parse, validate (schema, validators), transform, hand to the batcher."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from django.http import HttpRequest
from pydantic import ValidationError

from core.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    loc_text,
    validation_messages,
)
from core.metrics.recording import events_accepted, events_rejected
from core.metrics.series import FORBIDDEN, RATE_LIMITED, TOO_LARGE, UNAUTHORIZED
from ingest.backpressure import queue_gate_check
from ingest.batcher import get_batcher
from ingest.fast_parse import event_parse_fast, events_check, events_parse_fast
from ingest.transformation import client_info, events_transform
from plugins.base import Event, EventRejected, Transformer, Validator
from plugins.live import get_chains
from sources.access import WriteAccess, write_access
from sources.directory import SourceEntry
from sources.ratelimit import Limited, rate_take

__all__ = [
    "BatchResult",
    "access_for",
    "batch_ingest",
    "event_ingest",
    "event_parse",
    "values_ingest",
]


# No request to read the client from (a caller that is not a view: tests, benches).
_NO_META: Mapping[str, Any] = MappingProxyType({})


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


def access_for(request: HttpRequest) -> WriteAccess:
    """The request's write access (:func:`sources.access.write_access`); a 401
    counts one rejected event, as a body that is not JSON does."""
    try:
        return write_access(request)
    except Unauthorized:
        events_rejected(UNAUTHORIZED)
        raise


def _access_check(event: Event, access: WriteAccess) -> None:
    refusal = access.refusal(event.source_id)
    if refusal is not None:
        events_rejected(FORBIDDEN)
        raise Forbidden(refusal, [{"source_id": event.source_id, "reason": refusal}])


def _limited(counts: list[tuple[SourceEntry, int]], events: int) -> Limited:
    try:
        return rate_take(counts)
    except TooManyRequests:
        events_rejected(RATE_LIMITED, events)
        raise
    except PayloadTooLarge:  # more events than a burst: too large at any rate
        events_rejected(TOO_LARGE, events)
        raise


def _submit(wire: list[dict[str, Any]], limited: Limited) -> None:
    try:
        get_batcher().submit(wire)
    except ServiceUnavailable:
        limited.give_back()  # nothing was taken: the tokens are not spent
        raise
    events_accepted(len(wire))


def event_ingest(*, body: bytes, access: WriteAccess, meta: Mapping[str, Any] = _NO_META) -> None:
    """Accept one event (JSON object) or raise an ApiError. ``meta``: the
    request's ``META`` (the client's address and user agent, for transformers)."""
    event = event_parse_fast(body)
    if event is None:  # not one valid event: the path with the exact error messages
        event = event_parse(json_parse(body))
    _access_check(event, access)
    chains = get_chains()
    _validate(event, chains.validators)
    wire = event.to_wire()
    if chains.transformers:
        done = events_transform([wire], chain=chains.transformers, client=client_info(meta))
        if done.refused:
            name, message = done.refused[0]
            raise BadRequest(message, [{"transformer": name, "reason": message}])
        if not done.kept:
            return  # dropped: answered as accepted, nothing queued
        wire = done.kept[0]
    queue_gate_check()
    source = access.source(event.source_id)
    limited = _limited([(source, 1)], 1) if source is not None else Limited([])
    _submit([wire], limited)


@dataclass
class BatchResult:
    accepted: int = 0  # queued, or dropped by a transformer (answered as accepted)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    forbidden: int = 0  # of the rejected, refused for access (403)


def _nothing_accepted(rejected: list[dict[str, Any]], forbidden: int) -> ApiError:
    # A 400 when no element was a valid event; when some were, every one of
    # them was refused for access: a 403 (the OpenAPI document's `contains`).
    if forbidden:
        return Forbidden("No event accepted: none may be written with this access", rejected)
    return BadRequest("No event accepted", rejected)


def _per_source(source_ids: list[int], access: WriteAccess) -> list[tuple[SourceEntry, int]]:
    counts = Counter(source_ids)
    return [(s, n) for sid, n in counts.items() if (s := access.source(sid)) is not None]


def _too_many(events: int, max_events: int) -> PayloadTooLarge:
    events_rejected(TOO_LARGE, events)
    return PayloadTooLarge(f"Batch has {events} events; the limit is {max_events}")


def batch_ingest(
    *,
    body: bytes,
    max_events: int,
    access: WriteAccess,
    meta: Mapping[str, Any] = _NO_META,
) -> BatchResult:
    """Accept the valid events of a JSON array; report the others by index.
    A rate limit refuses the whole request (nothing taken)."""
    parsed = events_parse_fast(body)
    if parsed is not None:  # every event valid: parsed in one call, no Event per event
        if len(parsed) > max_events:
            raise _too_many(len(parsed), max_events)
        if not len(parsed):
            raise BadRequest("Batch is empty: nothing accepted")
        chains = get_chains()
        checked = events_check(parsed, access=access, chain=chains.validators)
        result = BatchResult(rejected=checked.rejected)
        if not checked.accepted:
            raise _nothing_accepted(result.rejected, checked.forbidden)
        wire = checked.accepted
        if chains.transformers:
            wire = _transform(wire, checked.indices, chains.transformers, meta, result)
            if not wire and not result.accepted:
                raise _nothing_accepted(result.rejected, checked.forbidden)
        return _batch_submit(wire, access, result)
    return _batch_ingest_per_event(body=body, max_events=max_events, access=access, meta=meta)


def _transform(
    wire: list[dict[str, Any]],
    indices: list[int],
    chain: Sequence[Transformer],
    meta: Mapping[str, Any],
    result: BatchResult,
) -> list[dict[str, Any]]:
    """The transformer chain over a request's accepted events (``indices``: their
    index in the request): the kept ones; the dropped ones counted as accepted,
    the refused ones added to ``result.rejected`` (in index order)."""
    done = events_transform(wire, chain=chain, client=client_info(meta))
    result.accepted += done.dropped
    if done.refused:
        result.rejected += [
            {"index": indices[i], "error": message} for i, (_, message) in done.refused.items()
        ]
        result.rejected.sort(key=lambda r: r["index"])
    return done.kept


def _batch_submit(
    wire: list[dict[str, Any]], access: WriteAccess, result: BatchResult
) -> BatchResult:
    if not wire:  # every event left was dropped by a transformer: nothing to queue
        return result
    queue_gate_check()
    limited = _limited(_per_source([w["sourceId"] for w in wire], access), len(wire))
    _submit(wire, limited)
    result.accepted += len(wire)
    return result


def _batch_ingest_per_event(
    *, body: bytes, max_events: int, access: WriteAccess, meta: Mapping[str, Any]
) -> BatchResult:
    """The path of a body the fast parse declined: event by event, so each
    error is reported with its index and exact message."""
    values = json_parse(body)
    if not isinstance(values, list):
        events_rejected()
        raise BadRequest("Request body must be a JSON array of events")
    if len(values) > max_events:
        raise _too_many(len(values), max_events)
    if not values:
        raise BadRequest("Batch is empty: nothing accepted")
    result = values_ingest(values=values, access=access, meta=meta)
    if not result.accepted:
        raise _nothing_accepted(result.rejected, result.forbidden)
    return result


def values_ingest(
    *,
    values: list[Any],
    access: WriteAccess,
    meta: Mapping[str, Any] = _NO_META,
) -> BatchResult:
    """Accept the valid events of decoded JSON values (the /ingest/batch path,
    shared by the Segment API): schema, access, validators, transformers, then
    the rate limit and the commit for all the kept ones at once. Nothing is taken
    when none is valid (``accepted == 0``; the caller answers)."""
    chains = get_chains()
    chain = chains.validators
    result = BatchResult()
    accepted: list[Event] = []
    indices: list[int] = []
    for index, value in enumerate(values):
        try:
            event = event_parse(value)
            _access_check(event, access)
            _validate(event, chain)
        except (BadRequest, Forbidden) as exc:
            result.forbidden += isinstance(exc, Forbidden)
            result.rejected.append({"index": index, "error": exc.message})
            continue
        accepted.append(event)
        indices.append(index)
    if not accepted:
        return result
    wire = [e.to_wire() for e in accepted]
    if chains.transformers:
        wire = _transform(wire, indices, chains.transformers, meta, result)
    return _batch_submit(wire, access, result)
