"""The cheap ingest path (ingest/fast_parse.py): a body is parsed and validated in one
pydantic-core call, or declined to the per-event path; either way a request
gets the same answer, the same counts in /stats and the same rejection metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from ingest import services
from ingest.fast_parse import event_parse_fast, events_parse_fast
from plugins.base import Event
from sources.services import source_create
from tests.conftest import UseChains, event
from tests.support.client import delta, post, rejected_metric, stats

pytestmark = pytest.mark.django_db


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# --- the fast parse: exact or declined ----------------------------------------------------


def test_a_valid_array_is_parsed_whole() -> None:
    parsed = events_parse_fast(raw([event(1), event(2, "Click", data={"a": [1, 2.5, None]})]))
    assert parsed is not None and len(parsed) == 2
    assert [(w["sourceId"], w["type"], w["data"]) for w in parsed.wire] == [
        (1, "Heartbeat", None),
        (2, "Click", {"a": [1, 2.5, None]}),
    ]


TIMESTAMPS = [
    "2023-10-27T09:30:00Z",
    "2023-10-27T09:30:00.000Z",
    "2023-10-27T09:30:00.120Z",
    "2023-10-27T09:30:00.123456Z",
    "2023-10-27T09:30:00.123000Z",
    "2023-10-27T09:30:00.000000Z",
    "2023-10-27T09:30:00.1Z",
    "2023-10-27T09:30:00.123456789Z",
    "2023-10-27T11:30:00+02:00",
    "2023-10-27t09:30:00z",
    "0999-01-01T00:00:00Z",
    "2024-02-29T23:59:59.999999-00:30",
]


@pytest.mark.parametrize("ts", TIMESTAMPS)
def test_each_event_is_what_event_makes_of_it(ts: str) -> None:
    sent = event(3, "Open", ts, data={"k": "é", "n": 10**30}, extra="ignored")
    parsed = events_parse_fast(raw([sent]))
    assert parsed is not None
    model = Event.model_validate(sent)
    assert parsed.wire == [model.to_wire()]
    assert parsed.event(0) == model


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",  # not objects
        b'{"sourceId": 1}',  # not an array
        b"not json",
        raw([event(1), {"type": "X"}]),  # one invalid event
        b'[{"sourceId": 1, "type": "X", "timestamp": "2023-10-27T09:30:00Z", "data": NaN}]',
        b'[{"sourceId": 1, "type": "X", "timestamp": "2023-10-27T09:30:00Z", "data": Infinity}]',
        b'[{"sourceId": 1, "type": "X", "timestamp": "2023-10-27T09:30:00Z", "data": "\\ud800"}]',
        raw([event(1, "   ")]),  # blank type
        raw([event(1, "a\x00b")]),
        raw([event(1, data={"a": "\x00"})]),
        raw([event(1, data=_deep(70))]),
        raw([event(1, ts="2023-13-27T09:30:00Z")]),  # month 13
        raw([event(1, ts="0000-01-01T00:00:00Z")]),
        raw([event(1, ts="2023-10-27T09:30:00")]),  # no offset
        raw([event(1, ts="2023-10-27 09:30:00Z")]),  # a space for the T (Event refuses it)
        raw([event(1.0)]),  # an integral float: Event's own path takes it as 1
        raw([{"source_id": 1, "type": "X", "timestamp": "2023-10-27T09:30:00Z"}]),
        raw([event(True)]),
        raw([event(2**64)]),
    ],
)
def test_anything_else_is_declined(body: bytes) -> None:
    assert events_parse_fast(body) is None


@pytest.mark.parametrize(
    "escape",
    ["\\u0000", "\\uD800", "\\udbff", "\\uDC00", "\\udfff"],
)
@pytest.mark.parametrize("where", ["type", "id", "data value", "data key", "nested"])
def test_an_unstorable_escape_anywhere_is_declined(escape: str, where: str) -> None:
    """The strings are checked one by one whenever the body holds such an escape
    (a body without any \\u escape skips those checks: fast_parse._strings_storable)."""
    text = f"a{escape}b"
    ev: dict[str, Any] = event(1, "Click")
    placeholder = "PLACEHOLDER"
    if where == "type":
        ev["type"] = placeholder
    elif where == "id":
        ev["id"] = placeholder
    elif where == "data value":
        ev["data"] = {"k": placeholder}
    elif where == "data key":
        ev["data"] = {placeholder: 1}
    else:
        ev["data"] = {"a": [{"b": [placeholder]}]}
    body = raw([event(2), ev]).replace(placeholder.encode(), text.encode())
    assert events_parse_fast(body) is None
    # ... and one that only looks like one (an escaped backslash, then u0000;
    # a code point below the surrogates) is taken, as Event takes it.
    for harmless in ("\\\\u0000", "\\ud7ff", "\\u00e9"):
        ok = raw([event(2), ev]).replace(placeholder.encode(), f"a{harmless}b".encode())
        parsed = events_parse_fast(ok)
        assert parsed is not None, harmless
        assert parsed.wire[1] == Event.model_validate(json.loads(ok)[1]).to_wire()


def test_deep_data_is_declined_without_any_escape_in_the_body() -> None:
    assert events_parse_fast(raw([event(1, data={"a": _deep(70)})])) is None
    assert events_parse_fast(raw([event(1, data={"a": _deep(60)})])) is not None


def test_one_event_is_parsed_or_declined() -> None:
    parsed = event_parse_fast(raw(event(7, "Open")))
    assert parsed is not None and (parsed.source_id, parsed.type) == (7, "Open")
    assert event_parse_fast(raw([event(7)])) is None
    assert event_parse_fast(b'{"sourceId": 1, "type": "X", "timestamp": NaN}') is None


# --- the same answer on either path ---------------------------------------------------------


def answer(client: Client, path: str, data: Any) -> tuple[int, Any, dict[str, float], Any]:
    before = rejected_metric()
    response = post(client, path, data)
    return response.status_code, response.json(), delta(before, rejected_metric()), stats(client)


@pytest.fixture
def per_event(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Turn the fast parse off, so the same body takes the per-event path."""

    def off() -> None:
        monkeypatch.setattr(services, "events_parse_fast", lambda body: None)
        monkeypatch.setattr(services, "event_parse_fast", lambda body: None)

    return off


BATCHES = [
    # valid events only, some refused by the access check and by either validator
    [event(1), event(3), event(4), event(1, "Spam"), event(2, "Click"), event(3, "Spam")],
    [event(4), event(1, "Spam")],  # nothing accepted: 400 with every reason
    [event(3), event(3, "Click")],  # nothing accepted, all forbidden: 403
    [event(2, data={"big": 10**30, "text": "é\u2028", "list": [1.5, -0.0]})],
    [],
]


@pytest.mark.parametrize("sent", BATCHES)
def test_a_batch_gets_the_same_answer_on_both_paths(
    client: Client,
    use_validators: UseChains,
    per_event: Callable[[], None],
    sent: list[Any],
) -> None:
    source_create(source_id=3, name="retired", enabled=False)  # 403 for its events
    use_validators(
        ("SourceIdValidator", {"allowed": [1, 2, 3]}),
        ("EventTypeValidator", {"allowed": ["Heartbeat", "Click"]}),
    )
    fast = answer(client, "/ingest/batch", sent)
    per_event()
    slow = answer(client, "/ingest/batch", sent)
    assert fast[:3] == slow[:3]
    # each path counted the same events once
    _, first = fast[3]
    _, second = slow[3]
    assert second["events_count"] - first["events_count"] == first["events_count"]


def test_the_mixed_batch_lists_reasons_in_index_order(
    client: Client, use_validators: UseChains
) -> None:
    source_create(source_id=3, name="retired", enabled=False)
    use_validators(
        ("SourceIdValidator", {"allowed": [1, 2, 3]}),
        ("EventTypeValidator", {"allowed": ["Heartbeat", "Click"]}),
    )
    status, out, rejected, _ = answer(client, "/ingest/batch", BATCHES[0])
    assert status == 202
    assert out == {
        "accepted": 2,
        "rejected": [
            {"index": 1, "error": "Source 3 is disabled"},
            {"index": 2, "error": "Disallowed source_id: 4"},
            {"index": 3, "error": "Disallowed event type: Spam"},
            {"index": 5, "error": "Source 3 is disabled"},
        ],
    }
    assert rejected == {"forbidden": 2, "SourceIdValidator": 1, "EventTypeValidator": 1}


@pytest.mark.parametrize("sent", [event(1), event(4), event(1, "Spam"), event(3)])
def test_one_event_gets_the_same_answer_on_both_paths(
    client: Client,
    use_validators: UseChains,
    per_event: Callable[[], None],
    sent: dict[str, Any],
) -> None:
    source_create(source_id=3, name="retired", enabled=False)
    use_validators(
        ("SourceIdValidator", {"allowed": [1, 2, 3]}),
        ("EventTypeValidator", {"allowed": ["Heartbeat", "Click"]}),
    )
    fast = answer(client, "/ingest", sent)
    per_event()
    slow = answer(client, "/ingest", sent)
    assert fast[:3] == slow[:3]
