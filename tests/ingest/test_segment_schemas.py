"""The OpenAPI schemas of the Segment bodies (ingest/segment_schemas.py) say
exactly what the server takes: a body is valid by its schema (JSON Schema
2020-12 with formats, as schemathesis reads it) when and only when ``/v1/*``
answers 200 (every message taken), and a 400 otherwise."""

from __future__ import annotations

import base64
import re
from typing import Any

import jsonschema_rs
import pytest
from django.test import Client

from ingest.schemas import OPENAPI_COMPONENTS
from ingest.segment_schemas import SEGMENT_COMPONENTS, SEGMENT_TIME_PATTERN, segment_body_schema
from plugins.base import MAX_ID_LENGTH, MAX_TYPE_LENGTH
from sources.services import source_create
from telemetron_site.config import get_config
from tests.support.client import post

pytestmark = pytest.mark.django_db


def _validator(call: str | None) -> Any:
    schema = segment_body_schema(call, max_messages=get_config().ingest.max_batch_events)
    document = {**schema, "components": {"schemas": OPENAPI_COMPONENTS | SEGMENT_COMPONENTS}}
    return jsonschema_rs.Draft202012Validator(document, validate_formats=True)


@pytest.fixture
def taken(db: Any, client: Client) -> Any:
    """``taken(call, body)``: whether ``/v1/<call>`` (``None``: batch) takes the
    body (200), after checking it answers 400 when it does not."""
    _, made = source_create(source_id=7, name="app")
    auth = "Basic " + base64.b64encode(f"{made.value}:".encode()).decode()

    def take(call: str | None, body: Any) -> bool:
        response = post(client, f"/v1/{call or 'batch'}", body, Authorization=auth)
        assert response.status_code in (200, 400), response.content
        return bool(response.status_code == 200)

    return take


def track(**fields: Any) -> dict[str, Any]:
    return {"event": "Signed Up", "userId": "u1", **fields}


TIMES = [
    "2026-11-20T10:00:00.000Z",
    "2026-11-20T10:00:00.123456789+05:30",
    "2026-11-20 10:00:00Z",  # a space for the T, as RFC 3339 allows
    "2026-11-20t10:00:00z",
    "2026-11-20T10:00:00+0530",
    "2026-11-20T10:00:00-23:59",
    "2026-11-20T10:00:00",  # no offset: UTC
    "2024-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "2400-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2023-04-31T00:00:00Z",
    "2023-12-31T23:59:59Z",
    "1000-01-01T00:00:00+23:59",
    "2999-12-31T23:59:59-23:59",
    "0999-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "2023-10-27",
    "2023-10-27T09:30",
    "2023-10-27T24:00:00Z",
    "2023-10-27T09:30:60Z",
    "2023-10-27T09:30:00+24:00",
    "2023-10-27T09:30:00+05",
    "2023-10-27X09:30:00",
    "2023-10-27T09:30:00Z\n",
    "yesterday",
    "",
    0,
    False,
    [],
    None,
]


@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
def test_every_time_field_is_taken_when_its_schema_says(taken: Any, field: str) -> None:
    schema = _validator("track")
    bodies = [track(**{field: value}) for value in TIMES]
    differ = [b[field] for b in bodies if schema.is_valid(b) != taken("track", b)]
    assert not differ, f"the schema and the server disagree on {field}: {differ}"
    assert sum(map(schema.is_valid, bodies)) == 14  # (the list holds both kinds)


def test_the_time_pattern_is_read_alike_by_python_and_json_schema() -> None:
    pattern = re.compile(SEGMENT_TIME_PATTERN)
    schema = jsonschema_rs.Draft202012Validator({"pattern": SEGMENT_TIME_PATTERN})
    for value in TIMES:
        if isinstance(value, str):
            assert bool(pattern.fullmatch(value)) == schema.is_valid(value), value


def test_any_two_times_corrected_for_the_clock_stay_in_range(taken: Any) -> None:
    for sent, at in [("1000-01-01T00:00:00+23:59", "2999-12-31T23:59:59-23:59")] * 2:
        assert taken("track", track(timestamp=at, sentAt=sent))
        assert taken("track", track(timestamp=sent, sentAt=at))


CALLS: list[tuple[str | None, Any]] = [
    ("track", track()),
    ("track", {"userId": "u1"}),  # no event name
    ("track", track(event="")),
    ("track", track(event=" \t")),
    ("track", track(event="a\x00b")),
    ("track", track(event=5)),
    ("track", track(event="x" * MAX_TYPE_LENGTH)),
    ("track", track(event="x" * (MAX_TYPE_LENGTH + 1))),
    ("track", track(messageId="m-1")),
    ("track", track(messageId="")),
    ("track", track(messageId="x" * MAX_ID_LENGTH)),
    ("track", track(messageId="x" * (MAX_ID_LENGTH + 1))),
    ("track", track(messageId="a\x00")),
    ("track", track(messageId=5)),
    ("track", track(messageId=1.5)),
    ("track", track(messageId=True)),
    ("track", track(messageId=[])),
    ("track", track(messageId=None)),
    ("track", track(writeKey=5)),
    ("track", track(writeKey=None)),
    ("track", track(writeKey="tlw_not_the_one_used")),  # the request's own key is
    ("track", track(userId=5, anonymousId={"a": [1]})),
    ("track", track(userId="a\x00")),
    ("track", track(properties=[1], traits="t", context=None)),
    ("track", track(properties={"k\x00": 1})),
    ("track", track(**{"extra\x00": 1})),
    ("track", track(extra="a\x00")),
    ("track", track(type="identify\x00", receivedAt={"k\x00": "\x00"})),  # both ignored
    ("identify", {"userId": "u1", "traits": {"plan": "pro"}}),
    ("identify", {"event": 5}),  # an identify's event: ignored
    ("identify", {}),
    ("alias", {"previousId": "a", "userId": "b"}),
    (None, {"batch": [{"type": "track", **track()}, {"type": "page", "name": "Home"}]}),
    (None, {"batch": []}),
    (None, {"batch": {"type": "page"}}),
    (None, {"events": [{"type": "page"}]}),
    (None, {"batch": [{"type": "page"}, {"type": "fly"}]}),
    (None, {"batch": [{"type": "page"}, "page"]}),
    (None, {"batch": [{"type": "track"}]}),  # no event name
    (None, {"batch": [{"event": "Signed Up"}]}),  # no type
    (None, {"batch": [{"type": "page"}], "sentAt": "2026-11-20T10:00:00Z"}),
    (None, {"batch": [{"type": "page"}], "sentAt": "soon"}),
    (None, {"batch": [{"type": "page"}], "context": {"ip": "a\x00"}}),
    (None, {"batch": [{"type": "page", "context": {}}], "context": {"ip": "a\x00"}}),
    (None, {"batch": [{"type": "page"}], "context": ["any", {"json": 1}]}),
    (None, {"batch": [{"type": "page"}], "writeKey": 5}),
    (None, {"batch": [{"type": "page"}], "extra\x00": "\x00"}),  # ignored
    (None, {"batch": [{"type": "page"}] * get_config().ingest.max_batch_events}),
    (None, {"batch": [{"type": "page"}] * (get_config().ingest.max_batch_events + 1)}),
    (None, [{"type": "page"}]),
]


def test_a_body_is_taken_when_its_schema_says(taken: Any) -> None:
    valid = [_validator(call).is_valid(body) for call, body in CALLS]
    differ = [(c, repr(b)[:80]) for (c, b), v in zip(CALLS, valid, strict=True) if v != taken(c, b)]
    assert not differ, f"the schema and the server disagree on: {differ}"
    assert sum(valid) == 21  # (the list holds both kinds)
