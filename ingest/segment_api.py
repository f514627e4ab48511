"""The Segment tracking API's routes: ``POST /v1/batch`` and one per call type
(:mod:`ingest.segment` maps the messages)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from ingest.segment import BATCH_LIMIT, CALL_TYPES, MESSAGE_LIMIT, segment_ingest
from ingest.segment_schemas import segment_body_schema
from sources.cors import cors_mark, cors_preflight, cors_response_headers
from telemetron_site.config import get_config
from telemetron_site.errors import BadRequest, Forbidden
from telemetron_site.schemas import ErrorOut, error_responses_openapi, security_openapi

router = Router(tags=["segment"])

_SUCCESS = b'{"success":true}'
_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 415: ErrorOut, 429: ErrorOut, 503: ErrorOut}
_BATCH_ERRORS = {**_ERRORS, 413: ErrorOut}
_WHEN = {
    400: "Not a JSON object, over the size limits, or a refused message (`details` lists "
    "each by index; the others are accepted).",
    401: "No or unknown write key.",
    403: "Every message refused for access (a disabled source, a browser origin the source "
    "does not allow).",
    415: "A Content-Encoding other than gzip or identity.",
    429: "Over the source's rate limit: nothing was taken.",
    503: "The queue cannot take the events now, or its backlog is full: nothing was taken.",
}
_WHEN_BATCH = {
    **_WHEN,
    413: "More messages of the source than its rate limit's burst: nothing was taken.",
}


class Success(Schema):
    success: bool = True


# /v1 always needs a write key (it names the source), whatever ingest.auth says.
_SECURITY = security_openapi("writeKeyBasic", "writeKey", "writeKeyHeader", "writeKeyQuery")


def _body_doc(call: str | None) -> dict[str, Any]:
    schema = segment_body_schema(call, max_messages=get_config().ingest.max_batch_events)
    return {
        **_SECURITY,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": error_responses_openapi(_WHEN if call else _WHEN_BATCH),
    }


def _answer(request: HttpRequest, call: str | None) -> HttpResponse:
    cors_mark(request)
    result = segment_ingest(request, call=call)
    if result.rejected:
        first = result.rejected[0]["error"]
        if not result.accepted and result.forbidden == len(result.rejected):
            raise Forbidden(first, result.rejected)
        if call is not None:
            raise BadRequest(first, result.rejected)
        raise BadRequest(
            f"{len(result.rejected)} messages refused, {result.accepted} accepted; first:"
            f" #{result.rejected[0]['index']}: {first}",
            result.rejected,
        )
    response = HttpResponse(_SUCCESS, status=200, content_type="application/json")
    cors_response_headers(request, response)
    return response


_DESCRIPTION = (
    "Segment tracking API: HTTP Basic with the write key as user name (or `writeKey` in"
    ' the body), `Content-Encoding: gzip` accepted. `200 {"success": true}` when every'
    " message is accepted; `400` lists the refused ones by index (the others are"
    " accepted, and a retry of them is not counted twice: `messageId`)."
)


@router.post(
    "/v1/batch",
    response={200: Success, **_BATCH_ERRORS},
    openapi_extra=_body_doc(None),
    summary=f"Segment: a batch of messages (at most {BATCH_LIMIT // 1024} KB, "
    f"{MESSAGE_LIMIT // 1024} KB each)",
    description=_DESCRIPTION,
)
def segment_batch(request: HttpRequest) -> HttpResponse:
    return _answer(request, None)


def _call_route(call: str) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        return _answer(request, call)

    view.__name__ = f"segment_{call}"
    router.post(
        f"/v1/{call}",
        response={200: Success, **_ERRORS},
        openapi_extra=_body_doc(call),
        summary=f"Segment: one {call} call (at most {MESSAGE_LIMIT // 1024} KB)",
        description=_DESCRIPTION,
        operation_id=f"segment_{call}",
    )(view)

    def preflight(request: HttpRequest) -> HttpResponse:
        return cors_preflight(request)

    preflight.__name__ = f"segment_{call}_preflight"
    router.api_operation(["OPTIONS"], f"/v1/{call}", include_in_schema=False)(preflight)


for _call in CALL_TYPES:
    _call_route(_call)


@router.api_operation(["OPTIONS"], "/v1/batch", include_in_schema=False)
def segment_batch_preflight(request: HttpRequest) -> HttpResponse:
    return cors_preflight(request)
