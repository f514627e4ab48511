"""The OpenAPI schemas of the Segment API's bodies (``/v1/*``, :mod:`ingest.segment`),
written by hand as the native ones are (:mod:`ingest.schemas`): a body is valid
by its schema exactly when the server takes every message of it
(tests/e2e/test_openapi_contract.py runs schemathesis on them).

What a message's fields are to the server, and so to its schema:

* read by the server: ``type`` (in a batch), ``event`` (of a track), the times
  (``timestamp``, ``originalTimestamp``, ``sentAt``: :data:`SEGMENT_TIME_PATTERN`),
  ``messageId`` (the event's id) and ``writeKey``: each described by its rule;
* ignored (``receivedAt``; ``type`` at a call's own route; ``event`` of any
  other call): any value;
* everything else is kept in the event's data: any JSON value storable there
  (no NUL character in its strings and keys; the depth limit in words).
"""

from __future__ import annotations

from typing import Any

from ingest.schemas import TYPE_PATTERN
from plugins.base import MAX_DATA_DEPTH, MAX_ID_LENGTH, MAX_TYPE_LENGTH

__all__ = [
    "BATCH_LIMIT",
    "CALL_TYPES",
    "MESSAGE_LIMIT",
    "SEGMENT_COMPONENTS",
    "SEGMENT_TIME_PATTERN",
    "segment_body_schema",
]

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MESSAGE_LIMIT = 32 * 1024  # bytes of one message (a call's body, or one of a batch)
BATCH_LIMIT = 500 * 1024  # bytes of a /v1/batch body

# ISO 8601 as the SDKs write it: a date and a time to the second (a fraction
# optional), separated by T (or a space), an offset optional (none: UTC; with or
# without its colon), within years 1000 to 2999, so that the clock correction of
# any two such times stays within the range of a date. The calendar is spelled
# out, leap days included (RFC 3339's `date-time` format needs an offset).
_LEAP_YEAR = r"[12][0-9](0[48]|[2468][048]|[13579][26])|(1[26]|2[048])00"
_DATE = (
    r"[12][0-9]{3}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)"
    rf"|(0[13578]|1[02])-31)|({_LEAP_YEAR})-02-29"
)
_OFFSET = r"[Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9]"
SEGMENT_TIME_PATTERN = (
    rf"^({_DATE})[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?({_OFFSET})?$"
)

_REF = "#/components/schemas/{}"
_NO_NUL = r"^[^\u0000]*$"
_ANY: dict[str, Any] = {}
_KEPT = {"$ref": _REF.format("JsonValue")}


def _kept(description: str) -> dict[str, Any]:
    return {**_KEPT, "description": description}


def _ignored(description: str) -> dict[str, Any]:
    return {**_ANY, "description": description}


_TIME_RULE = (
    "ISO 8601 date and time to the second (e.g. 2023-10-27T09:30:00.000Z; no offset: UTC), "
    "within years 1000 to 2999."
)


def _time(description: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "string", "pattern": SEGMENT_TIME_PATTERN}, {"type": "null"}],
        "description": f"{description} {_TIME_RULE}",
    }


_SENT_AT = (
    "When the client sent it, by its clock: the event's time is corrected by the "
    "difference to the time received."
)
_TIMES = {
    "timestamp": _time("When it happened, by the client's clock."),
    "originalTimestamp": _time("The client's time when there is no `timestamp` (RudderStack)."),
    "sentAt": _time(_SENT_AT),
}
_MESSAGE_ID = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": _NO_NUL},
        {"type": "number"},
        {"type": "null"},
    ],
    "description": "The event's id (a number is taken as its text): a repeat within "
    "ingest.dedup_window is acknowledged and not counted again.",
}
_WRITE_KEY = {
    "type": ["string", "null"],
    "description": "The source's write key, when the request gives none (HTTP Basic, …).",
}
_COMMON: dict[str, Any] = {
    "userId": _kept("The user's id (kept in the event's data, as every other field)."),
    "anonymousId": _kept("The anonymous visitor's id."),
    "properties": _kept("A track's, page's or screen's properties."),
    "traits": _kept("An identify's or group's traits."),
    "context": _kept("The client's context (library, device, …)."),
    **_TIMES,
    "messageId": _MESSAGE_ID,
    "writeKey": _WRITE_KEY,
    "receivedAt": _ignored("Ignored: the server's own time of receipt is used."),
}
_EVENT_NAME = {
    "type": "string",
    "maxLength": MAX_TYPE_LENGTH,
    "pattern": TYPE_PATTERN,
    "description": "The event's name (its type in Telemetron): not only whitespace, "
    "no NUL character.",
}
_IGNORED_EVENT = _ignored("Ignored: the event's type is the call's.")


def _message(properties: dict[str, Any], required: list[str], title: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": title,
        "properties": {**_COMMON, **properties},
        "required": required,
        "propertyNames": {"pattern": _NO_NUL},
        "additionalProperties": _KEPT,
        "description": f"Any other field is kept in the event's data; it may nest at most "
        f"{MAX_DATA_DEPTH} arrays/objects deep. At most {MESSAGE_LIMIT // 1024} KB.",
    }


_ROUTE_TYPE = _ignored("Ignored: the route names the call.")
_OTHER_CALLS = [c for c in CALL_TYPES if c != "track"]

SEGMENT_COMPONENTS: dict[str, dict[str, Any]] = {
    "SegmentTrackCall": _message(
        {"type": _ROUTE_TYPE, "event": _EVENT_NAME}, ["event"], "SegmentTrackCall"
    ),
    "SegmentCall": _message({"type": _ROUTE_TYPE, "event": _IGNORED_EVENT}, [], "SegmentCall"),
    "SegmentTrackMessage": _message(
        {"type": {"const": "track"}, "event": _EVENT_NAME}, ["type", "event"], "SegmentTrackMessage"
    ),
    "SegmentMessage": _message(
        {"type": {"enum": _OTHER_CALLS}, "event": _IGNORED_EVENT}, ["type"], "SegmentMessage"
    ),
}


def _batch_schema(max_messages: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "batch": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_messages,
                "items": {
                    "anyOf": [
                        {"$ref": _REF.format("SegmentTrackMessage")},
                        {"$ref": _REF.format("SegmentMessage")},
                    ]
                },
                "description": f"1 to {max_messages} messages (`ingest.max_batch_events`); "
                "an invalid one is refused alone (the answer's `details`, by index).",
            },
            "sentAt": _time(f"For messages without their own. {_SENT_AT}"),
            "context": _kept(
                "For messages without their own (so nested at most "
                f"{MAX_DATA_DEPTH - 1} arrays/objects deep)."
            ),
            "writeKey": _WRITE_KEY,
        },
        "required": ["batch"],
        "additionalProperties": _ignored("Ignored."),
        "description": f"At most {BATCH_LIMIT // 1024} KB (after gzip).",
    }


def segment_body_schema(call: str | None, *, max_messages: int) -> dict[str, Any]:
    """The schema of a call's body (``call``: its type) or of a ``/v1/batch``'s."""
    if call is None:
        return _batch_schema(max_messages)
    return {"$ref": _REF.format("SegmentTrackCall" if call == "track" else "SegmentCall")}
