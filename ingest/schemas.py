"""Request and response shapes of the ingest API (the Event itself is part of
the plugin contract, in plugins.base; the error shape is the API's,
telemetron_site.schemas)."""

from __future__ import annotations

from ninja import Schema

from plugins.base import Event

__all__ = ["Accepted", "BatchAccepted", "Event", "Rejection"]


class Accepted(Schema):
    status: str = "accepted"


class Rejection(Schema):
    index: int
    error: str


class BatchAccepted(Schema):
    accepted: int
    rejected: list[Rejection]
