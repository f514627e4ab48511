"""The small error vocabulary of the HTTP API. Each class maps to one status
code, and every error answer of the API has one JSON shape, built by
:func:`error_response` alone: ``{"error": "...", "details": [...]}`` (``ErrorOut``
in the OpenAPI docs, :mod:`core.schemas`; ``details`` is ``[]`` when
there is nothing more to say).

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
    "MethodNotAllowed",
    "NotFound",
    "OutcomeUnknown",
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


def error_response(
    status: int,
    message: str,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """The one shape of every error answer: ``{"error": message, "details": [...]}``."""
    response = JsonResponse({"error": message, "details": details or []}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the JSON body."""
        return {}

    def response(self) -> JsonResponse:
        return error_response(self.status, self.message, self.details, self.headers())


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


class MethodNotAllowed(ApiError):
    """A path of the API asked with a method it does not take."""

    status = 405

    def __init__(self, message: str, allowed: Iterable[str]) -> None:
        super().__init__(message)
        self.allowed = ", ".join(sorted(allowed))

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


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


class OutcomeUnknown(ServiceUnavailable):
    """A commit whose answer was lost and whose store did not tell in time whether
    it landed: the events may be queued or not. Retrying with the same event ids
    is safe (an id is taken once); events without ids may count twice."""

    MESSAGE = (
        "Commit outcome unknown: the queue did not tell in time whether the events were"
        " taken; retry with the same event ids (an id is counted once)"
    )

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(self.MESSAGE, retry_after)
        self.details = [{"outcome": "unknown"}]


class TooManyRequests(ApiError):
    """A source over its rate limit: nothing of the request was taken."""

    status = 429

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
