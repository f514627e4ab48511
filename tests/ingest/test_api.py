"""POST /ingest, every row of DESIGN §3: 202, 400 (bad JSON, not an object,
missing/invalid field, empty type, validator rejection), any Content-Type, gzip,
413, 415, 503 + Retry-After, 500."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from ingest.batcher import BufferedBatcher, get_batcher
from ops.broker import broker, broker_commit
from plugins import live
from plugins.base import MAX_DATA_DEPTH, MAX_TYPE_LENGTH, Event, PluginParams, PluginSpec, Validator
from plugins.chains import Chains
from plugins.registry import get_registry
from telemetron_site.config import get_config
from tests.conftest import UseChains as UseValidators
from tests.conftest import event
from tests.support.client import body, post, stats
from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024  # ingest.max_body_bytes: the default, tests/config.toml keeps it


def ingest(client: Client, data: Any, **kw: Any) -> Any:
    return post(client, "/ingest", data, **kw)


def assert_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    out: dict[str, Any] = response.json()
    assert isinstance(out["error"], str) and out["error"]
    if error is not None:
        assert out["error"] == error
    return out


def counted(client: Client) -> tuple[int, int]:
    status, out = stats(client)
    assert status == 200
    return out["sources_count"], out["events_count"]


def test_settings_are_the_documented_defaults() -> None:
    cfg = get_config()
    assert cfg.ingest.max_body_bytes == LIMIT
    assert cfg.queue.workers == 0  # inline: stats are visible after the 202


# --- 202 ---------------------------------------------------------------------------


def test_accepted_event_gets_202_and_is_counted(client: Client) -> None:
    response = ingest(client, event(7, "Heartbeat"))
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "accepted"}
    assert counted(client) == (1, 1)
    status, out = stats(client, 7)
    assert (status, out["total_events"], out["event_types"]) == (200, 1, {"Heartbeat": 1})


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",  # navigator.sendBeacon
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "",
    ],
)
def test_body_is_json_whatever_the_content_type(client: Client, content_type: str) -> None:
    response = ingest(client, event(1), content_type=content_type)
    assert response.status_code == 202, response.content
    assert counted(client) == (1, 1)


def test_unknown_fields_and_any_data_are_accepted(client: Client) -> None:
    data = {"nested": [1, 2.5, None, True, "x", {"deep": []}]}
    response = ingest(client, event(1, "Custom", data=data, extra="ignored", sourceIdx=9))
    assert response.status_code == 202
    assert stats(client, 1)[1]["event_types"] == {"Custom": 1}


def test_utf8_body_with_unicode_type(client: Client) -> None:
    response = ingest(
        client, '{"sourceId": 1, "type": "Ünïcode ✓", "timestamp": "2023-10-27T09:30:00Z"}'.encode()
    )
    assert response.status_code == 202
    assert stats(client, 1)[1]["event_types"] == {"Ünïcode ✓": 1}


# --- 400 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"sourceId": 1,}',
        b"{'sourceId': 1}",
        b'{"sourceId": NaN, "type": "A", "timestamp": "2023-10-27T09:30:00Z"}',
        b"Infinity",
        b"\xff\xfe{}",
        b'{"sourceId": 1} trailing',
    ],
)
def test_bad_json_is_400(client: Client, raw: bytes) -> None:
    out = assert_error(ingest(client, raw), 400)
    assert out["error"].startswith("Invalid JSON: ")
    assert counted(client) == (0, 0)


@pytest.mark.parametrize("value", [[], [event(1)], "event", 1, None, True])
def test_a_body_that_is_not_an_object_is_400(client: Client, value: Any) -> None:
    assert_error(ingest(client, value), 400, "Invalid event: expected a JSON object")


@pytest.mark.parametrize("field", ["sourceId", "type", "timestamp"])
def test_missing_field_is_400_naming_it(client: Client, field: str) -> None:
    value = event(1)
    del value[field]
    out = assert_error(ingest(client, value), 400, f"Invalid event: {field}: Field required")
    assert out["details"] == [{"field": field, "message": "Field required"}]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sourceId", -1),
        ("sourceId", 2**64),
        ("sourceId", "1"),
        ("sourceId", 1.5),
        ("sourceId", 2.0**64),
        ("sourceId", True),
        ("sourceId", None),
        ("type", 5),
        ("type", None),
        ("timestamp", "2023-10-27T09:30:00"),
        ("timestamp", "2023-10-27"),
        ("timestamp", 1698399000),
        ("timestamp", "0001-01-01T00:00:00+01:00"),
    ],
)
def test_invalid_field_is_400_naming_it(client: Client, field: str, value: Any) -> None:
    sent = {**event(1), field: value}
    out = assert_error(ingest(client, sent), 400)
    assert out["error"].startswith(f"Invalid event: {field}: ")
    assert [d["field"] for d in out["details"]] == [field]
    assert counted(client) == (0, 0)


def test_several_invalid_fields_are_all_in_details(client: Client) -> None:
    out = assert_error(ingest(client, {"sourceId": -1, "type": "", "timestamp": "x"}), 400)
    assert {d["field"] for d in out["details"]} == {"sourceId", "type", "timestamp"}


@pytest.mark.parametrize("event_type", ["", " ", "\t"])
def test_empty_type_is_400(client: Client, event_type: str) -> None:
    out = assert_error(ingest(client, event(1, event_type)), 400)
    assert out["error"].startswith("Invalid event: type: ")
    assert out["details"][0]["field"] == "type"


def test_validator_rejection_names_the_reason(
    client: Client, use_validators: UseValidators
) -> None:
    use_validators(("SourceIdValidator", {"allowed": [1, 2, 3]}))
    out = assert_error(ingest(client, event(4)), 400, "Disallowed source_id: 4")
    assert out["details"] == [
        {"validator": "SourceIdValidator", "reason": "Disallowed source_id: 4"}
    ]
    assert ingest(client, event(3)).status_code == 202
    assert counted(client) == (1, 1)
    assert stats(client, 4)[0] == 404


def test_event_type_validator_rejection(client: Client, use_validators: UseValidators) -> None:
    use_validators(("EventTypeValidator", {"allowed": ["Heartbeat"]}))
    assert_error(ingest(client, event(1, "Click")), 400, "Disallowed event type: Click")
    assert ingest(client, event(1, "Heartbeat")).status_code == 202


@pytest.mark.parametrize(
    ("order", "error"),
    [
        (("SourceIdValidator", "EventTypeValidator"), "Disallowed source_id: 4"),
        (("EventTypeValidator", "SourceIdValidator"), "Disallowed event type: Click"),
    ],
)
def test_validators_run_in_chain_order_and_the_first_rejection_answers(
    client: Client, use_validators: UseValidators, order: tuple[str, str], error: str
) -> None:
    params = {"SourceIdValidator": {"allowed": [1]}, "EventTypeValidator": {"allowed": ["A"]}}
    use_validators(*[(name, params[name]) for name in order])
    out = assert_error(ingest(client, event(4, "Click")), 400, error)
    assert out["details"][0]["validator"] == order[0]


def test_empty_allowed_lists_accept_everything(
    client: Client, use_validators: UseValidators
) -> None:
    use_validators(("SourceIdValidator", {"allowed": []}), ("EventTypeValidator", {"allowed": []}))
    assert ingest(client, event(123456, "Anything")).status_code == 202


def _deep_event(depth: int) -> bytes:
    head = body(event(1))[:-1] + b', "data": '
    return head + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 600, 100_000])
def test_data_nested_too_deeply_is_400_not_a_crash(client: Client, depth: int) -> None:
    out = assert_error(ingest(client, _deep_event(depth)), 400)
    assert out["error"].startswith(("Invalid event: data: must not nest", "Invalid JSON: nested"))
    assert counted(client) == (0, 0)


def test_data_at_max_depth_is_accepted(client: Client) -> None:
    assert ingest(client, _deep_event(MAX_DATA_DEPTH)).status_code == 202
    assert counted(client) == (1, 1)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"sourceId": 1, "type": "a\\u0000b", "timestamp": "2023-10-27T09:30:00Z"}', "type"),
        (b'{"sourceId": 1, "type": "\\ud800", "timestamp": "2023-10-27T09:30:00Z"}', "type"),
        (
            b'{"sourceId": 1, "type": "A", "timestamp": "2023-10-27T09:30:00Z", '
            b'"data": {"s": "\\u0000"}}',
            "data",
        ),
        (
            b'{"sourceId": 1, "type": "A", "timestamp": "2023-10-27T09:30:00Z", '
            b'"data": ["\\udfff"]}',
            "data",
        ),
    ],
)
def test_strings_a_database_cannot_store_are_400(client: Client, raw: bytes, field: str) -> None:
    """PostgreSQL's text and jsonb refuse NUL and unpaired surrogates: refused
    here, on every database, rather than accepted and then dead-lettered."""
    out = assert_error(ingest(client, raw), 400)
    assert out["details"][0]["field"] == field
    assert counted(client) == (0, 0)


def test_longest_type_is_counted_and_a_longer_one_is_400(client: Client) -> None:
    """256 four-byte characters fit PostgreSQL's index on (source, type)."""
    longest = "".join(chr(0x10000 + i * 7919 % 0xF0000) for i in range(MAX_TYPE_LENGTH))
    assert ingest(client, event(1, longest)).status_code == 202
    assert stats(client, 1)[1]["event_types"] == {longest: 1}
    out = assert_error(ingest(client, event(1, "x" * (MAX_TYPE_LENGTH + 1))), 400)
    assert out["details"][0]["field"] == "type"


# --- gzip, 413, 415 ----------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid event of exactly ``size`` bytes (its data holds the padding)."""
    head = body(event(1, data=""))[:-2]  # ends with: "data": "
    pad = size - len(head) - 2
    out = head + b"x" * pad + b'"}'
    assert len(out) == size
    return out


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP"])
def test_gzip_body_is_accepted(client: Client, encoding: str) -> None:
    response = ingest(client, event(9), gzipped=True, Content_Encoding=encoding)
    assert response.status_code == 202, response.content
    assert stats(client, 9)[0] == 200


def test_identity_encoding_is_plain(client: Client) -> None:
    assert ingest(client, event(1), Content_Encoding="identity").status_code == 202


@pytest.mark.parametrize("raw", [b"not gzip at all", gzip.compress(body(event(1)))[:-8]])
def test_broken_gzip_is_400(client: Client, raw: bytes) -> None:
    out = assert_error(ingest(client, raw, Content_Encoding="gzip"), 400)
    assert out["error"].startswith("Invalid gzip body")


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "zstd"])
def test_unknown_content_encoding_is_415(client: Client, encoding: str) -> None:
    assert_error(
        ingest(client, event(1), Content_Encoding=encoding),
        415,
        f"Unsupported Content-Encoding: {encoding} (use gzip or none)",
    )
    assert counted(client) == (0, 0)


def test_body_of_exactly_max_body_bytes_is_accepted(client: Client) -> None:
    assert ingest(client, padded(LIMIT)).status_code == 202


def test_body_over_max_body_bytes_is_413(client: Client) -> None:
    assert_error(
        ingest(client, padded(LIMIT + 1)), 413, f"Request body exceeds the limit of {LIMIT} bytes"
    )
    assert counted(client) == (0, 0)


def test_declared_content_length_over_the_limit_is_413_before_reading(client: Client) -> None:
    response = client.generic(
        "POST",
        "/ingest",
        body(event(1)),
        content_type="application/json",
        CONTENT_LENGTH=str(LIMIT + 1),
    )
    assert_error(response, 413, f"Request body exceeds the limit of {LIMIT} bytes")


def test_invalid_content_length_is_400(client: Client) -> None:
    response = client.generic(
        "POST", "/ingest", body(event(1)), content_type="application/json", CONTENT_LENGTH="abc"
    )
    assert_error(response, 400, "Invalid Content-Length header")


def test_limit_applies_after_decompression(client: Client) -> None:
    small = gzip.compress(padded(LIMIT + 1))
    assert len(small) < LIMIT // 100
    assert_error(
        ingest(client, small, Content_Encoding="gzip"),
        413,
        f"Request body exceeds the limit of {LIMIT} bytes",
    )
    assert ingest(client, gzip.compress(padded(LIMIT)), Content_Encoding="gzip").status_code == 202


def test_every_member_of_a_multi_member_gzip_body_is_read(client: Client) -> None:
    """`cat a.gz b.gz` is one valid gzip stream: nothing after the first member
    may be dropped silently."""
    text = body([event(1), event(2), event(3)])
    members = gzip.compress(text[:20]) + gzip.compress(text[20:40]) + gzip.compress(text[40:])
    response = post(client, "/ingest/batch", members, Content_Encoding="gzip")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 3
    assert counted(client) == (3, 3)
    # The limit counts every member; garbage after a member is a broken body.
    big = gzip.compress(padded(LIMIT // 2)) + gzip.compress(padded(LIMIT // 2 + 1))
    assert_error(ingest(client, big, Content_Encoding="gzip"), 413)
    out = assert_error(
        ingest(client, gzip.compress(body(event(1))) + b"junk", Content_Encoding="gzip"), 400
    )
    assert out["error"].startswith("Invalid gzip body")


def _gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes, gzipped (about a thousandth of that)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    parts = [out.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join(parts) + out.flush()


def test_gzip_bomb_is_refused_without_being_inflated(client: Client) -> None:
    bomb = _gzip_bomb(64 * LIMIT)  # 64 MiB once inflated
    assert len(bomb) < LIMIT
    tracemalloc.start()
    try:
        response = ingest(client, bomb, Content_Encoding="gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_error(response, 413, f"Request body exceeds the limit of {LIMIT} bytes")
    # Never inflated past the limit: the request allocated a few MiB (the 1 MiB
    # body and its inflated first MiB), nowhere near the bomb's 64 MiB.
    assert peak < 16 * LIMIT, f"peak allocation {peak} bytes"


# --- 503 + Retry-After ----------------------------------------------------------------------


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The queue is unreachable: the real django-q2 Redis broker, pointed at a
    loopback port nothing listens on, with real enqueueing (not inline)."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{free_port()}/0")
    with broker.override(Redis(list_key="telemetron-down")):
        yield


@pytest.mark.usefixtures("broker_down")
def test_503_with_retry_after_when_the_queue_cannot_take_the_event(client: Client) -> None:
    response = ingest(client, event(1))
    assert_error(response, 503, "The queue cannot take events right now; retry later")
    assert response["Retry-After"] == str(get_config().ingest.retry_after)
    assert counted(client) == (0, 0)


@pytest.mark.usefixtures("broker_down")
def test_503_for_a_batch_when_the_queue_cannot_take_it(client: Client) -> None:
    response = post(client, "/ingest/batch", [event(1), event(2)])
    assert_error(response, 503)
    assert response["Retry-After"] == "1"
    assert counted(client) == (0, 0)


def _commit_then_close_connection(batches: list[list[dict[str, Any]]]) -> None:
    """broker_commit as the flusher thread runs it, closing that thread's
    database connection afterwards (the test database is dropped at the end)."""
    try:
        broker_commit(batches)
    finally:
        connections.close_all()


@pytest.fixture
def small_buffer() -> Iterator[BufferedBatcher]:
    """Buffered acks with room for 2 events and no timed flush: the real
    BufferedBatcher committing to the real (inline) broker."""
    buffered = BufferedBatcher(
        _commit_then_close_connection,
        batch_size=100,
        batch_timeout_s=3600,
        capacity=2,
        retry_after=5,
    )
    with get_batcher.override(buffered):
        yield buffered
    buffered.close(timeout_s=30)


@pytest.mark.django_db(transaction=True)
def test_503_with_retry_after_when_the_buffer_is_full(
    client: Client, small_buffer: BufferedBatcher
) -> None:
    assert ingest(client, event(1)).status_code == 202
    assert ingest(client, event(2)).status_code == 202
    full = ingest(client, event(3))
    assert_error(full, 503, "Ingest buffer full (2 events); retry later")
    assert full["Retry-After"] == "5"
    assert_error(post(client, "/ingest/batch", [event(4)]), 503)
    # Accepted events are committed when the buffer is flushed; refused ones never.
    assert counted(client) == (0, 0)
    small_buffer.close(timeout_s=30)
    assert counted(client) == (2, 2)
    assert stats(client, 3)[0] == 404


# --- 500 --------------------------------------------------------------------------------------


class BuggyValidator(Validator):
    """A third-party validator with a bug."""

    name = "BuggyValidator"

    def validate(self, event: Event) -> None:
        raise KeyError("oops")


@pytest.mark.parametrize("path", ["/ingest", "/ingest/batch"])
def test_unexpected_error_is_500_with_nothing_of_it_shown(
    client: Client, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    base = Chains.build([PluginSpec("processor", "StorageProcessor", {})], get_registry())
    live.reset(Chains(validators=(BuggyValidator(PluginParams()),), processors=base.processors))
    data: Any = event(1) if path == "/ingest" else [event(1)]
    response = post(client, path, data)
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "details": []}
    assert "oops" not in response.content.decode()
    assert f"unhandled error on POST {path}" in caplog.text  # the operator sees it in the log
    assert counted(client) == (0, 0)
