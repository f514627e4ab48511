"""Shapes every router of the API shares: the error answer, and what the
OpenAPI document says of each error status (its headers, an example)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ninja import Schema
from pydantic import Field

__all__ = ["SECURITY_SCHEMES", "ErrorOut", "error_responses_openapi", "security_openapi"]


class ErrorOut(Schema):
    """Every error answer of the API (telemetron_site.errors)."""

    error: str = Field(description="What is wrong, in one sentence.")
    details: list[Any] = Field(
        description="Each refused field, event, message or check; `[]` when there is no more "
        "to say.",
    )


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'Always `Bearer realm="telemetron"`.',
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def error_responses_openapi(
    descriptions: Mapping[int, str], examples: Mapping[int, dict[str, Any]] | None = None
) -> dict[int, dict[str, Any]]:
    """``openapi_extra["responses"]`` of an operation: for each error status
    (its schema is ``ErrorOut``, from the operation's ``response``) when the
    server answers it, the headers it sends with it and an example answer."""
    out: dict[int, dict[str, Any]] = {}
    for status, text in descriptions.items():
        out[status] = {"description": text}
        if status in _HEADERS:
            out[status]["headers"] = _HEADERS[status]
        if examples and status in examples:
            out[status]["content"] = {"application/json": {"example": examples[status]}}
    return out


# The ways a request carries a source's write key (sources.access.presented_key)
# and a read token; telemetron_site.api adds those the operations name.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "writeKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A source's write key (`manage.py sources create`).",
    },
    "writeKeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The write key as the user name (what Segment-style SDKs send).",
    },
    "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
    "writeKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "For `navigator.sendBeacon`, which can set no header.",
    },
    "readToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A read token of scope stats (`manage.py tokens create … --scope stats`).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A read token of scope metrics "
        "(`manage.py tokens create … --scope metrics`).",
    },
}


def security_openapi(*schemes: str) -> dict[str, Any]:
    """``openapi_extra`` of an operation that takes any one of ``schemes``."""
    return {"security": [{name: []} for name in schemes]}
