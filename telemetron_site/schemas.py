"""Shapes every router of the API shares."""

from __future__ import annotations

from ninja import Schema

__all__ = ["ErrorOut"]


class ErrorOut(Schema):
    """Every error answer of the API (telemetron_site.errors)."""

    error: str
    details: list[object] | None = None
