"""Every row of DESIGN §3 for /ingest, /ingest/batch, /stats, /stats/{id} and
/healthz, over real HTTP against one real `manage.py serve` (web + cluster).

The 503 row: with durable acks and the broker down, at the end of this file; with
a full buffer, in test_shutdown.py, on a buffered server.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_CONFIG, event
from tests.support.dbread import queue_length, wait_queue_empty
from tests.support.installations import installed_project
from tests.support.procs import Project, wait_until

pytestmark = pytest.mark.e2e

U64_MAX = 2**64 - 1
ALLOWED_SOURCES = [0, 1, 2, 3, 5, 6, 7, 8, U64_MAX]
ALLOWED_TYPES = ["Heartbeat", "Click", "View", "Crash"]
MIB = 1024 * 1024


def _config() -> dict[str, dict[str, Any]]:
    config = copy.deepcopy(BASE_CONFIG)
    config["validation.plugins.SourceIdValidator"] = {"allowed": ALLOWED_SOURCES}
    config["validation.plugins.EventTypeValidator"] = {"allowed": ALLOWED_TYPES}
    # A buggy validator (raises RuntimeError on type "Crash"): the 500 row.
    config["validation.plugins.CrashingValidator"] = {"crash_type": "Crash"}
    return config


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    with installed_project(tmp_path_factory.mktemp("contract"), _config()) as proj:
        proj.start()
        yield proj


@pytest.fixture
def client(installation: Project) -> Iterator[httpx.Client]:
    with installation.servers[0].client() as c:
        yield c


def _error(response: httpx.Response, status: int) -> str:
    """Assert the contract's error shape; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert set(body) <= {"error", "details"}
    return str(body["error"])


# ---- POST /ingest ---------------------------------------------------------------


def test_ingest_accepts_an_event_with_202(client: httpx.Client) -> None:
    r = client.post("/ingest", json=event(source_id=1, data={"any": ["json", 1, None]}))
    assert r.status_code == 202
    assert r.json() == {"status": "accepted"}


@pytest.mark.parametrize(
    "body",
    [
        event(source_id=U64_MAX),
        event(source_id=0, data=None),
        event(type="Click", data=[1, 2]),
        event(ts="2023-10-27T11:30:00.123456+02:00", data="text"),
        {**event(), "unknownField": True, "data": 3.5},
    ],
    ids=["u64-max", "source-0", "data-array", "offset-fraction", "unknown-field"],
)
def test_ingest_accepts_every_valid_shape(client: httpx.Client, body: dict[str, Any]) -> None:
    assert client.post("/ingest", json=body).status_code == 202


def test_ingest_parses_json_whatever_the_content_type(client: httpx.Client) -> None:
    r = client.post("/ingest", content=json.dumps(event()), headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()) == (202, {"status": "accepted"})


def test_ingest_accepts_gzip_bodies(client: httpx.Client) -> None:
    r = client.post(
        "/ingest",
        content=gzip.compress(json.dumps(event()).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (r.status_code, r.json()) == (202, {"status": "accepted"})


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"sourceId": 1,'])
def test_ingest_rejects_bad_json_with_400(client: httpx.Client, body: bytes) -> None:
    assert _error(client.post("/ingest", content=body), 400).startswith("Invalid JSON")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "Heartbeat", "timestamp": "2023-10-27T09:30:00Z"}, "sourceId"),
        ({"sourceId": 1, "timestamp": "2023-10-27T09:30:00Z"}, "type"),
        ({"sourceId": 1, "type": "Heartbeat"}, "timestamp"),
        (event(source_id=-1), "sourceId"),
        (event(source_id=2**64), "sourceId"),
        (event(source_id="12"), "sourceId"),  # type: ignore[arg-type]
        (event(type=""), "type"),
        (event(ts="2023-10-27T09:30:00"), "timestamp"),  # no offset
        (event(ts="yesterday"), "timestamp"),
    ],
    ids=[
        "no-sourceId",
        "no-type",
        "no-timestamp",
        "negative-id",
        "id-over-u64",
        "id-string",
        "empty-type",
        "no-offset",
        "bad-timestamp",
    ],
)
def test_ingest_rejects_missing_or_invalid_fields_with_400(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    r = client.post("/ingest", json=body)
    message = _error(r, 400)
    assert message.startswith("Invalid event")
    assert field in message
    assert r.json()["details"]


def test_ingest_rejects_a_non_object_with_400(client: httpx.Client) -> None:
    assert "JSON object" in _error(client.post("/ingest", json=[event()]), 400)


def test_ingest_names_the_validators_reason(client: httpx.Client) -> None:
    r = client.post("/ingest", json=event(source_id=4))
    assert _error(r, 400) == "Disallowed source_id: 4"
    assert r.json()["details"] == [
        {"validator": "SourceIdValidator", "reason": "Disallowed source_id: 4"}
    ]
    r = client.post("/ingest", json=event(source_id=1, type="Purchase"))
    assert _error(r, 400) == "Disallowed event type: Purchase"


def test_ingest_rejects_a_body_over_the_limit_with_413(client: httpx.Client) -> None:
    body = json.dumps(event(data="x" * MIB)).encode()
    assert "limit" in _error(client.post("/ingest", content=body), 413)


def test_ingest_applies_the_limit_after_gunzip(client: httpx.Client) -> None:
    inflated = json.dumps(event(data="0" * (4 * MIB))).encode()
    bomb = gzip.compress(inflated)
    assert len(bomb) < 64 * 1024  # small on the wire, 4 MiB inflated
    r = client.post("/ingest", content=bomb, headers={"Content-Encoding": "gzip"})
    assert "limit" in _error(r, 413)


def test_ingest_answers_500_with_the_generic_error_on_a_bug(client: httpx.Client) -> None:
    r = client.post("/ingest", json=event(type="Crash"))
    assert r.status_code == 500
    assert r.json() == {"error": "Internal server error", "details": []}
    # The server lives on.
    assert client.post("/ingest", json=event()).status_code == 202


# ---- POST /ingest/batch ---------------------------------------------------------


def test_batch_accepts_all_valid_events(client: httpx.Client) -> None:
    r = client.post("/ingest/batch", json=[event(source_id=s) for s in (1, 2, 3)])
    assert (r.status_code, r.json()) == (202, {"accepted": 3, "rejected": []})


def test_batch_accepts_the_valid_and_lists_the_rejected_by_index(client: httpx.Client) -> None:
    body = [event(), event(source_id=4), event(), {"sourceId": 1}, event(type="Purchase"), 7]
    r = client.post("/ingest/batch", json=body)
    assert r.status_code == 202
    out = r.json()
    assert out["accepted"] == 2
    assert [x["index"] for x in out["rejected"]] == [1, 3, 4, 5]
    errors = {x["index"]: x["error"] for x in out["rejected"]}
    assert errors[1] == "Disallowed source_id: 4"
    assert errors[3].startswith("Invalid event") and "type" in errors[3]
    assert errors[4] == "Disallowed event type: Purchase"
    assert "JSON object" in errors[5]


def test_batch_with_nothing_accepted_is_400(client: httpx.Client) -> None:
    r = client.post("/ingest/batch", json=[event(source_id=4), event(type="")])
    _error(r, 400)


@pytest.mark.parametrize(
    "body",
    [json.dumps(event()).encode(), b'"events"', b"[1, 2", b"[]"],
    ids=["object", "string", "bad-json", "empty"],
)
def test_batch_body_that_is_not_a_json_array_of_events_is_400(
    client: httpx.Client, body: bytes
) -> None:
    _error(client.post("/ingest/batch", content=body), 400)


def test_batch_over_the_size_limit_is_413(client: httpx.Client) -> None:
    body = json.dumps([event(data="y" * (MIB // 4)) for _ in range(5)]).encode()
    assert "limit" in _error(client.post("/ingest/batch", content=body), 413)


def test_batch_over_max_batch_events_is_413(client: httpx.Client) -> None:
    r = client.post("/ingest/batch", json=[event()] * 1001)
    assert "1000" in _error(r, 413)


# ---- GET /stats, /stats/{source_id} -----------------------------------------------


def test_stats_count_sources_and_events(installation: Project, client: httpx.Client) -> None:
    wait_queue_empty(installation.database_url)  # what other tests sent is counted
    before = client.get("/stats").json()
    assert set(before) == {"sources_count", "events_count"}
    assert client.get(f"/stats/{8}").status_code == 404  # source 8 is new here

    r = client.post("/ingest/batch", json=[event(source_id=8), event(source_id=1)] * 3)
    assert r.json()["accepted"] == 6
    want = {
        "sources_count": before["sources_count"] + 1,
        "events_count": before["events_count"] + 6,
    }
    wait_until(lambda: client.get("/stats").json() == want, timeout=60)
    wait_queue_empty(installation.database_url)
    r = client.get("/stats")
    assert (r.status_code, r.json()) == (200, want)


def test_stats_of_one_source(client: httpx.Client) -> None:
    events = [
        event(source_id=U64_MAX, type="Heartbeat", ts="2023-10-27T11:30:00+02:00"),
        event(source_id=U64_MAX, type="Click", ts="2023-10-27T09:29:59.5Z"),
        event(source_id=U64_MAX, type="Click", ts="2023-10-28T01:00:00.000001-03:00"),
    ]
    # U64_MAX already has events from other tests: use a source of its own too.
    mine = [{**e, "sourceId": 6} for e in events]
    assert client.post("/ingest/batch", json=events + mine).json()["accepted"] == 6

    expected = {
        "source_id": 6,
        "name": None,
        "total_events": 3,
        "first_event": "2023-10-27T09:29:59.500Z",
        "last_event": "2023-10-28T04:00:00.000001Z",
        "event_types": {"Click": 2, "Heartbeat": 1},
    }
    got = wait_until(lambda: (r := client.get("/stats/6")).status_code == 200 and r, timeout=60)
    assert got.json() == expected

    big = wait_until(lambda: client.get(f"/stats/{U64_MAX}").json(), timeout=60)
    assert big["source_id"] == U64_MAX
    assert big["event_types"]["Click"] >= 2


def test_stats_of_an_unknown_source_is_404(client: httpx.Client) -> None:
    r = client.get("/stats/999")
    assert _error(r, 404) == "Source id 999 not found"


@pytest.mark.parametrize("source_id", ["abc", "-1", "1.5", str(2**64)])
def test_stats_of_a_bad_source_id_is_400(client: httpx.Client, source_id: str) -> None:
    _error(client.get(f"/stats/{source_id}"), 400)


# ---- GET /healthz ---------------------------------------------------------------


def test_healthz_is_200_ok_text(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.text == "OK"
    assert r.headers["content-type"].startswith("text/plain")


def test_durable_ingest_is_503_with_retry_after_while_the_broker_is_down(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The 503 row with durable acks: a web node (`serve --web-only`) whose broker
    (Redis, on a loopback port nothing listens on) cannot commit answers 503 and
    Retry-After, never 202."""
    from tests.support.procs import free_port

    config = copy.deepcopy(BASE_CONFIG)
    config["queue"] = {
        **config["queue"],
        "broker": "redis",
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
    }
    config["ingest"] = {"ack": "durable", "commit_timeout": 10, "retry_after": 3}
    with installed_project(tmp_path_factory.mktemp("broker-down"), config) as proj:
        server = proj.start("--web-only")
        with server.client() as client:
            for path, body in (("/ingest", event(1)), ("/ingest/batch", [event(1), event(2)])):
                response = client.post(path, json=body)
                message = _error(response, 503)
                assert message == "The queue cannot take events right now; retry later"
                assert response.headers["Retry-After"] == "3"
            assert client.get("/stats").json() == {"sources_count": 0, "events_count": 0}
        assert server.stop() == 0


def test_ingest_pushes_back_while_no_worker_drains_the_queue(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Backpressure: a web node (`serve --web-only`, no worker running) takes
    batches until `ingest.max_queue_batches` wait in the queue, then answers 503
    + Retry-After instead of letting the backlog grow; what it refused is not queued."""
    config = copy.deepcopy(BASE_CONFIG)
    config["ingest"] = {"max_queue_batches": 2, "retry_after": 5}
    with installed_project(tmp_path_factory.mktemp("backpressure"), config) as proj:
        server = proj.start("--web-only")
        accepted = 0
        with server.client() as client:

            def refused() -> bool:
                nonlocal accepted
                response = client.post("/ingest", json=event(3))
                if response.status_code == 202:
                    accepted += 1
                    return False
                message = _error(response, 503)
                assert message.startswith("Queue backlog of ")
                assert "batches is at its limit of 2" in message
                assert response.headers["Retry-After"] == "5"
                return True

            # The backlog is read at most once a second: a request or two more may
            # get in before the gate sees it.
            wait_until(refused, timeout=30, interval=0.2)
            assert accepted >= 2
            for _ in range(5):
                assert client.post("/ingest", json=event(4)).status_code == 503
        assert queue_length(proj.database_url) == accepted  # one batch per 202, no more
        assert server.stop() == 0
