"""The small error vocabulary of the HTTP API. Each class maps to one status
code, and :func:`error_response` turns every one into the same JSON shape:
``{"error": "...", "details": [...]}`` (``ErrorOut`` in the OpenAPI docs,
:mod:`core.schemas`), for the API's handlers and the views outside it alike.

:func:`validation_messages` is the one reading of a pydantic validation error
(config.toml, an event, a plugin's parameters, a request the API refuses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import JsonResponse
from pydantic import ValidationError

__all__ = [
    "ApiError",
    "BadRequest",
    "Forbidden",
    "Loc",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_response",
    "loc_text",
    "validation_messages",
]

Loc = tuple[str | int, ...]


def validation_messages(
    errors: ValidationError | Iterable[Mapping[str, Any]], *, unknown: str = "unknown field"
) -> list[tuple[Loc, str]]:
    """Each error as (location, message): pydantic's message without its
    "Value error, " prefix; a key the model forbids reads ``unknown``."""
    items = errors.errors(include_url=False) if isinstance(errors, ValidationError) else errors
    out: list[tuple[Loc, str]] = []
    for err in items:
        msg = unknown if err.get("type") == "extra_forbidden" else str(err.get("msg", ""))
        out.append((tuple(err.get("loc", ())), msg.removeprefix("Value error, ")))
    return out


def loc_text(loc: Loc, empty: str = "") -> str:
    """``("allowed", 0)`` -> ``"allowed.0"``."""
    return ".".join(str(p) for p in loc) or empty


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the JSON body."""
        return {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


def error_response(exc: ApiError) -> JsonResponse:
    """The answer to ``exc``: its status, its JSON body and its headers."""
    response = JsonResponse(exc.body(), status=exc.status)
    for name, value in exc.headers().items():
        response[name] = value
    return response


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    """No credential, or one nobody issued (or that was revoked)."""

    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="telemetron"'}


class Forbidden(ApiError):
    """A valid credential that may not do this (another source, a disabled
    source, a browser origin the source does not allow, a token's scope)."""

    status = 403


class NotFound(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class ServiceUnavailable(ApiError):
    """The queue cannot take the events now; the client should retry later."""

    status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyRequests(ApiError):
    """A source over its rate limit: nothing of the request was taken."""

    status = 429

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
