"""The archive's writes: every field of every event kept, once per batch id (a
redelivery or a replay adds nothing); the received time is the one the batch id
carries; a purge deletes by received time, in chunks, and the old ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archive import services
from archive.models import ArchivedBatch, ArchivedEvent
from archive.processors import ArchiveProcessor
from archive.services import archive_purge, archive_purge_count, batch_archive
from plugins.base import U64_MAX, Batch, Event, PluginParams, batch_id_new, batch_received_at
from tests.conftest import event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def events(*specs: tuple[int, str, Any]) -> tuple[Event, ...]:
    return tuple(Event.model_validate(event(sid, typ, data=data)) for sid, typ, data in specs)


def rows() -> list[tuple[Any, ...]]:
    return list(
        ArchivedEvent.objects.order_by("id").values_list(
            "source_id", "type", "timestamp", "data", "received_at", "batch_id"
        )
    )


def test_a_batch_is_archived_with_every_field() -> None:
    batch = events((U64_MAX, "purchase", {"price": 3, "tags": ["a"]}), (0, "Heartbeat", None))
    assert batch_archive(batch_id="b1", events=batch, received_at=T0) is True
    ts = datetime(2023, 10, 27, 9, 30, tzinfo=UTC)
    assert rows() == [
        (U64_MAX, "purchase", ts, {"price": 3, "tags": ["a"]}, T0, "b1"),
        (0, "Heartbeat", ts, None, T0, "b1"),
    ]
    assert ArchivedBatch.objects.get(batch_id="b1").events == 2


def test_a_batch_seen_before_is_not_archived_again() -> None:
    batch = events((1, "a", 1), (2, "b", 2))
    assert batch_archive(batch_id="b1", events=batch, received_at=T0) is True
    assert batch_archive(batch_id="b1", events=batch, received_at=T0) is False
    assert batch_archive(batch_id="b1.0", events=batch[:1], received_at=T0) is True  # a part
    assert ArchivedEvent.objects.count() == 3


def test_the_processor_takes_the_received_time_from_the_batch_id() -> None:
    batch_id = batch_id_new()
    received = batch_received_at(batch_id)
    assert received is not None and abs(datetime.now(UTC) - received) < timedelta(seconds=5)
    processor = ArchiveProcessor(PluginParams())
    processor.process(Batch(id=batch_id, events=events((1, "a", None))))
    processor.process(Batch(id=batch_id, events=events((1, "a", None))))  # redelivered
    processor.process(Batch(id=f"{batch_id}.1", events=events((2, "b", None))))  # a part
    assert [(r[0], r[4], r[5]) for r in rows()] == [
        (1, received, batch_id),
        (2, received, f"{batch_id}.1"),
    ]


def test_a_batch_id_without_a_time_is_stamped_when_archived() -> None:
    before = datetime.now(UTC)
    ArchiveProcessor(PluginParams()).process(Batch(id="legacy", events=events((1, "a", None))))
    (row,) = rows()
    assert before <= row[4] <= datetime.now(UTC)


def test_purge_deletes_what_was_received_before_the_cut_off_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "PURGE_CHUNK", 3)
    for day in range(5):  # 2 events a day, the ledger row archived that day too
        received = T0 + timedelta(days=day)
        batch_archive(
            batch_id=f"d{day}", events=events((1, "a", day), (2, "b", day)), received_at=received
        )
        ArchivedBatch.objects.filter(batch_id=f"d{day}").update(archived_at=received)
    cutoff = T0 + timedelta(days=3)
    assert archive_purge_count(before=cutoff) == 6
    progress: list[int] = []
    assert archive_purge(before=cutoff, on_progress=progress.append) == 6
    assert progress == [3, 3]
    assert sorted({r[3] for r in rows()}) == [3, 4]
    assert sorted(ArchivedBatch.objects.values_list("batch_id", flat=True)) == ["d3", "d4"]
    assert archive_purge(before=cutoff) == 0
