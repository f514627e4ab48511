"""The bisection algorithm on its own: which parts it isolates, their ids, and
its bound on runs."""

from __future__ import annotations

import pytest

from plugins.base import Batch, Event, ProcessingError
from processing.bisection import bisect, run_budget
from tests.processing.conftest import wire_events


def _batch(n: int, poison: set[int]) -> Batch:
    events = wire_events(n)
    for i in poison:
        events[i]["type"] = "Poison"
    return Batch(id="b", events=tuple(Event.from_wire(e) for e in events))


class Runner:
    """A plugin failing on any part holding a Poison event; records its runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.processed = 0

    def __call__(self, part: Batch) -> None:
        self.runs.append(part.id)
        if any(e.type == "Poison" for e in part.events):
            raise ProcessingError(f"poison in {part.id}")
        self.processed += len(part.events)


def test_one_poison_event_in_100_is_isolated_in_log2_splits() -> None:
    runner = Runner()
    result = bisect(batch=_batch(100, {37}), error=ProcessingError("x"), run=runner)
    assert runner.processed == 99
    [part] = result.failed
    assert (part.start, part.stop) == (37, 38)
    assert 6 <= result.splits == part.splits <= 7  # ⌊log₂ 100⌋ .. ⌈log₂ 100⌉
    assert result.runs == len(runner.runs) == 2 * result.splits <= run_budget(100)
    assert str(part.error) == f"poison in {part.batch_id}"
    # Stable derived ids: the batch id plus one digit per split.
    assert part.batch_id == "b." + ".".join(part.batch_id.split(".")[1:])
    assert len(part.batch_id.split(".")) == part.splits + 1
    assert len(set(runner.runs)) == len(runner.runs)  # no part is run twice


def test_ids_are_deterministic_so_a_rerun_gives_the_same_parts() -> None:
    first, second = Runner(), Runner()
    bisect(batch=_batch(10, {3}), error=ProcessingError("x"), run=first)
    bisect(batch=_batch(10, {3}), error=ProcessingError("x"), run=second)
    assert first.runs == second.runs
    assert first.runs[:2] == ["b.0", "b.1"]


def test_a_failure_that_went_away_leaves_nothing_failed() -> None:
    runner = Runner()
    result = bisect(batch=_batch(8, set()), error=ProcessingError("timeout"), run=runner)
    assert result.failed == [] and runner.processed == 8
    assert (result.splits, result.runs) == (1, 2)


@pytest.mark.parametrize("n", [2, 3, 5, 64, 100, 1000])
def test_a_plugin_failing_on_everything_is_bounded_and_loses_no_event(n: int) -> None:
    def always_fails(part: Batch) -> None:
        raise ProcessingError("down")

    result = bisect(batch=_batch(n, set()), error=ProcessingError("down"), run=always_fails)
    assert result.runs <= run_budget(n)
    # Every event is in exactly one failed part.
    covered = sorted(i for p in result.failed for i in range(p.start, p.stop))
    assert covered == list(range(n))


def test_two_poison_events_are_both_dead_lettered_with_few_good_ones() -> None:
    runner = Runner()
    result = bisect(batch=_batch(100, {10, 90}), error=ProcessingError("x"), run=runner)
    failed = {i for p in result.failed for i in range(p.start, p.stop)}
    assert {10, 90} <= failed
    assert runner.processed == 100 - len(failed)
    assert len(failed) < 20  # most good events still processed
    assert result.runs <= run_budget(100)


def test_run_budget() -> None:
    assert [run_budget(n) for n in (1, 2, 3, 4, 5, 100, 10_000)] == [0, 2, 4, 4, 6, 14, 28]
