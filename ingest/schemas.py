"""Request and response shapes of the ingest API (the Event itself is part of
the plugin contract, in plugins.base)."""

from __future__ import annotations

from ninja import Schema

from plugins.base import Event

__all__ = ["Accepted", "BatchAccepted", "ErrorOut", "Event", "Rejection"]


class Accepted(Schema):
    status: str = "accepted"


class Rejection(Schema):
    index: int
    error: str


class BatchAccepted(Schema):
    accepted: int
    rejected: list[Rejection]


class ErrorOut(Schema):
    error: str
    details: list[object] | None = None
