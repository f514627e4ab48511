"""A commit whose answer is lost is resolved, not guessed (broker/commit.py): the
commit's marker, written in the same atomic step, is looked up (and voided
when absent) on a connection of its own once the store answers.

Redis: the test's own redis-server (tests/faults/services.py), frozen with
SIGSTOP or reached through a TCP proxy that delays or cuts the link. The
database: the test database, a commit's transaction held open by a thread."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.db import connections
from django_q.conf import Conf

from broker.commit import CommitOutcomeUnknown, broker_commit
from broker.interface import CommitFailed, queue_broker
from broker.leases import process_start
from broker.models import CommitMarker, QueuedTask
from broker.orm import OrmBroker
from broker.redis_streams import RedisStreamsBroker
from core.metrics.series import COMMIT_OUTCOME_UNKNOWN
from tests.faults.services import OwnRedis
from tests.support.procs import wait_until

STORE_TIMEOUT_S = 0.5


def _event(n: int, *, with_id: bool = False) -> dict[str, object]:
    wire: dict[str, object] = {
        "sourceId": 1,
        "type": "Click",
        "timestamp": "2026-12-07T10:00:00Z",
        "data": {"n": n},
    }
    if with_id:
        wire["id"] = f"e-{n}-{uuid.uuid4().hex[:6]}"
    return wire


def _unknown_total() -> float:
    return float(COMMIT_OUTCOME_UNKNOWN._value.get())


def _later(seconds: float, action: object) -> threading.Timer:
    timer = threading.Timer(seconds, action)  # type: ignore[arg-type]
    timer.start()
    return timer


@pytest.fixture(autouse=True)
def _enqueued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "SYNC", False)  # really enqueue (tests run inline otherwise)


# --- Redis ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def streams(own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisStreamsBroker]:
    """The request path's Redis broker, through the proxy, warmed (a connection
    in its pool, as in a web process that has answered before)."""
    monkeypatch.setattr(Conf, "REDIS", own_redis.url())
    broker = RedisStreamsBroker(f"test-{uuid.uuid4().hex}")
    broker.bound_timeouts(STORE_TIMEOUT_S)
    broker.connection.ping()
    try:
        with queue_broker.override(broker):
            yield broker
    finally:
        own_redis.process and own_redis.process.send_signal(signal.SIGCONT)
        own_redis.proxy.heal()
        broker.delete_queue()


def _entries(own_redis: OwnRedis, broker: RedisStreamsBroker) -> int:
    client = redis.Redis.from_url(own_redis.direct_url(), socket_timeout=10)
    try:
        return int(client.xlen(broker.stream))
    finally:
        client.close()


@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_a_commit_sent_to_a_frozen_redis_is_found_landed_when_it_wakes(
    own_redis: OwnRedis, streams: RedisStreamsBroker, with_id: bool
) -> None:
    """Finding 2: the commit's answer times out (Redis SIGSTOPped), Redis runs it
    on waking; the request learns it landed: a success, counted once."""
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    _later(2.0, lambda: own_redis.process and own_redis.process.send_signal(signal.SIGCONT))
    started = time.monotonic()
    broker_commit([[_event(1, with_id=with_id)]], deadline=time.monotonic() + 10)
    assert 1.5 < time.monotonic() - started < 10
    assert _entries(own_redis, streams) == 1


def test_a_commit_delayed_past_its_timeout_lands_and_is_answered_landed(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    own_redis.proxy.delay(1.5)  # the script reaches Redis after its socket timeout
    broker_commit([[_event(1)], [_event(2)]], deadline=time.monotonic() + 10)
    own_redis.proxy.heal()
    assert _entries(own_redis, streams) == 2


def test_a_commit_cut_before_it_reached_redis_is_not_taken_and_never_lands(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    """The commit is sent into a slow link that is then cut: it never reached
    Redis. The resolver, once the link is back, voids it: a failure, nothing
    queued, and the same commit sent again is refused."""
    own_redis.proxy.delay(3.0)
    _later(0.3, own_redis.proxy.cut)
    _later(1.0, own_redis.proxy.heal)
    before = _unknown_total()
    with pytest.raises(redis.RedisError):
        broker_commit([[_event(1)]], deadline=time.monotonic() + 10)
    assert _entries(own_redis, streams) == 0
    assert _unknown_total() == before


def test_a_voided_commit_is_refused_if_it_arrives_after_its_resolution(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    commit_id = uuid.uuid4().hex
    assert streams.commit_outcome(commit_id, deadline=time.monotonic() + 5) is False
    with pytest.raises(redis.ResponseError, match="VOIDED"):
        streams.commit(["task"], commit_id=commit_id)
    assert _entries(own_redis, streams) == 0
    # A commit that landed is answered landed, and its resend is not run twice.
    landed = uuid.uuid4().hex
    assert streams.commit(["task"], commit_id=landed) == set()
    assert streams.commit(["task"], commit_id=landed) == set()
    assert streams.commit_outcome(landed, deadline=time.monotonic() + 5) is True
    assert _entries(own_redis, streams) == 1


def test_a_commit_whose_outcome_redis_does_not_tell_in_time_is_unknown(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    own_redis.proxy.delay(5.0)
    _later(0.3, own_redis.proxy.cut)  # and stays cut past the deadline
    before = _unknown_total()
    started = time.monotonic()
    with pytest.raises(CommitOutcomeUnknown):
        broker_commit([[_event(1, with_id=True)]], deadline=time.monotonic() + 2)
    assert time.monotonic() - started < 3
    assert _unknown_total() == before + 1
    own_redis.proxy.heal()
    assert _entries(own_redis, streams) == 0  # the cut dropped it: and never lands


def test_a_commit_to_an_unreachable_redis_certainly_failed_at_once(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    streams.connection.connection_pool.disconnect()
    own_redis.proxy.cut()
    started = time.monotonic()
    with pytest.raises(CommitFailed):
        broker_commit([[_event(1)]], deadline=time.monotonic() + 10)
    assert time.monotonic() - started < 2  # no resolution: nothing was sent


def test_a_claim_while_redis_is_frozen_finds_nothing_instead_of_raising(
    own_redis: OwnRedis, streams: RedisStreamsBroker
) -> None:
    """django-q2's pusher dies on an exception of ``dequeue`` and is replaced
    about 10 s later: after a short freeze, every batch would wait that long."""
    broker_commit([[_event(1)]], deadline=time.monotonic() + 10)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        assert streams.dequeue() is None  # its socket timeout, then a pause
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    claimed = wait_until(streams.dequeue, timeout=10, interval=0.01)
    assert len(claimed) == 1


def test_a_claim_whose_answer_was_lost_is_handed_out_at_the_next_claim(
    own_redis: OwnRedis, streams: RedisStreamsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2's missing events: the claim times out in a frozen Redis, which
    runs it on waking: its entries are claimed by this live cluster, handed to
    nobody. The next claim finds them by the claim's record (not after
    ``queue.retry``)."""
    monkeypatch.setattr(Conf, "RETRY", 3600)
    # A cluster's pusher: its sentinel renews the lease (here, once), it claims.
    streams.set_stat(f"{Conf.Q_STAT}:cluster-{uuid.uuid4().hex[:8]}", "", 30)
    assert streams.dequeue() is None  # its claims' connection open
    broker_commit([[_event(1)]], deadline=time.monotonic() + 10)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        assert streams.dequeue() is None  # sent; its answer times out
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    claimed = wait_until(streams.dequeue, timeout=10, interval=0.01)
    assert len(claimed) == 1
    assert streams.depth().claimed == 1
    streams.acknowledge(claimed[0][0])
    assert streams.depth().claimed == 0
    assert streams.dequeue() is None


def test_a_lost_claims_entry_held_by_a_worker_since_is_not_handed_out_again(
    own_redis: OwnRedis, streams: RedisStreamsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim whose answer was lost is looked up by its record; an entry of it
    that a queue worker holds by then (claims belong to the worker running
    them, broker/workers.py) stays that worker's: handing it out again would
    run the batch twice at once."""
    monkeypatch.setattr(Conf, "RETRY", 3600)
    cluster = f"cluster-{uuid.uuid4().hex[:8]}"
    streams.set_stat(f"{Conf.Q_STAT}:{cluster}", "", 30)
    assert streams.dequeue() is None  # its claims' connection open
    broker_commit([[_event(1)], [_event(2)]], deadline=time.monotonic() + 10)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        assert streams.dequeue() is None  # sent; its answer times out
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    wait_until(lambda: streams.depth().claimed == 2, timeout=10, interval=0.01)
    first = _text_id(own_redis, streams)
    worker = subprocess.Popen(["sleep", "60"])
    try:
        start = wait_until(lambda: process_start(worker.pid), timeout=5, interval=0.01)
        assert streams._adopt([first], cluster, worker.pid, start) == 1
        claimed = wait_until(streams.dequeue, timeout=10, interval=0.01)
        assert [task_id for task_id, _ in claimed] != [first]
        assert len(claimed) == 1  # the other entry, still the cluster's own
        assert streams.dequeue() is None
        assert streams._holders() == [(worker.pid, start)]
    finally:
        worker.kill()
        worker.wait()


def _text_id(own_redis: OwnRedis, broker: RedisStreamsBroker) -> str:
    """The oldest entry of the stream."""
    client = redis.Redis.from_url(own_redis.direct_url(), socket_timeout=10)
    try:
        entry_id = client.xrange(broker.stream, count=1)[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    finally:
        client.close()


# --- the ORM broker (SQLite and PostgreSQL) -------------------------------------------


class _HeldCommit(OrmBroker):
    """A commit whose transaction stays open (its COMMIT not yet sent) until
    ``release`` is set: what a frozen database or a slow link looks like from
    another connection."""

    def _setup(self) -> None:
        super()._setup()
        self.inside = threading.Event()
        self.release = threading.Event()

    def enqueue(self, task: str) -> int:
        pk = super().enqueue(task)
        self.inside.set()
        assert self.release.wait(30)
        return pk


def _commit_in_thread(broker: OrmBroker, commit_id: str) -> threading.Thread:
    def run() -> None:
        try:
            # Two tasks: one transaction (a single task on PostgreSQL is one statement).
            broker.commit(["task", "task"], commit_id=commit_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_orm_a_commit_in_flight_is_found_landed_once_it_commits() -> None:
    broker = _HeldCommit(list_key=f"held-{uuid.uuid4().hex[:8]}")
    commit_id = uuid.uuid4().hex
    thread = _commit_in_thread(broker, commit_id)
    assert broker.inside.wait(30)
    _later(1.0, broker.release.set)
    assert broker.commit_outcome(commit_id, deadline=time.monotonic() + 20) is True
    thread.join(30)
    assert QueuedTask.objects.filter(queue=broker.list_key).count() == 2


@pytest.mark.django_db(transaction=True)
def test_orm_a_commit_held_past_the_deadline_is_unknown_then_landed() -> None:
    broker = _HeldCommit(list_key=f"held-{uuid.uuid4().hex[:8]}")
    commit_id = uuid.uuid4().hex
    thread = _commit_in_thread(broker, commit_id)
    assert broker.inside.wait(30)
    started = time.monotonic()
    assert broker.commit_outcome(commit_id, deadline=time.monotonic() + 1) is None
    assert time.monotonic() - started < 2
    broker.release.set()
    thread.join(30)
    assert broker.commit_outcome(commit_id, deadline=time.monotonic() + 20) is True
    assert QueuedTask.objects.filter(queue=broker.list_key).count() == 2


@pytest.mark.django_db(transaction=True)
def test_orm_a_commit_that_never_came_is_voided_and_can_never_land() -> None:
    broker = OrmBroker(list_key=f"void-{uuid.uuid4().hex[:8]}")
    commit_id = uuid.uuid4().hex
    assert broker.commit_outcome(commit_id, deadline=time.monotonic() + 20) is False
    assert CommitMarker.objects.get(commit_id=commit_id).landed is False
    with pytest.raises(CommitFailed):
        broker.commit(["task"], commit_id=commit_id)
    assert QueuedTask.objects.filter(queue=broker.list_key).count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tasks", [["a"], ["a", "b"]], ids=["one-task", "two-tasks"])
def test_orm_a_commit_marks_itself_with_its_tasks(tasks: list[str]) -> None:
    broker = OrmBroker(list_key=f"mark-{uuid.uuid4().hex[:8]}")
    commit_id = uuid.uuid4().hex
    assert broker.commit(tasks, commit_id=commit_id) == set()
    assert CommitMarker.objects.get(commit_id=commit_id).landed is True
    assert QueuedTask.objects.filter(queue=broker.list_key).count() == len(tasks)
    assert broker.commit_outcome(commit_id, deadline=time.monotonic() + 20) is True
