"""POST /ingest and POST /ingest/batch."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from core.config import get_config
from core.schemas import ErrorOut, error_responses_openapi, security_openapi
from ingest.body import read_body
from ingest.schemas import (
    EVENT_EXAMPLE,
    Accepted,
    BatchAccepted,
    batch_body_schema,
    event_body_schema,
)
from ingest.services import access_for, batch_ingest, event_ingest
from sources.cors import cors_mark, cors_preflight, cors_response_headers

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


_WHEN = {
    400: "Not JSON, not a valid event, or refused by a validator (`details` says which).",
    401: 'No or unknown write key (`ingest.auth = "required"`).',
    403: "Another source's event, a disabled source, or a browser origin the source "
    "does not allow.",
    413: "The body is larger than `ingest.max_body_bytes` (after gzip).",
    415: "A Content-Encoding other than gzip or identity.",
    429: "Over the source's rate limit: nothing was taken.",
    503: "The queue cannot take the events now, or its backlog is full: nothing was taken.",
}
_WHEN_BATCH = {
    **_WHEN,
    400: "Not a JSON array, an empty one, or no valid event in it (`details` lists each "
    "refused event by index).",
    403: "Every valid event refused for access (another source's, a disabled source's); "
    "`details` lists the invalid ones too.",
    413: "The body is larger than `ingest.max_body_bytes` (after gzip), the array has more "
    f"than {get_config().ingest.max_batch_events} elements (`ingest.max_batch_events`), or "
    "it holds more events of a source than its rate limit's burst: nothing was taken.",
}


_EXAMPLES: dict[int, dict[str, object]] = {
    400: {
        "error": "Invalid event: sourceId: Field required",
        "details": [{"field": "sourceId", "message": "Field required"}],
    },
    401: {"error": "Unknown or revoked write key", "details": []},
    403: {
        "error": "The write key is for source 1, not 2",
        "details": [{"source_id": 2, "reason": "The write key is for source 1, not 2"}],
    },
    413: {"error": "Request body exceeds the limit of 1048576 bytes", "details": []},
    415: {"error": "Unsupported Content-Encoding: br (use gzip or none)", "details": []},
    429: {"error": "Rate limit exceeded for source 1; retry in 0.50 s", "details": []},
    503: {
        "error": "Queue backlog of 10000 batches is at its limit of 10000 (workers down or "
        "behind); retry later",
        "details": [],
    },
}
_EXAMPLES_BATCH: dict[int, dict[str, object]] = {
    **_EXAMPLES,
    400: {
        "error": "No event accepted",
        "details": [{"index": 0, "error": "Invalid event: type: Field required"}],
    },
    413: {"error": "Batch has 1001 events; the limit is 1000", "details": []},
}


def _body(
    schema: dict[str, object],
    example: object,
    errors: dict[int, str],
    examples: dict[int, dict[str, object]],
) -> dict[str, object]:
    out: dict[str, object] = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        },
        "responses": error_responses_openapi(errors, examples),
    }
    if get_config().ingest.auth == "required":  # a source's write key, any of four ways
        out |= security_openapi("writeKey", "writeKeyBasic", "writeKeyHeader", "writeKeyQuery")
    return out


_EVENT_BODY = _body(event_body_schema(), EVENT_EXAMPLE, _WHEN, _EXAMPLES)
_BATCH_BODY = _body(
    batch_body_schema(max_events=get_config().ingest.max_batch_events),
    [EVENT_EXAMPLE, {**EVENT_EXAMPLE, "sourceId": 2}],
    _WHEN_BATCH,
    _EXAMPLES_BATCH,
)


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
    event_ingest(body=body, access=access, meta=request.META)
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
    result = batch_ingest(
        body=body, max_events=cfg.max_batch_events, access=access, meta=request.META
    )
    cors_response_headers(request, response)
    return Status(202, {"accepted": result.accepted, "rejected": result.rejected})


@router.api_operation(["OPTIONS"], "/ingest", include_in_schema=False)
def ingest_preflight(request: HttpRequest) -> HttpResponse:
    return cors_preflight(request)


@router.api_operation(["OPTIONS"], "/ingest/batch", include_in_schema=False)
def ingest_batch_preflight(request: HttpRequest) -> HttpResponse:
    return cors_preflight(request)
