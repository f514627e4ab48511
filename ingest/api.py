"""POST /ingest and POST /ingest/batch."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from ingest.body import read_body
from ingest.schemas import Accepted, BatchAccepted, Event
from ingest.services import access_for, batch_ingest, event_ingest
from sources.cors import cors_mark, cors_preflight, cors_response_headers
from telemetron_site.config import get_config
from telemetron_site.schemas import ErrorOut

router = Router(tags=["ingest"])

_ACCEPTED = b'{"status":"accepted"}'
_ERRORS = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    413: ErrorOut,
    415: ErrorOut,
    429: ErrorOut,
    503: ErrorOut,
}
_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Event.model_json_schema(by_alias=True)}},
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": Event.model_json_schema(by_alias=True)}
            }
        },
    }
}


@router.post(
    "/ingest",
    response={202: Accepted, **_ERRORS},
    openapi_extra=_EVENT_BODY,
    summary="Ingest one event",
)
def ingest(request: HttpRequest) -> HttpResponse:
    """Accept one event. With durable acks (the default) the 202 means the
    event is committed to the queue."""
    cors_mark(request)
    access = access_for(request)
    body = read_body(request, limit=get_config().ingest.max_body_bytes)
    event_ingest(body=body, access=access)
    response = HttpResponse(_ACCEPTED, status=202, content_type="application/json")
    cors_response_headers(request, response)
    return response


@router.post(
    "/ingest/batch",
    response={202: BatchAccepted, **_ERRORS},
    openapi_extra=_BATCH_BODY,
    summary="Ingest a JSON array of events",
)
def ingest_batch(request: HttpRequest, response: HttpResponse) -> Status[dict[str, object]]:
    """Accept the valid events of an array; the others are listed by index."""
    cors_mark(request)
    access = access_for(request)
    cfg = get_config().ingest
    body = read_body(request, limit=cfg.max_body_bytes)
    result = batch_ingest(body=body, max_events=cfg.max_batch_events, access=access)
    cors_response_headers(request, response)
    return Status(202, {"accepted": result.accepted, "rejected": result.rejected})


@router.api_operation(["OPTIONS"], "/ingest", include_in_schema=False)
def ingest_preflight(request: HttpRequest) -> HttpResponse:
    return cors_preflight(request)


@router.api_operation(["OPTIONS"], "/ingest/batch", include_in_schema=False)
def ingest_batch_preflight(request: HttpRequest) -> HttpResponse:
    return cors_preflight(request)
