"""The Segment tracking API (``POST /v1/batch|track|identify|page|screen|group|alias``)
mapped onto Telemetron events, so SDKs that speak it (Segment's, RudderStack's, …)
send here by changing one host name.

A message becomes an event of the write key's source:

* ``type``: the ``event`` name of a ``track``, the call type otherwise;
* ``timestamp``: the message's time corrected for the client's clock, as Segment
  does: ``receivedAt - (sentAt - timestamp)`` (``originalTimestamp`` when the
  message has no ``timestamp``; no correction without a ``sentAt``; the time it
  was received when it has neither). Every time given (not null) must be an ISO
  8601 date and time within years 1000 to 2999
  (:data:`ingest.segment_schemas.SEGMENT_TIME_PATTERN`), used or not;
* ``data``: the rest of the message (properties or traits, context, userId,
  anonymousId, messageId, …) with ``originalTimestamp``, the client's own time;
* ``id``: the ``messageId``, so a message an SDK sends again (a retry of a
  request whose answer it never saw) is acknowledged and not counted twice.

Then it goes through exactly what ``/ingest/batch`` does (:func:`values_ingest`):
schema, access, validator chain, rate limit, durable commit, metrics.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

from core.config import get_config
from core.errors import BadRequest, PayloadTooLarge, Unauthorized
from core.metrics.recording import events_rejected
from core.metrics.series import TOO_LARGE, UNAUTHORIZED
from ingest.body import read_body
from ingest.segment_schemas import BATCH_LIMIT, CALL_TYPES, MESSAGE_LIMIT, SEGMENT_TIME_PATTERN
from ingest.services import json_parse, values_ingest
from plugins.base import MAX_DATA_DEPTH, format_timestamp
from plugins.storable import data_problem
from sources.access import WriteAccess, key_access, presented_key

__all__ = [
    "BATCH_LIMIT",
    "CALL_TYPES",
    "MESSAGE_LIMIT",
    "SegmentResult",
    "message_map",
    "segment_ingest",
]

# Message fields that become the event's own (the rest is its data).
_OWN_FIELDS = frozenset({"type", "event", "timestamp", "sentAt", "receivedAt", "writeKey"})
_TIME = re.compile(SEGMENT_TIME_PATTERN)


@dataclass
class SegmentResult:
    accepted: int
    rejected: list[dict[str, Any]]
    forbidden: int = 0  # of the rejected, refused for access (a disabled source, an origin)


def _instant(value: Any, field: str) -> datetime | None:
    """A time field of a message or a batch: None when absent (null), else an
    ISO 8601 date and time as the SDKs write it (an offset or ``Z``; none: UTC)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an ISO 8601 string")
    if not _TIME.fullmatch(value):
        raise ValueError(
            f"{field} is not an ISO 8601 date and time within years 1000 to 2999 "
            f"(e.g. 2023-10-27T09:30:00.000Z): {value[:64]!r}"
        )
    if value[-1] in "Zz":
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)  # (the pattern holds only valid dates)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _write_key_check(value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError("writeKey must be a string")


def message_map(
    message: Any,
    *,
    source_id: int,
    received_at: datetime,
    sent_at: Any = None,
    call: str | None = None,
    context: Any = None,
) -> dict[str, Any]:
    """One Segment message as a native event value (``/ingest``'s JSON), or
    ValueError naming what is wrong. ``call``: the endpoint's type (``/v1/track``);
    ``sent_at``, ``context``: the batch's, for messages without their own."""
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    kind = call or message.get("type")
    if kind not in CALL_TYPES:
        raise ValueError(f"type must be one of {', '.join(CALL_TYPES)}, not {kind!r}")
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a track message needs an event name ('event')")
    else:
        name = kind
    _write_key_check(message.get("writeKey"))
    own = _instant(message.get("timestamp"), "timestamp")
    original = _instant(message.get("originalTimestamp"), "originalTimestamp")
    sent = _instant(message.get("sentAt"), "sentAt") or _instant(sent_at, "sentAt")
    client = own or original
    timestamp = received_at if client is None else client
    if client is not None and sent is not None:  # years 1000-2999: never out of range
        timestamp = received_at - (sent - client)

    data = {k: v for k, v in message.items() if k not in _OWN_FIELDS}
    if context is not None and "context" not in data:
        data["context"] = context
    client_raw = message.get("timestamp") if own else message.get("originalTimestamp")
    if client is not None:
        data["originalTimestamp"] = client_raw
    value: dict[str, Any] = {
        "sourceId": source_id,
        "type": name,
        "timestamp": format_timestamp(timestamp),
        "data": data,
    }
    message_id = message.get("messageId")
    if isinstance(message_id, int | float) and not isinstance(message_id, bool):
        message_id = str(message_id)
    if message_id is not None:
        value["id"] = message_id
    return value


def _access(request: HttpRequest, body: Any) -> WriteAccess:
    key = presented_key(request)
    if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        key = body["writeKey"] or None
    try:
        return key_access(request, key)
    except Unauthorized:
        events_rejected(UNAUTHORIZED)
        raise


def _body(request: HttpRequest, limit: int) -> Any:
    try:
        body = read_body(request, limit=limit)
    except PayloadTooLarge as exc:  # Segment answers 400 for a body over its limits
        raise BadRequest(exc.message) from None  # (counted as too_large by read_body)
    value = json_parse(body)
    if not isinstance(value, dict):
        events_rejected()
        raise BadRequest("The body must be a JSON object")
    return value


def _too_large(message: Any) -> bool:
    size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
    return size > MESSAGE_LIMIT


def _batch_fields(body: dict[str, Any]) -> tuple[list[Any], Any, Any]:
    """A ``/v1/batch`` body's messages, ``sentAt`` and ``context``, or BadRequest:
    what is wrong with them refuses the whole request."""
    messages = body.get("batch")
    if not isinstance(messages, list):
        events_rejected()
        raise BadRequest("'batch' must be a JSON array of messages")
    if not messages:
        raise BadRequest("'batch' is empty: nothing accepted")
    limit = get_config().ingest.max_batch_events
    if len(messages) > limit:
        events_rejected(TOO_LARGE, len(messages))
        raise BadRequest(f"Batch has {len(messages)} messages; the limit is {limit}")
    sent_at, context = body.get("sentAt"), body.get("context")
    try:
        _instant(sent_at, "sentAt")
        _write_key_check(body.get("writeKey"))
        if problem := data_problem(context, MAX_DATA_DEPTH - 1):
            raise ValueError(f"context: {problem}")
    except ValueError as exc:
        events_rejected(count=len(messages))
        raise BadRequest(f"Invalid batch: {exc}") from None
    return messages, sent_at, context


def segment_ingest(request: HttpRequest, *, call: str | None) -> SegmentResult:
    """Take one call (``call``: its type) or a ``/v1/batch`` (``call`` None):
    every valid message is accepted; the answer lists the others by index
    (``SegmentResult.rejected``). Raises an ApiError for what refuses the whole
    request (auth, a malformed body, limits, rate limits, a queue that cannot take it)."""
    received_at = datetime.now(UTC)
    body = _body(request, MESSAGE_LIMIT if call else BATCH_LIMIT)
    access = _access(request, body)
    assert access.key_source is not None
    source_id = access.key_source.id
    if call is None:
        messages, sent_at, context = _batch_fields(body)
    else:
        messages, sent_at, context = [body], None, None

    rejected: list[dict[str, Any]] = []
    values: list[Any] = []
    where: list[int] = []  # index in the request of each value
    for index, message in enumerate(messages):
        if call is None and _too_large(message):
            events_rejected(TOO_LARGE)
            error = f"Invalid message: message exceeds the limit of {MESSAGE_LIMIT} bytes"
            rejected.append({"index": index, "error": error})
            continue
        try:
            value = message_map(
                message,
                source_id=source_id,
                received_at=received_at,
                sent_at=sent_at,
                call=call,
                context=context,
            )
        except ValueError as exc:
            events_rejected()
            rejected.append({"index": index, "error": f"Invalid message: {exc}"})
            continue
        values.append(value)
        where.append(index)
    result = values_ingest(values=values, access=access, meta=request.META) if values else None
    if result is not None:
        rejected += [{**r, "index": where[r["index"]]} for r in result.rejected]
        rejected.sort(key=lambda r: r["index"])
    if result is None:
        return SegmentResult(accepted=0, rejected=rejected)
    return SegmentResult(result.accepted, rejected, result.forbidden)
