"""GET /stats and GET /stats/{source_id}."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from plugins.base import U64_MAX, format_timestamp
from sources.access import read_access_check
from sources.live import get_directory
from stats.store import get_store
from telemetron_site.errors import BadRequest, NotFound
from telemetron_site.schemas import ErrorOut

router = Router(tags=["stats"])
_READ_ERRORS = {401: ErrorOut, 403: ErrorOut}


class Summary(Schema):
    sources_count: int
    events_count: int


class SourceOut(Schema):
    source_id: int
    name: str | None  # the Source's name (sources app); None for an unregistered id
    total_events: int
    first_event: str
    last_event: str
    event_types: dict[str, int]


@router.get("/stats", response={200: Summary, **_READ_ERRORS}, summary="Totals over every source")
def stats_summary(request: HttpRequest) -> dict[str, int]:
    read_access_check(request, scope="stats")
    sources, events = get_store().totals()
    return {"sources_count": sources, "events_count": events}


@router.get(
    "/stats/{source_id}",
    response={200: SourceOut, 400: ErrorOut, 404: ErrorOut, **_READ_ERRORS},
    summary="Statistics of one source",
)
def stats_source(request: HttpRequest, source_id: str) -> dict[str, object]:
    read_access_check(request, scope="stats")
    if not source_id.isascii() or not source_id.isdigit():
        raise BadRequest(f"Invalid source id: {source_id!r} is not a non-negative integer")
    digits = source_id.lstrip("0") or "0"
    # Length first: int() refuses strings of over 4300 digits (a 500, not a 400).
    if len(digits) > len(str(U64_MAX)) or int(digits) > U64_MAX:
        shown = (
            source_id if len(source_id) <= 40 else f"{source_id[:20]}... ({len(source_id)} digits)"
        )
        raise BadRequest(f"Invalid source id: {shown} is out of range (0 to {U64_MAX})")
    sid = int(digits)
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
