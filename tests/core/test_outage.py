"""What counts as an outage of a store, and the wait for it: bounded backoff,
one log line at its start and one at its end, the metrics."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from django import db
from prometheus_client import REGISTRY

from core.outage import (
    BACKOFF_MAX_S,
    DATABASE,
    REDIS,
    Backoff,
    StoreUnavailable,
    outage_retry,
    store_unavailable,
)
from plugins.base import ProcessingError


@pytest.fixture(autouse=True)
def _no_outage() -> Iterator[None]:
    Backoff.reset()
    yield
    Backoff.reset()


def _wrapped(django_error: type[Exception], cause: Exception) -> Exception:
    try:
        raise django_error(str(cause)) from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "store"),
    [
        (_wrapped(db.OperationalError, psycopg.OperationalError("connection refused")), DATABASE),
        (
            _wrapped(db.InterfaceError, psycopg.InterfaceError("connection already closed")),
            DATABASE,
        ),
        (psycopg.OperationalError("server closed the connection unexpectedly"), DATABASE),
        (_wrapped(db.OperationalError, sqlite3.OperationalError("database is locked")), DATABASE),
        (_wrapped(db.OperationalError, sqlite3.OperationalError("no such table: x")), None),
        (redis.ConnectionError("Connection refused"), REDIS),
        (redis.TimeoutError("Timeout reading from socket"), REDIS),
        (redis.ResponseError("WRONGTYPE"), None),
        (ProcessingError("refused: bad event"), None),
        (ValueError("a bug"), None),
    ],
)
def test_an_unreachable_store_is_told_from_a_plugin_refusing(
    error: Exception, store: str | None
) -> None:
    assert store_unavailable(error) == store


def test_a_plugins_own_error_raised_from_an_unreachable_store_is_an_outage() -> None:
    try:
        try:
            raise redis.ConnectionError("Connection refused")
        except redis.ConnectionError as exc:
            raise ProcessingError("cache down") from exc
    except ProcessingError as exc:
        assert store_unavailable(exc) == REDIS
    try:
        try:
            raise db.OperationalError("server closed the connection")
        except db.OperationalError:
            raise ProcessingError("archive down")  # noqa: B904 (its context, implicitly)
    except ProcessingError as exc:
        assert store_unavailable(exc) == DATABASE


def _sample(name: str, store: str) -> float:
    return REGISTRY.get_sample_value(name, {"store": store}) or 0.0


def test_an_outage_is_waited_out_with_backoff_logged_once_at_each_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    calls = iter([db.OperationalError("refused")] * 7 + [None])

    def flaky() -> str:
        error = next(calls)
        if error is not None:
            raise error
        return "done"

    seconds = _sample("telemetron_store_unavailable_seconds_total", DATABASE)
    retries = _sample("telemetron_store_outage_retries_total", DATABASE)
    deadline = time.monotonic() + 60
    assert outage_retry(flaky, deadline=deadline, doing="test", sleep=slept.append) == "done"
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, BACKOFF_MAX_S, BACKOFF_MAX_S]
    lines = [r.getMessage() for r in caplog.records if r.name == "telemetron.outage"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("the database is unreachable (OperationalError: refused)")
    assert lines[1].startswith("the database answers again after")
    assert _sample("telemetron_store_outage_retries_total", DATABASE) == retries + 7
    assert _sample("telemetron_store_unavailable_seconds_total", DATABASE) == pytest.approx(
        seconds + sum(slept)
    )


def test_an_outage_past_the_deadline_ends_the_wait_and_other_errors_are_not_waited() -> None:
    slept: list[float] = []

    def down() -> None:
        raise redis.ConnectionError("Connection refused")

    with pytest.raises(StoreUnavailable, match="the redis is unreachable"):
        outage_retry(down, deadline=time.monotonic() + 1.0, doing="test", sleep=slept.append)
    # (sleep= waits no time) the next wait, 1.6 s, would pass the deadline
    assert slept == [0.2, 0.4, 0.8]

    def refuses() -> None:
        raise ProcessingError("bad event")

    with pytest.raises(ProcessingError):
        outage_retry(refuses, deadline=time.monotonic() + 60, doing="test", sleep=slept.append)
    assert slept == [0.2, 0.4, 0.8]
