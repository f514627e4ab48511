"""A batch task while a store is unreachable: it waits the outage out (backoff,
no attempt spent, no dead letter) whether the StorageProcessor's database, a
plugin's own database or Redis is away; past its wait it ends unacknowledged,
nothing written. A plugin refusing a batch still dead-letters it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django import db

from core.outage import Backoff, StoreUnavailable
from processing import dead_letters, tasks
from processing.models import Bisection, DeadLetter
from processing.tasks import process_batch, process_batches
from stats.store import get_store
from tests.processing.conftest import UseProcessors, wire_events

pytestmark = pytest.mark.django_db

UseConfig = Callable[..., Any]


@pytest.fixture(autouse=True)
def _no_outage() -> Iterator[None]:
    Backoff.reset()
    yield
    Backoff.reset()


@pytest.fixture
def one_attempt(use_config: UseConfig) -> None:
    """One attempt per plugin, no delay: an outage that spent attempts would
    dead-letter at the first failure."""
    use_config(processor={"retry_attempts": 1, "retry_delay": 0})


@pytest.mark.parametrize("error", ["database", "redis", "wrapped"])
def test_an_unreachable_store_is_waited_out_spending_no_attempt(
    use_processors: UseProcessors,
    one_attempt: None,
    error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_processors(
        ("UnreachableStoreProcessor", {"fail_times": 3, "error": error}), ("StorageProcessor", {})
    )
    report = process_batch("b1", json.dumps(wire_events(5)), time.time())
    assert report.processed == 5 and not report.failed
    assert not DeadLetter.objects.exists() and not Bisection.objects.exists()
    assert get_store().totals() == (1, 5)
    store = "redis" if error == "redis" else "database"
    outage = [r.getMessage() for r in caplog.records if r.name == "telemetron.outage"]
    assert [line.split(" (")[0].split(" after")[0] for line in outage] == [
        f"the {store} is unreachable",
        f"the {store} answers again",
    ]


def test_batches_taken_together_wait_out_an_outage_together(
    use_processors: UseProcessors, one_attempt: None
) -> None:
    use_processors(("UnreachableStoreProcessor", {"fail_times": 2}), ("StorageProcessor", {}))
    tasks_ = [
        (f"b{i}", json.dumps(wire_events(3, source_id=i)), time.time(), False) for i in (1, 2)
    ]
    reports = process_batches(tasks_)
    assert [r.processed for r in reports] == [3, 3]
    assert get_store().totals() == (2, 6) and not DeadLetter.objects.exists()


def test_an_outage_longer_than_the_task_may_wait_ends_it_writing_nothing(
    use_processors: UseProcessors, use_config: UseConfig
) -> None:
    use_config(queue={"timeout": 1, "retry": 2}, processor={"retry_attempts": 1})
    use_processors(("UnreachableStoreProcessor", {"fail_times": -1}), ("StorageProcessor", {}))
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="the database is unreachable"):
        process_batch("b1", json.dumps(wire_events(4)), time.time())
    assert time.monotonic() - start < tasks.PAUSE_SHARE * 1 + 0.5
    assert not DeadLetter.objects.exists() and not Bisection.objects.exists()
    assert get_store().totals() == (0, 0)


def test_inline_a_task_waits_at_most_half_the_requests_commit_timeout(
    use_processors: UseProcessors, use_config: UseConfig
) -> None:
    # queue.workers = 0: the batch is processed inside its request.
    use_config(queue={"workers": 0, "timeout": 300}, ingest={"commit_timeout": 1.0})
    use_processors(("UnreachableStoreProcessor", {"fail_times": -1}), ("StorageProcessor", {}))
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        process_batch("b1", json.dumps(wire_events(2)), time.time())
    assert time.monotonic() - start < 1.0
    assert not DeadLetter.objects.exists()


def test_a_dead_letter_write_meeting_an_outage_waits_for_the_database(
    use_processors: UseProcessors, one_attempt: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plugin refuses the batch for good; the database is away when its dead
    # letter is written, twice, then back: one dead letter, nothing lost.
    use_processors(("FailingProcessor", {"message": "refused"}))
    real = dead_letters.dead_letter_create
    failures = iter([True, True])

    def flaky(**kwargs: Any) -> DeadLetter:
        if next(failures, False):
            raise db.OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(tasks, "dead_letter_create", flaky)
    report = process_batch("one", json.dumps(wire_events(1)), time.time())
    [letter] = DeadLetter.objects.all()
    assert (letter.batch_id, letter.error_message, letter.attempts) == ("one", "refused", 1)
    assert report.dead_lettered == {"FailingProcessor": 1}


def test_a_plugin_refusing_a_batch_is_still_dead_lettered(
    use_processors: UseProcessors, one_attempt: None
) -> None:
    use_processors(("FailingProcessor", {"message": "refused"}), ("StorageProcessor", {}))
    report = process_batch("b1", json.dumps(wire_events(4)), time.time())
    assert report.dead_lettered == {"FailingProcessor": 4}
    assert sum(len(letter.events) for letter in DeadLetter.objects.all()) == 4
