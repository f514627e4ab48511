"""The dead-letter queue's writes but replay: idempotent creation, discard, purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from plugins.base import ProcessingError
from processing.dead_letter_text import discard_line
from processing.dead_letters import dead_letter_create, dead_letters_discard, dead_letters_purge
from processing.models import DeadLetter
from tests.processing.conftest import MakeLetter, wire_events

pytestmark = pytest.mark.django_db


def test_discard_marks_pending_entries_and_skips_the_others(make_letter: MakeLetter) -> None:
    pending, replayed = make_letter(), make_letter(status="replayed")
    summary = dead_letters_discard(ids=[pending.pk, replayed.pk])
    assert discard_line(summary) == "discarded 1, skipped 1"
    pending.refresh_from_db()
    assert pending.status == "discarded" and pending.resolved_at is not None
    assert DeadLetter.objects.get(pk=replayed.pk).status == "replayed"


def test_purge_deletes_only_entries_resolved_long_ago(make_letter: MakeLetter) -> None:
    old = timezone.now() - timedelta(days=31)
    gone = [
        make_letter(status="replayed", resolved_at=old),
        make_letter(status="discarded", resolved_at=old),
    ]
    kept = [
        make_letter(status="replayed", resolved_at=timezone.now()),
        make_letter(status="pending"),
    ]
    assert dead_letters_purge(older_than=timedelta(days=30), dry_run=True) == 2
    assert DeadLetter.objects.count() == 4
    assert dead_letters_purge(older_than=timedelta(days=30)) == 2
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == {x.pk for x in kept}
    assert not DeadLetter.objects.filter(pk__in=[x.pk for x in gone]).exists()


def test_a_batch_dead_lettered_again_updates_its_pending_entry() -> None:
    events = wire_events(2)
    first = dead_letter_create(
        batch_id="b", plugin="P", events=events, error=ProcessingError("one"), attempts=3
    )
    second = dead_letter_create(
        batch_id="b", plugin="P", events=events, error=ProcessingError("two"), attempts=3
    )
    assert first.pk == second.pk and DeadLetter.objects.count() == 1
    second.refresh_from_db()
    assert (second.attempts, second.error_message) == (6, "two")
