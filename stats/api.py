"""GET /stats and GET /stats/{source_id}."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field, WithJsonSchema

from core.config import get_config
from core.errors import BadRequest, NotFound
from core.schemas import ErrorOut, error_responses_openapi, security_openapi
from plugins.base import U64_MAX, format_timestamp
from sources.access import read_access_check
from sources.live import get_directory
from stats.store import get_store

router = Router(tags=["stats"])
_READ_ERRORS = {401: ErrorOut, 403: ErrorOut}
_WHEN = {
    401: 'No or unknown read token (`security.read_auth = "token"`).',
    403: "A read token without the scope `stats`.",
}
_WHEN_SOURCE = {
    **_WHEN,
    400: "The id is not a non-negative integer in decimal digits, or over 2^64-1.",
    404: "No event of this source id was counted.",
}
_SECURITY = security_openapi("readToken") if get_config().security.read_auth == "token" else {}
# The view reads the id itself (source_id_parse, its own 400s); the document says
# what it takes.
SourceIdParam = Annotated[
    str,
    WithJsonSchema(
        {"type": "integer", "minimum": 0, "maximum": U64_MAX},
    ),
]


class Summary(Schema):
    sources_count: int = Field(ge=0)
    events_count: int = Field(ge=0)


class SourceOut(Schema):
    source_id: int = Field(ge=0, le=U64_MAX)
    name: str | None  # the Source's name (sources app); None for an unregistered id
    total_events: int = Field(ge=1)
    first_event: str = Field(description="The earliest event timestamp, RFC 3339 in UTC (Z).")
    last_event: str = Field(description="The latest event timestamp, RFC 3339 in UTC (Z).")
    event_types: dict[str, int] = Field(description="Events counted by type.")


# A number written with a fraction or an exponent (what a client that holds the
# id as a JSON number may send: 1325.0, 1.325e3); taken when it is an integer.
_DECIMAL = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,3})?")


def source_id_parse(text: str) -> int:
    """The path's source id: decimal digits (leading zeros allowed), or a
    decimal number of integer value (1325.0 is 1325, as in JSON Schema's
    ``integer``); 0 to 2^64-1. Else BadRequest."""
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        # Length first: int() refuses strings of over 4300 digits (a 500, not a 400).
        if len(digits) <= len(str(U64_MAX)) and int(digits) <= U64_MAX:
            return int(digits)
        shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"
        raise BadRequest(f"Invalid source id: {shown} is out of range (0 to {U64_MAX})")
    if _DECIMAL.fullmatch(text):
        value = Decimal(text)
        if value == value.to_integral_value() and value >= 0:
            if value <= U64_MAX:
                return int(value)
            raise BadRequest(f"Invalid source id: {text} is out of range (0 to {U64_MAX})")
    raise BadRequest(f"Invalid source id: {text!r} is not a non-negative integer")


@router.get(
    "/stats",
    response={200: Summary, **_READ_ERRORS},
    openapi_extra={"responses": error_responses_openapi(_WHEN), **_SECURITY},
    summary="Totals over every source",
)
def stats_summary(request: HttpRequest) -> dict[str, int]:
    read_access_check(request, scope="stats")
    sources, events = get_store().totals()
    return {"sources_count": sources, "events_count": events}


@router.get(
    "/stats/{source_id}",
    response={200: SourceOut, 400: ErrorOut, 404: ErrorOut, **_READ_ERRORS},
    openapi_extra={"responses": error_responses_openapi(_WHEN_SOURCE), **_SECURITY},
    summary="Statistics of one source",
)
def stats_source(request: HttpRequest, source_id: SourceIdParam) -> dict[str, object]:
    read_access_check(request, scope="stats")
    sid = source_id_parse(source_id)
    view = get_store().source(sid)
    if view is None:
        raise NotFound(f"Source id {sid} not found")
    source = get_directory().sources.get(sid)
    return {
        "source_id": view.source_id,
        "name": source.name if source is not None else None,
        "total_events": view.total_events,
        "first_event": format_timestamp(view.first_event),
        "last_event": format_timestamp(view.last_event),
        "event_types": view.event_types,
    }
