"""The dead-letter queue's writes, but replay (:mod:`processing.replay`):

* :func:`dead_letter_create` — a plugin failed for good on a batch (or a part of
  one found by bisection);
* :func:`dead_letters_discard` — keep for audit, never replay;
* :func:`dead_letters_purge` — delete entries replayed or discarded long ago;
* :func:`dead_letters_erase` — a person's events taken out of every entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.config import get_config
from core.erasure import ErasureTarget
from processing.models import Bisection, DeadLetter

__all__ = [
    "DeadLettersErased",
    "DiscardSummary",
    "claim_lease",
    "claimable",
    "dead_letter_create",
    "dead_letters_discard",
    "dead_letters_erase",
    "dead_letters_purge",
    "error_text",
]

dlq_log = logging.getLogger("telemetron.dlq")
Pending = DeadLetter.Status.PENDING


def error_text(error: BaseException) -> str:
    return str(error) or repr(error)


def dead_letter_create(
    *,
    batch_id: str,
    plugin: str,
    events: list[dict[str, Any]],
    error: BaseException,
    attempts: int,
    splits: int = 0,
) -> DeadLetter:
    """Record that ``plugin`` failed for good on these events.

    A redelivered batch that fails again updates its pending entry instead of
    adding a second one.
    """
    letter = DeadLetter.objects.filter(batch_id=batch_id, plugin=plugin, status=Pending).first()
    if letter is None:
        letter = DeadLetter.objects.create(
            batch_id=batch_id,
            plugin=plugin,
            events=events,
            error_class=type(error).__name__,
            error_message=error_text(error),
            attempts=attempts,
            splits=splits,
        )
    else:
        letter.error_class = type(error).__name__
        letter.error_message = error_text(error)
        letter.attempts += attempts
        letter.save(update_fields=["error_class", "error_message", "attempts"])
    dlq_log.error(
        "dead-lettered batch %s: plugin %s failed %d times on %d events%s: %s: %s",
        batch_id,
        plugin,
        attempts,
        len(events),
        f" (isolated by {splits} splits)" if splits else "",
        type(error).__name__,
        error,
        extra={
            "batch_id": batch_id,
            "plugin": plugin,
            "attempts": attempts,
            "error": f"{type(error).__name__}: {error}",
            "events": len(events),
            "splits": splits,
            "dead_letter_id": letter.pk,
        },
    )
    return letter


def claim_lease() -> timedelta:
    """How long a replay's claim holds: the broker's redelivery delay."""
    return timedelta(seconds=get_config().queue.retry)


def claimable(now: datetime) -> Q:
    """Entries a replay or a discard may take now: pending, and not claimed by a
    replay (or claimed longer than :func:`claim_lease` ago, by one that died)."""
    return Q(status=Pending) & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_lease()))


@dataclass(frozen=True)
class DiscardSummary:
    discarded: int
    skipped: int


def dead_letters_discard(*, ids: Sequence[int]) -> DiscardSummary:
    """Mark pending entries discarded (kept for audit); entries not pending, or
    being replayed right now, are skipped."""
    now = timezone.now()
    discarded = DeadLetter.objects.filter(claimable(now), pk__in=list(ids)).update(
        status=DeadLetter.Status.DISCARDED, resolved_at=now
    )
    if discarded:
        dlq_log.info("discarded %d dead letters", discarded)
    return DiscardSummary(discarded, len(set(ids)) - discarded)


def dead_letters_purge(
    *, older_than: timedelta, dry_run: bool = False, include_pending: bool = False
) -> int:
    """Delete entries replayed or discarded more than ``older_than`` ago (and the
    finished bisection records of that age); with ``include_pending``, pending
    entries created before then too. Returns the entries deleted."""
    cutoff = timezone.now() - older_than
    resolved = Q(
        status__in=[DeadLetter.Status.REPLAYED, DeadLetter.Status.DISCARDED],
        resolved_at__lt=cutoff,
    )
    if include_pending:
        resolved |= Q(status=Pending, created_at__lt=cutoff)
    letters = DeadLetter.objects.filter(resolved)
    if dry_run:
        return letters.count()
    deleted, _ = letters.delete()
    Bisection.objects.filter(finished_at__lt=cutoff).delete()
    if deleted:
        dlq_log.info("purged %d dead letters resolved before %s", deleted, cutoff.isoformat())
    return deleted


ERASE_CHUNK = 200  # entries read (and changed) per transaction by an erasure


@dataclass(frozen=True)
class DeadLettersErased:
    events: int  # the person's events taken out
    changed: int  # entries left with other events
    deleted: int  # entries left empty, so deleted


def dead_letters_erase(
    *,
    target: ErasureTarget,
    dry_run: bool = False,
    on_progress: Callable[[int], object] | None = None,
) -> DeadLettersErased:
    """Take the person's events out of every entry, whatever its status, ``ERASE_CHUNK``
    entries per transaction (rows locked on PostgreSQL, so a replay claiming one
    waits); an entry left empty is deleted. With ``dry_run``: counted, nothing changed."""
    events = changed = deleted = 0
    last = 0
    while True:
        with transaction.atomic():
            rows = DeadLetter.objects.filter(pk__gt=last).order_by("pk")
            chunk = list((rows if dry_run else rows.select_for_update())[:ERASE_CHUNK])
            for letter in chunk:
                kept = [e for e in letter.events if not target.matches(e)]
                removed = len(letter.events) - len(kept)
                if not removed:
                    continue
                events += removed
                changed += bool(kept)
                deleted += not kept
                if dry_run:
                    continue
                if kept:
                    letter.events = kept
                    letter.save(update_fields=["events"])
                else:
                    letter.delete()
                if on_progress is not None:
                    on_progress(removed)
        if len(chunk) < ERASE_CHUNK:
            break
        last = chunk[-1].pk
    if events and not dry_run:
        dlq_log.info("erased %d events of a person from dead letters", events)
    return DeadLettersErased(events=events, changed=changed, deleted=deleted)
