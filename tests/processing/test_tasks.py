"""The batch task with real plugins from the registry: a poison event is
bisected out of its batch, the rest is processed; a redelivered batch resumes
its bisection instead of processing the whole batch again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.config import get_config
from plugins.base import Batch, Event
from processing.bisection import bisection_start
from processing.models import Bisection, DeadLetter
from processing.tasks import process_batch
from stats.aggregator import aggregate
from stats.store import get_store
from tests.processing.conftest import UseProcessors, wire_events

pytestmark = pytest.mark.django_db


def _recorded(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_batch_of_100_with_one_poison_event_processes_99_and_dead_letters_1(
    use_processors: UseProcessors, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / "poison.jsonl"
    use_processors(("PoisonProcessor", {"record_path": str(record)}), ("StorageProcessor", {}))
    events = wire_events(100)
    events[61]["type"] = "Poison"

    report = process_batch("batch100", json.dumps(events), time.time())

    # The poison plugin processed the 99 good events, in parts with derived ids.
    runs = _recorded(record)
    assert sum(int(r["events"]) for r in runs) == 99  # type: ignore[call-overload]
    assert all(str(r["batch_id"]).startswith("batch100.") for r in runs)
    # One dead letter, holding just the poison event.
    [letter] = DeadLetter.objects.all()
    assert letter.plugin == "PoisonProcessor"
    assert letter.events == [events[61]]
    assert letter.batch_id.startswith("batch100.")
    assert letter.splits == len(letter.batch_id.split(".")) - 1 >= 6
    retries = get_config().processor.retry_attempts
    assert letter.attempts == retries + letter.splits
    assert letter.status == "pending"
    # The StorageProcessor after it counted all 100 (it never failed).
    assert get_store().totals() == (1, 100)
    assert report.failed == ["PoisonProcessor"]
    assert report.dead_lettered == {"PoisonProcessor": 1}
    assert report.processed == 99
    # The bisection is recorded and logged with its split count.
    bisection = Bisection.objects.get(batch_id="batch100", plugin="PoisonProcessor")
    assert (bisection.splits, bisection.dead_lettered_events) == (letter.splits, 1)
    assert bisection.runs == 2 * letter.splits and bisection.finished_at is not None
    assert f"bisected batch batch100 for plugin PoisonProcessor: {letter.splits} splits" in (
        caplog.text
    )


def test_single_event_batch_is_dead_lettered_without_bisection(
    use_processors: UseProcessors,
) -> None:
    use_processors(("FailingProcessor", {"message": "webhook down"}))
    events = wire_events(1)
    report = process_batch("one", json.dumps(events), time.time())
    [letter] = DeadLetter.objects.all()
    assert (letter.batch_id, letter.splits, letter.events) == ("one", 0, events)
    assert letter.error_message == "webhook down"
    assert report.processed == 0 and not Bisection.objects.exists()


def test_redelivered_batch_resumes_its_bisection_and_counts_nothing_twice(
    use_processors: UseProcessors, tmp_path: Path
) -> None:
    """A worker died in the middle of a bisection after merging the first half;
    the broker redelivers the batch and storage works again by then."""
    flag = tmp_path / "healed"
    use_processors(("HealableStorageProcessor", {"healed_flag": str(flag)}))
    events = wire_events(4)
    # What the dead worker had done: the bisection started, half "b.0" merged.
    bisection_start(batch_id="b", plugin="HealableStorageProcessor", events=4)
    first_half = tuple(Event.from_wire(e) for e in events[:2])
    get_store().merge(batch_id="b.0", aggregates=aggregate(first_half))
    flag.touch()

    redelivered_at = time.time() - get_config().queue.retry - 1
    report = process_batch("b", json.dumps(events), redelivered_at)

    assert get_store().totals() == (1, 4)  # not 6: the whole batch was not merged again
    assert report.processed == 4 and not DeadLetter.objects.exists()


def test_a_first_delivery_does_not_look_for_bisections(use_processors: UseProcessors) -> None:
    use_processors(("StorageProcessor", {}))
    Bisection.objects.create(batch_id="fresh", plugin="StorageProcessor", events=2)
    process_batch("fresh", json.dumps(wire_events(2)), time.time())
    assert get_store().totals() == (1, 2)
    assert get_store().merge(batch_id="fresh", aggregates={}) is False  # merged whole


def test_batch_of_wire_events_equals_batch_of_parsed_events() -> None:
    # The dead letter keeps events in the broker's wire form, which parses back.
    events = wire_events(3)
    batch = Batch(id="x", events=tuple(Event.from_wire(e) for e in events))
    assert [e.to_wire() for e in batch.events] == events
