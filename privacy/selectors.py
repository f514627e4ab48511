"""Reads of the erasure audit."""

from __future__ import annotations

from typing import Any

from core.erasure import ErasureTarget
from privacy.models import ErasureAudit
from privacy.services import target_digest

__all__ = ["audit_as_dict", "audit_list"]


def audit_list(*, target: ErasureTarget | None = None, limit: int = 50) -> list[ErasureAudit]:
    """The latest erasures, newest first (of one person of one source, if given)."""
    rows = ErasureAudit.objects.all()
    if target is not None:
        rows = rows.filter(source_id=target.source_id, user_digest=target_digest(target))
    return list(rows[:limit])


def audit_as_dict(r: ErasureAudit) -> dict[str, Any]:
    """An audit record as ``privacy audit --json`` prints it."""
    return {
        "id": r.pk,
        "startedAt": r.started_at.isoformat(),
        "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
        "by": r.by,
        "sourceId": r.source_id,
        "userDigest": r.user_digest,
        "paths": r.paths,
        "queueEvents": r.queue_events,
        "queueBatchesRemoved": r.queue_batches_removed,
        "inFlightBatches": r.in_flight_batches,
        "deadLetterEvents": r.dead_letter_events,
        "deadLettersDeleted": r.dead_letters_deleted,
        "archiveEvents": r.archive_events,
    }
