"""Writes of the processing app: dead letters."""

from __future__ import annotations

import logging
from typing import Any

from processing.models import DeadLetter

__all__ = ["dead_letter_create"]

dlq_log = logging.getLogger("telemetron.dlq")


def dead_letter_create(
    *, batch_id: str, plugin: str, events: list[dict[str, Any]], error: BaseException, attempts: int
) -> DeadLetter:
    letter = DeadLetter.objects.create(
        batch_id=batch_id,
        plugin=plugin,
        events=events,
        error_class=type(error).__name__,
        error_message=str(error) or repr(error),
        attempts=attempts,
    )
    dlq_log.error(
        "dead-lettered batch %s: plugin %s failed %d times on %d events: %s: %s",
        batch_id,
        plugin,
        attempts,
        len(events),
        type(error).__name__,
        error,
        extra={
            "batch_id": batch_id,
            "plugin": plugin,
            "attempts": attempts,
            "events": len(events),
            "dead_letter_id": letter.pk,
        },
    )
    return letter
