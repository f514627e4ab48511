"""The OpenAPI schemas of the ingest bodies (ingest/schemas.py) say exactly what
the Event takes: a body is valid by the schema (JSON Schema 2020-12 with formats,
as schemathesis reads it) when and only when the server parses it."""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError

from ingest.schemas import (
    OPENAPI_COMPONENTS,
    TYPE_PATTERN,
    batch_body_schema,
    event_body_schema,
)
from plugins.base import MAX_DATA_DEPTH, U64_MAX, Event
from tests.conftest import event


def _validator(schema: dict[str, Any]) -> Any:
    document = {**schema, "components": {"schemas": OPENAPI_COMPONENTS}}
    return jsonschema_rs.Draft202012Validator(document, validate_formats=True)


EVENT = _validator(event_body_schema())


def server_takes(body: Any) -> bool:
    try:
        Event.model_validate(body)
    except ValidationError:
        return False
    return True


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BODIES = [
    event(),
    event(0),
    event(U64_MAX),
    event(U64_MAX + 1),
    event(-1),
    event(1325.0),  # an integer, for JSON Schema and for the server
    event(1325.5),
    event(True),
    event("1"),
    event(type=""),
    event(type=" \t"),
    event(type="\u3000"),
    event(type="\x1f"),  # whitespace to Python's str.strip, not to ECMA-262's \s
    event(type="\ufeff"),  # whitespace to ECMA-262's \s, not to Python's
    event(type="a\x00b"),
    event(type="x" * 256),
    event(type="x" * 257),
    event(type="\U0001f600" * 256),
    event(data={"a": ["b", None, 1.5, True, {"c": "d"}]}),
    event(data="a\x00"),
    event(data={"k\x00": 1}),
    event(data=[["a\x00"]]),
    event(ts="2023-10-27T09:30:00Z"),
    event(ts="2023-10-27t09:30:00z"),
    event(ts="2023-10-27T09:30:00.123456789+05:30"),
    event(ts="2023-10-27T09:30:00-23:59"),
    event(ts="2023-10-27 09:30:00Z"),
    event(ts="2023-10-27T09:30:00"),
    event(ts="2023-02-29T09:30:00Z"),
    event(ts="2024-02-29T09:30:00Z"),
    event(ts="2023-10-27T23:59:60Z"),  # a leap second: RFC 3339 has it, Python does not
    event(ts="0000-01-01T00:00:00Z"),
    event(ts="0001-01-01T00:00:00Z"),
    event(ts="0001-01-01T00:00:00-00:00"),
    event(ts="9999-12-31T23:59:59.999999Z"),
    event(ts="0001-01-02T00:00:00+23:59"),
    event(ts="9999-12-30T23:59:59-23:59"),
    event(ts=1698399000),
    {"sourceId": 1, "type": "t"},
    {**event(), "extra": {"anything": True}},  # unknown fields are ignored
]


@pytest.mark.parametrize("body", BODIES, ids=[repr(b)[:60] for b in BODIES])
def test_event_schema_holds_exactly_what_the_server_takes(body: Any) -> None:
    assert EVENT.is_valid(body) == server_takes(body)


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "0001-01-01T05:00:00+01:00"]
)
def test_ends_of_the_year_range_are_described_in_utc_only(ts: str) -> None:
    # Out of range once in UTC, or not: the schema leaves every non-UTC offset
    # out on those two days (a pattern cannot compare the time with the offset).
    assert not EVENT.is_valid(event(ts=ts))


def test_data_deeper_than_the_limit_is_refused_by_the_server_only() -> None:
    # JSON Schema cannot count depth; the Event's description says the limit.
    assert EVENT.is_valid(event(data=nested(MAX_DATA_DEPTH))) and server_takes(
        event(data=nested(MAX_DATA_DEPTH))
    )
    assert not server_takes(event(data=nested(MAX_DATA_DEPTH + 1)))
    assert str(MAX_DATA_DEPTH) in OPENAPI_COMPONENTS["Event"]["properties"]["data"]["description"]


def test_type_pattern_and_the_server_agree_on_characters() -> None:
    # Every space, separator, control and format character, and a sample of the rest.
    pattern = re.compile(TYPE_PATTERN)
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates: no UTF-8 JSON text holds one
        char = chr(code)
        if code % 101 and unicodedata.category(char) not in ("Zs", "Zl", "Zp", "Cc", "Cf"):
            continue
        assert bool(pattern.search(char)) == server_takes(event(type=char)), hex(code)


def test_batch_schema_needs_one_event_and_says_the_413_in_words() -> None:
    schema = batch_body_schema(max_events=3)
    batch = _validator(schema)
    assert not batch.is_valid([])
    assert batch.is_valid([event()])
    assert batch.is_valid([event(), {"not": "an event"}, 5])  # 202, the others in `rejected`
    assert not batch.is_valid([{"not": "an event"}])  # 400: nothing accepted
    assert not batch.is_valid(event())
    # Over ingest.max_batch_events is a 413, not a body the schema refuses (a 400).
    assert batch.is_valid([event()] * 4)
    assert "more than 3 elements" in schema["description"]
