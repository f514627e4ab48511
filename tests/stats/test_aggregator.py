"""The in-memory fold of a batch: per source the event count, the earliest and
latest event time, and the count per type."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from plugins.base import U64_MAX, Event
from stats.aggregator import SourceAggregate, aggregate, aggregate_wire, from_micros, to_micros
from tests.conftest import event


def events(*specs: tuple[int, str, str]) -> list[Event]:
    return [Event.model_validate(event(sid, typ, ts)) for sid, typ, ts in specs]


def us(ts: str) -> int:
    return to_micros(datetime.fromisoformat(ts))


def test_empty_batch_gives_nothing() -> None:
    assert aggregate([]) == {}


def test_counts_first_last_and_types_per_source_in_any_order() -> None:
    batch = events(
        (1, "Heartbeat", "2023-10-27T09:30:00Z"),
        (2, "Click", "2023-10-27T10:00:00Z"),
        (1, "Click", "2023-10-27T08:00:00+00:00"),  # earlier than the first seen
        (1, "Heartbeat", "2023-10-27T12:30:00+02:00"),  # = 10:30 UTC, the latest
        (1, "Heartbeat", "2023-10-27T09:45:00Z"),
    )
    out = aggregate(batch)
    assert set(out) == {1, 2}
    one = out[1]
    assert one.total == 4
    assert one.first_us == us("2023-10-27T08:00:00+00:00")
    assert one.last_us == us("2023-10-27T10:30:00+00:00")
    assert one.types == Counter({"Heartbeat": 3, "Click": 1})
    two = out[2]
    assert (two.total, two.first_us, two.last_us) == (
        1,
        us("2023-10-27T10:00:00+00:00"),
        two.first_us,
    )
    assert two.types == Counter({"Click": 1})


def test_source_ids_at_the_u64_bounds_are_kept_apart() -> None:
    out = aggregate(
        events(
            (0, "A", "2023-10-27T09:30:00Z"),
            (U64_MAX, "A", "2023-10-27T09:30:00Z"),
            (U64_MAX, "B", "2023-10-27T09:30:01Z"),
        )
    )
    assert {sid: agg.total for sid, agg in out.items()} == {0: 1, U64_MAX: 2}


def test_totals_equal_the_batch_size() -> None:
    batch = events(*[(i % 7, f"T{i % 3}", f"2023-10-27T09:{i % 60:02d}:00Z") for i in range(250)])
    out = aggregate(batch)
    assert sum(a.total for a in out.values()) == 250
    assert all(sum(a.types.values()) == a.total for a in out.values())


def test_equal_timestamps_make_first_equal_last() -> None:
    out = aggregate(events((5, "A", "2023-10-27T09:30:00Z"), (5, "B", "2023-10-27T09:30:00Z")))
    assert out[5].first_us == out[5].last_us == us("2023-10-27T09:30:00+00:00")


def test_merge_takes_the_outer_times_and_adds_the_counts() -> None:
    a = SourceAggregate()
    a.add(us("2023-10-27T09:00:00+00:00"), "Heartbeat")
    a.add(us("2023-10-27T11:00:00+00:00"), "Click")
    b = SourceAggregate()
    b.add(us("2023-10-27T08:00:00+00:00"), "Heartbeat", count=3)
    b.add(us("2023-10-27T10:00:00+00:00"), "Heartbeat")
    a.merge(b)
    assert a.total == 6
    assert a.first_us == us("2023-10-27T08:00:00+00:00")
    assert a.last_us == us("2023-10-27T11:00:00+00:00")
    assert a.types == Counter({"Heartbeat": 5, "Click": 1})


def test_merge_into_empty_copies_and_merge_of_empty_changes_nothing() -> None:
    full = SourceAggregate()
    full.add(us("2023-10-27T09:00:00+00:00"), "A")
    empty = SourceAggregate()
    empty.merge(full)
    assert (empty.total, empty.first_us, empty.last_us, empty.types) == (
        1,
        full.first_us,
        full.last_us,
        Counter({"A": 1}),
    )
    before = (full.total, full.first_us, full.last_us, Counter(full.types))
    full.merge(SourceAggregate())
    assert (full.total, full.first_us, full.last_us, full.types) == before


def test_merge_of_two_folds_equals_the_fold_of_the_whole() -> None:
    batch = events(*[(i % 3, f"T{i % 4}", f"2023-10-2{i % 9}T0{i % 10}:00:00Z") for i in range(40)])
    whole = aggregate(batch)
    left, right = aggregate(batch[:17]), aggregate(batch[17:])
    for sid, agg in right.items():
        left.setdefault(sid, SourceAggregate()).merge(agg)
    assert left == whole


@pytest.mark.parametrize(
    "value",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2023, 10, 27, 9, 30, 0, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_microsecond_timestamps_round_trip_without_loss(value: datetime) -> None:
    assert from_micros(to_micros(value)) == value


def test_micros_fit_a_signed_64_bit_column() -> None:
    for value in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)):
        assert -(2**63) <= to_micros(value) < 2**63


def test_aggregate_wire_folds_the_wire_events_as_aggregate_folds_events() -> None:
    wire = [
        Event.model_validate(event(sid, typ, ts)).to_wire()
        for sid, typ, ts in [
            (1, "Click", "2023-10-27T09:30:00.250+02:00"),
            (U64_MAX, "Open", "2023-10-27T09:30:00Z"),
            (1, "Open", "2023-10-26T23:59:59.999999Z"),
            (1, "Click", "2023-10-28T00:00:00Z"),
        ]
    ]
    got, want = aggregate_wire(wire), aggregate(Event.from_wire(e) for e in wire)
    assert got == want
    assert got[1].total == 3 and got[1].types == {"Click": 2, "Open": 1}
