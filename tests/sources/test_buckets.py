"""The node's token buckets: exact, all or nothing, shared through the file
(two tables on one file stand for two web processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sources.buckets import BucketTable
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_bucket_starts_full_and_refills_at_the_rate(clock: Clock) -> None:
    table = BucketTable(clock=clock)
    assert table.take([(1, 10, 5.0, 10)]) == 0.0
    wait = table.take([(1, 1, 5.0, 10)])
    assert wait == pytest.approx(0.2)
    clock.now += 0.2
    assert table.take([(1, 1, 5.0, 10)]) == 0.0
    clock.now += 100  # never more than the burst
    assert table.take([(1, 10, 5.0, 10)]) == 0.0
    assert table.take([(1, 1, 5.0, 10)]) > 0


def test_a_request_takes_every_source_or_none(clock: Clock) -> None:
    table = BucketTable(clock=clock)
    assert table.take([(2, 4, 1.0, 4)]) == 0.0
    # source 1 could give 3, source 2 has nothing left: neither gives anything
    assert table.take([(1, 3, 1.0, 3), (2, 1, 1.0, 4)]) == pytest.approx(1.0)
    assert table.take([(1, 3, 1.0, 3)]) == 0.0


def test_tokens_given_back_can_be_taken_again(clock: Clock) -> None:
    table = BucketTable(clock=clock)
    assert table.take([(1, 5, 1.0, 5)]) == 0.0
    table.give_back([(1, 5, 1.0, 5)])
    assert table.take([(1, 5, 1.0, 5)]) == 0.0


def test_two_processes_on_one_file_share_the_bucket(tmp_path: Path, clock: Clock) -> None:
    path = str(tmp_path / "rate")
    web1, web2 = BucketTable(path, clock=clock), BucketTable(path, clock=clock)
    taken = 0
    for i in range(40):
        table = web1 if i % 2 else web2
        taken += table.take([(7, 1, 2.0, 6)]) == 0.0
    assert taken == 6
    clock.now += 1.0
    assert web1.take([(7, 2, 2.0, 6)]) == 0.0
    assert web2.take([(7, 1, 2.0, 6)]) > 0
    web1.close()
    web2.close()


def test_many_sources_get_slots_of_their_own(clock: Clock) -> None:
    table = BucketTable(clock=clock)
    ids = [0, 1, 2**63, 2**64 - 1, *range(1000, 3000)]
    assert all(table.take([(sid, 1, 1.0, 1)]) == 0.0 for sid in ids)
    assert all(table.take([(sid, 1, 1.0, 1)]) > 0 for sid in ids)
