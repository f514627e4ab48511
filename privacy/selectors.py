"""Reads of the erasure audit."""

from __future__ import annotations

from core.erasure import ErasureTarget
from privacy.models import ErasureAudit
from privacy.services import target_digest

__all__ = ["audit_list"]


def audit_list(*, target: ErasureTarget | None = None, limit: int = 50) -> list[ErasureAudit]:
    """The latest erasures, newest first (of one person of one source, if given)."""
    rows = ErasureAudit.objects.all()
    if target is not None:
        rows = rows.filter(source_id=target.source_id, user_digest=target_digest(target))
    return list(rows[:limit])
