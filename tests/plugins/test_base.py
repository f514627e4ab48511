"""The Event schema (README, "The HTTP API"): sourceId a u64, non-empty type, RFC 3339
timestamp with an offset normalised to UTC, data any JSON value, unknown fields
ignored; and the timestamp format of responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from plugins.base import (
    MAX_DATA_DEPTH,
    MAX_TYPE_LENGTH,
    U64_MAX,
    Batch,
    Event,
    format_timestamp,
)
from tests.conftest import event


def errors(value: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) of every schema error of ``value``."""
    with pytest.raises(ValidationError) as info:
        Event.model_validate(value)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def error_fields(value: dict[str, Any]) -> set[str]:
    return {field for field, _ in errors(value)}


# --- sourceId: u64 -----------------------------------------------------------------


@pytest.mark.parametrize("source_id", [0, 1, 2**63 - 1, 2**63, U64_MAX])
def test_source_id_accepts_the_whole_u64_range(source_id: int) -> None:
    parsed = Event.model_validate(event(source_id))
    assert parsed.source_id == source_id
    assert parsed.to_wire()["sourceId"] == source_id


def test_u64_max_is_2_to_the_64_minus_1() -> None:
    assert U64_MAX == 18446744073709551615


@pytest.mark.parametrize("source_id", [U64_MAX + 1, 2**70, -1, -(2**63)])
def test_source_id_out_of_range_is_rejected(source_id: int) -> None:
    assert error_fields(event(source_id)) == {"sourceId"}


@pytest.mark.parametrize("source_id", [1.5, -1.0, 2.0**64, True, False, "1", None, [1], {"id": 1}])
def test_source_id_must_be_a_json_integer(source_id: Any) -> None:
    assert error_fields(event(source_id)) == {"sourceId"}


@pytest.mark.parametrize(
    ("sent", "source_id"), [(1325.0, 1325), (0.0, 0), (-0.0, 0), (1e19, 10**19)]
)
def test_source_id_number_without_a_fraction_is_that_integer(sent: float, source_id: int) -> None:
    # JSON Schema's `integer` (the OpenAPI document) holds 1325.0; so does the server.
    parsed = Event.model_validate(event(sent))
    assert parsed.source_id == source_id
    assert type(parsed.source_id) is int
    assert parsed.to_wire()["sourceId"] == source_id


def test_missing_fields_are_named() -> None:
    assert error_fields({}) == {"sourceId", "type", "timestamp"}
    assert errors({"type": "Heartbeat", "timestamp": "2023-10-27T09:30:00Z"}) == [
        ("sourceId", "Field required")
    ]


def test_snake_case_source_id_is_accepted_too() -> None:
    value = {"source_id": 7, "type": "Heartbeat", "timestamp": "2023-10-27T09:30:00Z"}
    assert Event.model_validate(value).source_id == 7


# --- type --------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["", " ", "\t\n"])
def test_empty_or_blank_type_is_rejected(event_type: str) -> None:
    assert error_fields(event(1, event_type)) == {"type"}


@pytest.mark.parametrize("event_type", [1, None, True, ["Heartbeat"]])
def test_type_must_be_a_string(event_type: Any) -> None:
    assert error_fields(event(1, event_type)) == {"type"}


@pytest.mark.parametrize("event_type", ["Heartbeat", "Custom", " padded ", "ünïcode ✓"])
def test_any_non_blank_type_is_kept_as_sent(event_type: str) -> None:
    assert Event.model_validate(event(1, event_type)).type == event_type


def test_type_of_max_type_length_is_accepted_longer_is_rejected() -> None:
    assert MAX_TYPE_LENGTH == 256
    longest = "\U0001f600" * MAX_TYPE_LENGTH  # 4 bytes each in UTF-8: 1 KiB
    assert Event.model_validate(event(1, longest)).type == longest
    [(field, message)] = errors(event(1, "x" * (MAX_TYPE_LENGTH + 1)))
    assert (field, message) == ("type", "String should have at most 256 characters")


@pytest.mark.parametrize(
    ("event_type", "words"),
    [("a\x00b", "NUL character"), ("\x00", "NUL character")],
)
def test_type_that_a_database_cannot_store_is_rejected(event_type: str, words: str) -> None:
    [(field, message)] = errors(event(1, event_type))
    assert field == "type"
    assert words in message


# --- timestamp -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2023-10-27T09:30:00Z", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
        ("2023-10-27T09:30:00z", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
        ("2023-10-27T09:30:00+00:00", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
        ("2023-10-27T11:30:00+02:00", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
        ("2023-10-27T04:30:00-05:00", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
        ("2023-10-27T01:00:00+05:30", datetime(2023, 10, 26, 19, 30, tzinfo=UTC)),
        ("2023-10-27t09:30:00Z", datetime(2023, 10, 27, 9, 30, tzinfo=UTC)),
    ],
)
def test_offsets_are_normalised_to_utc(sent: str, utc: datetime) -> None:
    parsed = Event.model_validate(event(ts=sent)).timestamp
    assert parsed == utc
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sent", "micro", "wire"),
    [
        ("2023-10-27T09:30:00.5Z", 500000, "2023-10-27T09:30:00.500Z"),
        ("2023-10-27T09:30:00.123Z", 123000, "2023-10-27T09:30:00.123Z"),
        ("2023-10-27T09:30:00.123456Z", 123456, "2023-10-27T09:30:00.123456Z"),
        ("2023-10-27T09:30:00.000001+01:00", 1, "2023-10-27T08:30:00.000001Z"),
        # beyond microseconds: truncated (Python's resolution), never rounded up
        ("2023-10-27T09:30:00.123456789Z", 123456, "2023-10-27T09:30:00.123456Z"),
        ("2023-10-27T09:30:00.9999999Z", 999999, "2023-10-27T09:30:00.999999Z"),
        ("2023-10-27T09:30:00.000Z", 0, "2023-10-27T09:30:00Z"),
    ],
)
def test_fractional_seconds(sent: str, micro: int, wire: str) -> None:
    parsed = Event.model_validate(event(ts=sent))
    assert parsed.timestamp.microsecond == micro
    assert parsed.to_wire()["timestamp"] == wire


@pytest.mark.parametrize(
    "sent",
    [
        "2023-10-27T09:30:00",  # no offset
        "2023-10-27T09:30:00.5",  # no offset
        "2023-10-27",  # a date only
        "2023-10-27T09:30Z",  # no seconds
        "2023-10-27T09:30:00+0200",  # offset without colon
        "2023-10-27T09:30:00 UTC",
        "27/10/2023 09:30:00Z",
        "2023-10-27 09:30:00Z",  # a space for the T (JSON Schema's date-time has none)
        "\u0662023-10-27T09:30:00Z",  # a digit that is not ASCII
        "2023-02-30T09:30:00Z",  # no such day
        "2023-10-27T25:30:00Z",  # no such hour
        "2023-10-27T09:30:00+24:00",  # no such offset
        "",
        "yesterday",
    ],
)
def test_timestamp_that_is_not_rfc3339_with_an_offset_is_rejected(sent: str) -> None:
    assert error_fields(event(ts=sent)) == {"timestamp"}


@pytest.mark.parametrize(
    ("sent", "wire"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0999-12-31T23:00:00-00:30", "0999-12-31T23:30:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_years_1_to_9999_are_accepted_and_written_with_four_digits(sent: str, wire: str) -> None:
    parsed = Event.model_validate(event(ts=sent))
    assert parsed.to_wire()["timestamp"] == wire
    assert Event.from_wire(parsed.to_wire()) == parsed  # the broker's copy parses again


@pytest.mark.parametrize("sent", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_outside_the_utc_range_is_rejected_not_a_crash(sent: str) -> None:
    [(field, message)] = errors(event(ts=sent))
    assert field == "timestamp"
    assert "out of range" in message


def test_missing_offset_message_says_what_is_expected() -> None:
    [(field, message)] = errors(event(ts="2023-10-27T09:30:00"))
    assert field == "timestamp"
    assert "RFC 3339 timestamp with an offset" in message


@pytest.mark.parametrize("sent", [1698399000, 1698399000.5, None, True, ["2023-10-27T09:30:00Z"]])
def test_timestamp_must_be_a_string(sent: Any) -> None:
    assert error_fields(event(ts=sent)) == {"timestamp"}


# --- data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        None,
        True,
        False,
        0,
        -5,
        2**64 + 1,
        3.25,
        "text",
        "",
        [],
        [1, "two", None, {"three": 3.0}],
        {},
        {"nested": {"list": [1, [2, [3]]], "flag": False, "none": None}},
    ],
)
def test_data_may_be_any_json_value_and_is_kept(data: Any) -> None:
    parsed = Event.model_validate(event(data=data))
    assert parsed.data == data
    assert type(parsed.data) is type(data)
    assert parsed.to_wire()["data"] == data


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` arrays/objects, alternating, one inside the other."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_data_may_nest_up_to_max_data_depth() -> None:
    assert MAX_DATA_DEPTH == 64
    deep = nested(MAX_DATA_DEPTH)
    assert Event.model_validate(event(data=deep)).data == deep
    wide = {"a": nested(10), "b": [nested(MAX_DATA_DEPTH - 2)] * 3, "c": "x" * 1000}
    assert Event.model_validate(event(data=wide)).data == wide


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 500, 5000])
def test_data_nested_deeper_is_rejected(depth: int) -> None:
    [(field, message)] = errors(event(data=nested(depth)))
    assert field == "data"
    assert f"must not nest deeper than {MAX_DATA_DEPTH}" in message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("a\x00b", "NUL character"),
        (["ok", "\x00"], "NUL character"),
        ({"k\x00": 1}, "NUL character"),
        ({"k": {"deeper": ["\udfff"]}}, "unpaired surrogates"),
        ("\ud800", "unpaired surrogates"),
        ({"\ud83d": 1}, "unpaired surrogates"),
    ],
)
def test_data_with_strings_a_database_cannot_store_is_rejected(data: Any, words: str) -> None:
    [(field, message)] = errors(event(data=data))
    assert field == "data"
    assert words in message


def test_data_with_any_valid_unicode_is_kept() -> None:
    data = {"emoji \U0001f600": ["ünïcode", "\u2028", "\U0010ffff", "tab\tnewline\n"]}
    assert Event.model_validate(event(data=data)).data == data


def test_depth_counts_the_deepest_branch() -> None:
    data = {"shallow": 1, "deep": [nested(MAX_DATA_DEPTH - 1)], "other": {}}
    assert error_fields(event(data=data)) == {"data"}


def test_data_is_optional() -> None:
    assert Event.model_validate(event()).data is None


# --- unknown fields, wire form ----------------------------------------------------------


def test_unknown_fields_are_ignored() -> None:
    parsed = Event.model_validate(event(7, extra="x", sourceIdx=1, meta={"a": 1}))
    assert parsed.source_id == 7
    assert set(parsed.to_wire()) == {"sourceId", "type", "timestamp", "data"}


def test_wire_form_round_trips() -> None:
    parsed = Event.model_validate(event(U64_MAX, "Click", "2023-10-27T11:30:00.25+02:00", data=[1]))
    wire = parsed.to_wire()
    assert wire == {
        "sourceId": U64_MAX,
        "type": "Click",
        "timestamp": "2023-10-27T09:30:00.250Z",
        "data": [1],
    }
    assert Event.from_wire(wire) == parsed


def test_events_are_immutable() -> None:
    parsed = Event.model_validate(event())
    with pytest.raises(ValidationError):
        parsed.type = "Other"  # type: ignore[misc]


# --- response timestamps -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2023, 10, 27, 9, 30, tzinfo=UTC), "2023-10-27T09:30:00Z"),
        (datetime(2023, 10, 27, 9, 30, 0, 500000, tzinfo=UTC), "2023-10-27T09:30:00.500Z"),
        (datetime(2023, 10, 27, 9, 30, 0, 120, tzinfo=UTC), "2023-10-27T09:30:00.000120Z"),
        (datetime(2023, 10, 27, 9, 30, 0, 999999, tzinfo=UTC), "2023-10-27T09:30:00.999999Z"),
        (
            datetime.fromisoformat("2023-10-27T11:30:00+02:00"),
            "2023-10-27T09:30:00Z",
        ),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
    ],
)
def test_format_timestamp_is_utc_z_with_a_fraction_only_when_present(
    value: datetime, text: str
) -> None:
    assert format_timestamp(value) == text


# --- Batch: built from the broker's wire events, Event objects on demand ------------------


WIRE = [
    {"sourceId": 1, "type": "Click", "timestamp": "2026-11-26T10:00:00Z", "data": None},
    {"sourceId": 2, "type": "Open", "timestamp": "2026-11-26T10:00:00.500Z", "data": {"a": 1}},
]


def test_a_batch_from_wire_has_the_events_from_wire_makes() -> None:
    batch = Batch(id="b", wire=WIRE)
    assert len(batch) == 2
    assert batch.wire is WIRE
    assert batch.events == tuple(Event.from_wire(e) for e in WIRE)
    assert batch == Batch(id="b", events=[Event.from_wire(e) for e in WIRE])
    plain = WIRE[:1]  # hashable as its events are (data None)
    assert hash(Batch(id="b", wire=plain)) == hash(
        Batch(id="b", events=[Event.from_wire(plain[0])])
    )


def test_a_batch_from_events_has_their_wire_format() -> None:
    events = tuple(Event.from_wire(e) for e in WIRE)
    batch = Batch(id="b", events=events)
    assert batch.events == events
    assert list(batch.wire) == WIRE
    assert batch != Batch(id="other", events=events)


def test_a_batch_needs_events_or_wire() -> None:
    with pytest.raises(TypeError):
        Batch(id="b")
