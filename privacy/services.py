"""Erasure of a person's events from every store of raw events, audited
(:func:`privacy_erase`), and the audit's retention (:func:`audit_purge`).

The stores are erased in the order events flow, so none slips between them:
the queue's waiting batches first, then the dead letters, then the archive. A
batch being processed meanwhile is counted in flight: its events are in the
dead letters or the archive by the time those are erased, or else found by a
second run. Aggregate stats keep their counts (they hold no personal data)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from archive.services import archive_erase
from broker.erasure import QueueErased, queue_erase
from broker.interface import QueueBroker
from core.erasure import ErasureTarget, user_digest
from privacy.models import ErasureAudit
from processing.dead_letters import dead_letters_erase

__all__ = ["Erased", "audit_purge", "privacy_erase", "target_digest"]

Progress = Callable[[int], object] | None
WAIT_POLL_S = 0.5  # between looks at the batches in flight, with a wait


@dataclass(frozen=True)
class Erased:
    """Events of the person per store (found, with a dry run) and the audit row."""

    queue: int
    queue_batches_removed: int
    in_flight: int
    dead_letters: int
    dead_letters_deleted: int
    archive: int
    audit_id: int | None = None

    @property
    def events(self) -> int:
        return self.queue + self.dead_letters + self.archive

    def as_dict(self) -> dict[str, int | None]:
        return {
            "queue_events": self.queue,
            "queue_batches_removed": self.queue_batches_removed,
            "in_flight_batches": self.in_flight,
            "dead_letter_events": self.dead_letters,
            "dead_letters_deleted": self.dead_letters_deleted,
            "archive_events": self.archive,
            "events": self.events,
            "audit_id": self.audit_id,
        }


def target_digest(target: ErasureTarget) -> str:
    return user_digest(source_id=target.source_id, user=target.user, key=settings.SECRET_KEY)


def _queue_erase(
    target: ErasureTarget,
    *,
    dry_run: bool,
    wait_s: float,
    queue: QueueBroker | None,
    on_progress: Progress,
) -> QueueErased:
    """The queue's step; with ``wait_s``, repeated (every ``WAIT_POLL_S``) while
    batches holding the person's events are in flight, at most that long: once a
    worker is done with one, its events are in the archive or the dead letters (a
    batch released by a dying worker is waiting again, and rewritten)."""
    deadline = time.monotonic() + wait_s
    found = queue_erase(target=target, dry_run=dry_run, on_progress=on_progress, queue=queue)
    total = found
    while found.in_flight and not dry_run and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_S)
        found = queue_erase(target=target, on_progress=on_progress, queue=queue)
        total = QueueErased(
            events=total.events + found.events,
            rewritten=total.rewritten + found.rewritten,
            removed=total.removed + found.removed,
            in_flight=found.in_flight,
        )
    return total


def privacy_erase(
    *,
    target: ErasureTarget,
    by: str,
    dry_run: bool = False,
    wait_s: float = 0,
    on_progress: Progress = None,
    queue: QueueBroker | None = None,
) -> Erased:
    """Erase (or, with ``dry_run``, count) the person's events in the queue, the
    dead letters and the archive, each in bounded transactions; a real run is
    audited (a row written first, completed at the end). ``wait_s``: how long to
    wait for batches in flight before erasing the dead letters and the archive.
    ``queue``: the process's broker unless given."""
    audit = None
    if not dry_run:
        audit = ErasureAudit.objects.create(
            started_at=timezone.now(),
            by=by,
            source_id=target.source_id,
            user_digest=target_digest(target),
            paths=list(target.paths),
        )
    queued = _queue_erase(
        target, dry_run=dry_run, wait_s=wait_s, queue=queue, on_progress=on_progress
    )
    letters = dead_letters_erase(target=target, dry_run=dry_run, on_progress=on_progress)
    archived = archive_erase(target=target, dry_run=dry_run, on_progress=on_progress)
    erased = Erased(
        queue=queued.events,
        queue_batches_removed=queued.removed,
        in_flight=queued.in_flight,
        dead_letters=letters.events,
        dead_letters_deleted=letters.deleted,
        archive=archived,
        audit_id=audit.pk if audit else None,
    )
    if audit is not None:
        ErasureAudit.objects.filter(pk=audit.pk).update(
            finished_at=timezone.now(),
            queue_events=erased.queue,
            queue_batches_removed=erased.queue_batches_removed,
            in_flight_batches=erased.in_flight,
            dead_letter_events=erased.dead_letters,
            dead_letters_deleted=erased.dead_letters_deleted,
            archive_events=erased.archive,
        )
    return erased


def audit_purge(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete the audit rows of erasures started more than ``older_than`` ago."""
    rows = ErasureAudit.objects.filter(started_at__lt=timezone.now() - older_than)
    return rows.count() if dry_run else rows.delete()[0]
