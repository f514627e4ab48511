"""Events ingested over real HTTP reach /stats through a real django-q2 cluster,
counted exactly, from several sources and several concurrent clients, through
both /ingest and /ingest/batch; SQLite holds up under concurrent load."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG
from tests.support.dbread import processed_batches, wait_queue_empty
from tests.support.installations import installed_project
from tests.support.procs import Project, Server
from tests.support.traffic import Post, post_concurrently, wait_for_totals

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
OFFSETS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
TYPES = ["Heartbeat", "Click", "View"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One installation (web + 2 queue workers) shared by this module's tests."""
    with installed_project(tmp_path_factory.mktemp("pipeline"), BASE_CONFIG) as proj:
        proj.start()
        yield proj


@pytest.fixture
def server(pipeline: Project) -> Server:
    return pipeline.servers[0]


def _events(sources: list[int], count: int) -> list[dict[str, Any]]:
    """``count`` distinct events spread over ``sources``, types and timezones."""
    out = []
    for i in range(count):
        when = T0 + timedelta(seconds=i * 7)
        out.append(
            {
                "sourceId": sources[i % len(sources)],
                "type": TYPES[(i // len(sources)) % len(TYPES)],
                "timestamp": when.astimezone(OFFSETS[i % len(OFFSETS)]).isoformat(),
                "data": {"seq": i},
            }
        )
    return out


def _zulu(timestamp: str) -> str:
    return datetime.fromisoformat(timestamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_sources(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """What /stats/{id} must say for each source, worked out from the events sent."""
    by_source: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_source[e["sourceId"]].append(e)
    expected = {}
    for sid, evs in by_source.items():
        instants = sorted(datetime.fromisoformat(e["timestamp"]) for e in evs)
        expected[sid] = {
            "source_id": sid,
            "name": None,
            "total_events": len(evs),
            "first_event": _zulu(instants[0].isoformat()),
            "last_event": _zulu(instants[-1].isoformat()),
            "event_types": dict(sorted(Counter(e["type"] for e in evs).items())),
        }
    return expected


def test_events_from_many_sources_and_clients_are_counted_exactly(
    pipeline: Project, server: Server
) -> None:
    sources = [101, 102, 103, 104, 105, 2**64 - 1]
    events = _events(sources, 900)
    singles, batched = events[:300], events[300:]
    posts: list[Post] = [("/ingest", e) for e in singles]
    posts += [("/ingest/batch", batched[i : i + 40]) for i in range(0, len(batched), 40)]

    with server.client() as client:
        before = client.get("/stats").json()
        responses = post_concurrently(server.url, posts, clients=6)

        assert [r.status_code for r in responses] == [202] * len(posts)
        assert all(r.json() == {"status": "accepted"} for r in responses[: len(singles)])
        assert [r.json() for r in responses[len(singles) :]] == [
            {"accepted": len(body), "rejected": []} for _, body in posts[len(singles) :]
        ]

        want = {
            "sources_count": before["sources_count"] + len(sources),
            "events_count": before["events_count"] + len(events),
        }
        wait_for_totals(client, events=want["events_count"], sources=want["sources_count"])
        wait_queue_empty(pipeline.database_url)  # every committed batch processed
        assert client.get("/stats").json() == want

        for sid, expected in _expected_sources(events).items():
            assert client.get(f"/stats/{sid}").json() == expected

    # Group commit: fewer broker writes than requests, never one per event.
    ledger = processed_batches(pipeline.database_url)
    assert sum(ledger.values()) == want["events_count"]
    assert len(ledger) < len(posts)


def test_concurrent_load_never_finds_the_database_locked(pipeline: Project, server: Server) -> None:
    """8 clients x 250 single-event requests: every one accepted and counted,
    and no process of the tree ever logs "database is locked"."""
    clients, per_client = 8, 250
    sources = list(range(201, 201 + clients))
    events = _events(sources, clients * per_client)

    with server.client() as client:
        before = client.get("/stats").json()
        responses = post_concurrently(server.url, [("/ingest", e) for e in events], clients=clients)
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {202: len(events)}

        total = before["events_count"] + len(events)
        wait_for_totals(client, events=total)
        wait_queue_empty(pipeline.database_url)
        assert client.get("/stats").json() == {
            "sources_count": before["sources_count"] + len(sources),
            "events_count": total,
        }
        for sid in sources:
            assert client.get(f"/stats/{sid}").json()["total_events"] == per_client

    log = server.log()
    assert "database is locked" not in log
    assert "Traceback" not in log
