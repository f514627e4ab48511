"""The Segment tracking API's routes: ``POST /v1/batch`` and one per call type
(:mod:`ingest.segment` maps the messages)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from core.errors import BadRequest, Forbidden
from core.schemas import ErrorOut, security_openapi
from ingest.segment import CALL_TYPES, segment_ingest
from sources.cors import cors_mark, cors_preflight, cors_response_headers

router = Router(tags=["segment"])

_SUCCESS = b'{"success":true}'
_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 415: ErrorOut, 429: ErrorOut, 503: ErrorOut}


class Success(Schema):
    success: bool = True


class SegmentMessage(Schema):
    """A Segment message (other fields are kept in the event's data)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(None, description="in a batch: " + ", ".join(CALL_TYPES))
    event: str | None = Field(None, description="track: the event name (the event's type)")
    userId: str | None = None
    anonymousId: str | None = None
    messageId: str | None = Field(
        None, description="exactly once: a repeat within ingest.dedup_window is not counted"
    )
    timestamp: str | None = Field(None, description="ISO 8601, the client's clock")
    sentAt: str | None = Field(None, description="ISO 8601, the client's clock when sent")
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    writeKey: str | None = Field(None, description="the write key, when not given by HTTP Basic")


class SegmentBatch(Schema):
    model_config = ConfigDict(extra="allow")

    batch: list[SegmentMessage]
    sentAt: str | None = None
    writeKey: str | None = None
    context: dict[str, Any] | None = None


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its ``#/$defs/…`` references replaced by what they name: in
    the OpenAPI document such a reference would point at the document's root."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


# /v1 always needs a write key (it names the source), whatever ingest.auth says.
_SECURITY = security_openapi("writeKeyBasic", "writeKey", "writeKeyHeader", "writeKeyQuery")


def _body_doc(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        **_SECURITY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(schema, schema.get("$defs", {}))}},
        },
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
    response={200: Success, **_ERRORS},
    openapi_extra=_body_doc(SegmentBatch),
    summary="Segment: a batch of messages (at most 500 KB, 32 KB each)",
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
        openapi_extra=_body_doc(SegmentMessage),
        summary=f"Segment: one {call} call (at most 32 KB)",
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
