"""Request and response shapes of the ingest API (the Event itself is part of
the plugin contract, in plugins.base; the error shape is the API's,
telemetron_site.schemas), and the OpenAPI schemas of the two request bodies,
which the views read raw (ingest.body) and so declare by hand: what
``Event.model_json_schema`` says plus what the event's own checks refuse
(plugins.base, plugins.storable), so that a body is valid by the schema exactly
when the server takes it (tests/e2e/test_openapi_contract.py runs schemathesis)."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from plugins.base import MAX_DATA_DEPTH, Event

__all__ = [
    "EVENT_EXAMPLE",
    "OPENAPI_COMPONENTS",
    "TIMESTAMP_PATTERN",
    "TYPE_PATTERN",
    "Accepted",
    "BatchAccepted",
    "Event",
    "Rejection",
    "batch_body_schema",
    "event_body_schema",
]


class Accepted(Schema):
    status: Literal["accepted"] = "accepted"


class Rejection(Schema):
    index: int = Field(ge=0, description="The event's position in the array (from 0).")
    error: str


class BatchAccepted(Schema):
    accepted: int = Field(ge=1, description="Events taken (a 202 takes at least one).")
    rejected: list[Rejection]


# Characters str.strip() removes (Python's whitespace): a type of these only is
# refused ("must not be empty"). Spelled out, as JSON Schema's regular
# expressions (ECMA-262) and Python's disagree on what \s matches.
_SPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Some character that is not whitespace; no NUL anywhere (plugins.storable).
TYPE_PATTERN = rf"^[^\u0000]*[^\u0000{_SPACE}][^\u0000]*$"
_NO_NUL = r"^[^\u0000]*$"
# RFC 3339 with an offset, as plugins.base.parse_timestamp reads it, within years
# 1 to 9999 once in UTC: on the first and the last day of that range only UTC
# itself (Z, +00:00) is described (another offset may cross the range's ends).
_MONTH_DAY = r"(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_DATE_INNER = (
    r"(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
    + _MONTH_DAY
    + r"|0001-((0[2-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])|01-(0[2-9]|[12][0-9]|3[01]))"
    + r"|9999-((0[1-9]|1[01])-(0[1-9]|[12][0-9]|3[01])|12-(0[1-9]|[12][0-9]|30))"
)
_TIME = r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
TIMESTAMP_PATTERN = (
    rf"^(({_DATE_INNER}){_TIME}([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    rf"|(0001-01-01|9999-12-31){_TIME}([Zz]|[+-]00:00))$"
)

EVENT_EXAMPLE = {"sourceId": 1, "type": "Heartbeat", "timestamp": "2023-10-27T09:30:00Z"}
_REF = "#/components/schemas/{}"


def _event_schema() -> dict[str, Any]:
    schema = Event.model_json_schema(by_alias=True)
    props = schema["properties"]
    props["sourceId"]["description"] = (
        "An integer 0 to 2^64-1; a number without a fraction (1325.0) is that integer."
    )
    props["type"]["pattern"] = TYPE_PATTERN
    props["type"]["description"] = "Not only whitespace; no NUL character."
    props["timestamp"]["pattern"] = TIMESTAMP_PATTERN
    for option in props["id"]["anyOf"]:
        if option.get("type") == "string":
            option["pattern"] = _NO_NUL
    props["id"]["description"] = (
        "Optional, no NUL character: a repeat of (source, id) within ingest.dedup_window"
        " is acknowledged and not counted again."
    )
    props["timestamp"]["description"] = (
        "RFC 3339 with an offset, within years 1 to 9999 once in UTC; stored in UTC."
    )
    props["data"] = {
        "$ref": _REF.format("JsonValue"),
        "description": f"Any JSON, nested at most {MAX_DATA_DEPTH} arrays/objects deep; "
        "no NUL character in its strings and keys.",
    }
    schema["examples"] = [EVENT_EXAMPLE, {**EVENT_EXAMPLE, "data": {"battery": 87}}]
    return schema


# Any JSON value whose strings and keys hold no NUL (plugins.storable); the
# depth limit is in the Event's description (JSON Schema cannot count depth).
_JSON_VALUE = {
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": _NO_NUL},
        {"type": "array", "items": {"$ref": _REF.format("JsonValue")}},
        {
            "type": "object",
            "propertyNames": {"pattern": _NO_NUL},
            "additionalProperties": {"$ref": _REF.format("JsonValue")},
        },
    ]
}

# Added to the document's components by telemetron_site.api.
OPENAPI_COMPONENTS: dict[str, dict[str, Any]] = {
    "Event": _event_schema(),
    "JsonValue": _JSON_VALUE,
}


def event_body_schema() -> dict[str, Any]:
    return {"$ref": _REF.format("Event")}


def batch_body_schema(*, max_events: int) -> dict[str, Any]:
    """A non-empty array of which at least one value is an Event (the others
    are answered in ``rejected``, by index). More than ``max_events`` values is
    a 413 (DESIGN's contract), said in words and not by ``maxItems``: a body the
    schema refuses is one the server answers 400."""
    return {
        "type": "array",
        "minItems": 1,
        "contains": {"$ref": _REF.format("Event")},
        "items": {},
        "description": "Events; an element that is not a valid event is refused alone, "
        "listed in the answer's `rejected`. An array with no valid event is a 400; one of "
        f"more than {max_events} elements (`ingest.max_batch_events`) is a 413.",
        "examples": [[EVENT_EXAMPLE, {**EVENT_EXAMPLE, "sourceId": 2, "type": "Boot"}]],
    }
