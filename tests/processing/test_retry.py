"""The retry policy: at most N attempts, a fixed delay between them (none after
the last), the last error kept."""

from __future__ import annotations

import json
import time

import pytest
from telemetron_testplugins import FlakyProcessor

from core.config import get_config
from processing.models import DeadLetter
from processing.retry import RetryOutcome, RetryPolicy, run_with_retries
from processing.tasks import process_batch
from tests.conftest import UseChains, event


class Flaky:
    """Fails ``fail_times`` times, then succeeds; counts its calls."""

    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise RuntimeError(f"failure {self.calls}")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_success_on_the_first_attempt_does_not_sleep() -> None:
    fn, sleeps = Flaky(0), Sleeps()
    assert run_with_retries(fn, RetryPolicy(3, 1.0), sleep=sleeps) == RetryOutcome(True, 1)
    assert fn.calls == 1
    assert sleeps == []


@pytest.mark.parametrize("fail_times", [1, 2])
def test_succeeds_after_failures_within_the_attempts(fail_times: int) -> None:
    fn, sleeps = Flaky(fail_times), Sleeps()
    outcome = run_with_retries(fn, RetryPolicy(3, 0.25), sleep=sleeps)
    assert outcome == RetryOutcome(True, fail_times + 1)
    assert fn.calls == fail_times + 1
    assert sleeps == [0.25] * fail_times


def test_gives_up_after_the_last_attempt_with_the_last_error() -> None:
    fn, sleeps = Flaky(10), Sleeps()
    outcome = run_with_retries(fn, RetryPolicy(3, 0.5), sleep=sleeps)
    assert (outcome.ok, outcome.attempts) == (False, 3)
    assert isinstance(outcome.error, RuntimeError)
    assert str(outcome.error) == "failure 3"
    assert fn.calls == 3
    assert sleeps == [0.5, 0.5]  # between attempts only, not after the last


def test_one_attempt_means_no_retry() -> None:
    fn, sleeps = Flaky(1), Sleeps()
    outcome = run_with_retries(fn, RetryPolicy(1, 5.0), sleep=sleeps)
    assert (outcome.ok, outcome.attempts, fn.calls, sleeps) == (False, 1, 1, [])


def test_zero_delay_never_sleeps() -> None:
    fn, sleeps = Flaky(2), Sleeps()
    assert run_with_retries(fn, RetryPolicy(3, 0), sleep=sleeps).ok
    assert sleeps == []


def test_interrupts_are_not_retried() -> None:
    calls = 0

    def interrupted() -> None:
        nonlocal calls
        calls += 1
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_with_retries(interrupted, RetryPolicy(3, 0), sleep=Sleeps())
    assert calls == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("fail_times", "dead_letters"), [(2, 0), (3, 1)])
def test_the_batch_task_gives_each_processor_retry_attempts_from_the_config(
    fail_times: int, dead_letters: int, use_processors: UseChains
) -> None:
    """tests/config.toml: processor.retry_attempts = 3. A plugin failing twice is
    processed on its third attempt; one failing three times is dead-lettered
    after 3 attempts."""
    assert get_config().processor.retry_attempts == 3
    [flaky] = use_processors(("FlakyProcessor", {"fail_times": fail_times})).processors
    assert isinstance(flaky, FlakyProcessor)
    report = process_batch("retry-batch", json.dumps([event(1)]), time.time())
    assert flaky.attempts["retry-batch"] == min(fail_times + 1, 3)
    letters = list(DeadLetter.objects.values_list("plugin", "attempts"))
    assert letters == [("FlakyProcessor", 3)] * dead_letters
    assert report.processed == 1 - dead_letters
