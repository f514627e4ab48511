"""The checker on small made-up histories: each invariant it reads, broken and
kept, and the table it sums the run up in."""

from __future__ import annotations

from typing import Any

from tests.faults.checker import check
from tests.faults.report import result_table

COMMIT_TIMEOUT = 10.0


def _attempt(
    op: int,
    a: int,
    status: int | str,
    *,
    n: int = 3,
    ids: bool = False,
    t0: float = 1.0,
    t1: float | None = None,
    error: str = "",
    kind: str = "batch",
) -> dict[str, Any]:
    return {
        "rec": "attempt",
        "op": op,
        "a": a,
        "status": status,
        "n": n,
        "ids": ids,
        "kind": kind,
        "source": 101,
        "node": "serve",
        "t0": t0,
        "t1": t0 + 0.01 if t1 is None else t1,
        "error": error,
    }


def _counts(t: float, **types: int) -> dict[str, Any]:
    return {"rec": "counts", "t": t, "types": types}


def _fault(kind: str, start: float, end: float) -> dict[str, Any]:
    return {"rec": "fault", "kind": kind, "start": start, "end": end}


def _kinds(records: list[dict[str, Any]]) -> list[str]:
    return sorted(v.kind for v in check(records, commit_timeout=COMMIT_TIMEOUT).violations)


def test_an_acknowledged_operation_counted_once_in_time_is_no_violation() -> None:
    records = [_fault("kill:pusher", 0.5, 2.0), _attempt(1, 1, 202), _counts(3.0, o1a1=3)]
    result = check(records, commit_timeout=COMMIT_TIMEOUT)
    assert result.violations == []
    row = result.rows["kill:pusher"]
    assert (row.faults, row.ops, row.acked, row.counted, row.duplicated) == (1, 1, 3, 3, 0)


def test_acknowledged_events_never_counted_are_missing() -> None:
    assert _kinds([_attempt(1, 1, 202), _counts(3.0, o1a1=2)]) == ["missing"]


def test_acknowledged_events_counted_after_the_deadline_are_late() -> None:
    # The last fault ends at 2 s: every acknowledged event is due by 12 s.
    base = [_fault("stop:pusher", 1.0, 2.0), _attempt(1, 1, 202, t0=1.5, t1=1.6)]
    assert _kinds([*base, _counts(3.0), _counts(11.0, o1a1=3)]) == []
    assert _kinds([*base, _counts(3.0), _counts(12.5), _counts(13.5, o1a1=3)]) == ["late"]


def test_a_503_or_429_whose_events_were_counted_breaks_not_taken() -> None:
    history = [
        _attempt(1, 1, 503, error="The queue cannot take events right now"),
        _attempt(1, 2, 202, t0=2.0),
        _counts(3.0, o1a1=3, o1a2=3),
    ]
    assert _kinds(history) == ["counted_503"]
    assert _kinds([_attempt(2, 1, 429), _counts(3.0, o2a1=1)]) == ["counted_503"]


def test_a_503_saying_its_outcome_is_unknown_may_have_been_counted() -> None:
    history = [
        _attempt(1, 1, 503, ids=True, error="Commit outcome unknown; retry"),
        _attempt(1, 2, 202, ids=True, t0=2.0),
        _counts(3.0, o1a1=3),
    ]
    assert _kinds(history) == []


def test_events_with_ids_counted_twice_are_duplicated() -> None:
    history = [
        _attempt(1, 1, "conn", ids=True, t1=1.5),
        _attempt(1, 2, 202, ids=True, t0=2.0),
        _counts(3.0, o1a1=3, o1a2=3),
    ]
    assert _kinds(history) == ["duplicated"]
    result = check(history, commit_timeout=COMMIT_TIMEOUT)
    assert result.rows["(no fault yet)"].duplicated == 3


def test_events_without_ids_retried_after_an_unknown_outcome_may_count_twice() -> None:
    history = [_attempt(1, 1, "conn"), _attempt(1, 2, 202, t0=2.0), _counts(3.0, o1a1=3, o1a2=3)]
    result = check(history, commit_timeout=COMMIT_TIMEOUT)
    assert result.violations == []
    assert result.rows["(no fault yet)"].dup_unknown == 3


def test_500s_other_4xx_and_partly_accepted_batches() -> None:
    assert _kinds([_attempt(1, 1, 500, error='{"error":"Internal server error"}')]) == [
        "status_500"
    ]
    assert _kinds([_attempt(1, 1, 400, error="bad")]) == ["bad_status"]
    partly = _attempt(1, 1, 202) | {"accepted": 2}
    assert _kinds([partly, _counts(3.0, o1a1=3)]) == ["bad_status"]


def test_a_request_answered_after_commit_timeout_plus_5_s_or_never() -> None:
    assert _kinds([_attempt(1, 1, 503, t0=1.0, t1=16.5)]) == ["unanswered"]
    assert _kinds([_attempt(1, 1, 503, t0=1.0, t1=15.5)]) == []
    assert _kinds([_attempt(1, 1, "timeout", t0=1.0, t1=21.0)]) == ["unanswered"]


def test_a_slow_readyz_leftover_processes_and_dead_letters() -> None:
    records = [
        {"rec": "probe", "node": "serve", "t0": 1.0, "dt": 0.2, "status": 503},
        {"rec": "probe", "node": "serve", "t0": 2.0, "dt": 1.4, "status": 200},
        {"rec": "probe", "node": "serve", "t0": 3.0, "dt": 5.0, "status": "timeout"},
        {
            "rec": "exit",
            "t": 4.0,
            "node": "serve",
            "cause": "exited",
            "code": 1,
            "leftovers": {"12": "pusher", "13": "monitor"},
        },
        {"rec": "exit", "t": 5.0, "node": "serve", "cause": "stopped", "code": 0, "leftovers": {}},
        {
            "rec": "final",
            "t": 6.0,
            "dead_letters": [{"batch_id": "b1", "error": "OperationalError"}],
        },
    ]
    assert _kinds(records) == ["dead_letter", "orphan", "readyz_slow", "readyz_slow"]


def test_a_readyz_a_stopped_web_worker_could_not_answer_is_not_held_against_it() -> None:
    frozen = {"rec": "fault", "kind": "stop:granian-worker", "node": "web1", "start": 1, "end": 3}
    probe = {"rec": "probe", "node": "web1", "t0": 2.5, "dt": 1.5, "status": 200}
    assert _kinds([frozen, probe]) == []
    assert _kinds([frozen, probe | {"node": "web2"}]) == ["readyz_slow"]
    assert _kinds([frozen, probe | {"t0": 3.5}]) == ["readyz_slow"]


def test_recovery_is_read_from_the_answers_and_the_stats_after_each_fault() -> None:
    records = [
        _fault("pg:stop", 1.0, 4.0),
        _attempt(1, 1, 202, t0=0.5, t1=0.6),  # acknowledged before the end: 3 events due
        _attempt(2, 1, 202, t0=4.5, t1=5.0),  # the first request sent after it, answered at +1 s
        {"rec": "stats", "t": 4.5, "events": 0},
        {"rec": "stats", "t": 6.5, "events": 3},  # counted at +2.5 s
        _counts(7.0, o1a1=3, o2a1=3),
    ]
    result = check(records, commit_timeout=COMMIT_TIMEOUT)
    assert result.rows["pg:stop"].recovery == [2.5]
    table = result_table([result])
    assert "pg:stop" in table and "2.5 / 2.5 s" in table


def test_a_fault_followed_by_a_quiet_spell_must_see_its_events_counted_within_10_s() -> None:
    def history(counted_at: float, next_start: float) -> list[dict[str, Any]]:
        return [
            _fault("kill:queue-worker", 1.0, 2.0),
            _attempt(1, 1, 202, t0=1.5, t1=1.6),
            _attempt(2, 1, 202, t0=2.5, t1=2.6),
            {"rec": "stats", "t": 2.5, "events": 0},
            {"rec": "stats", "t": counted_at, "events": 6},
            _fault("stop:pusher", next_start, next_start + 1.0),
            _counts(next_start + 2.0, o1a1=3, o2a1=3),
        ]

    assert _kinds(history(counted_at=11.0, next_start=13.0)) == []
    assert _kinds(history(counted_at=12.5, next_start=13.0)) == ["late"]
    assert _kinds(history(counted_at=12.5, next_start=11.0)) == []  # no quiet spell: not judged
