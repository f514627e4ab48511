"""The small error vocabulary of the HTTP API. Each class maps to one status
code; ``telemetron_site.api`` turns every one into the same JSON shape:
``{"error": "...", "details": [...]}``."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BadRequest",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "UnsupportedMediaType",
]


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


class BadRequest(ApiError):
    status = 400


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
