"""Two replays of the same entries at once (two threads, each with its own
database connection, as two commands or the admin and a command would be):
every entry is replayed exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from processing.models import DeadLetter
from processing.replay import ReplaySummary, dead_letters_replay
from tests.processing.conftest import UseProcessors, wire_events

ENTRIES = 12


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_replays_replay_each_entry_once(
    use_processors: UseProcessors, tmp_path: Path
) -> None:
    markers = tmp_path / "runs"
    markers.mkdir()
    # Each run leaves a marker named after its batch id and takes a little time,
    # so the two replayers overlap.
    use_processors(("SlowProcessor", {"seconds": 0.02, "marker_dir": str(markers)}))
    ids = [
        DeadLetter.objects.create(
            batch_id=f"b{i:02d}",
            plugin="SlowProcessor",
            events=wire_events(2),
            error_class="ProcessingError",
            error_message="timeout",
            attempts=3,
        ).pk
        for i in range(ENTRIES)
    ]
    start = threading.Barrier(2)
    summaries: list[ReplaySummary] = []
    errors: list[BaseException] = []

    def replayer() -> None:
        try:
            start.wait(timeout=30)
            summaries.append(dead_letters_replay(ids=ids))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=replayer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(summaries) == 2

    runs = Counter(p.name.split(".")[0] for p in markers.iterdir())
    assert runs == {f"b{i:02d}": 1 for i in range(ENTRIES)}
    assert sum(s.as_dict()["replayed"] for s in summaries) == ENTRIES
    assert all(s.ok for s in summaries)  # the other's entries are "already done", not errors
    rows = DeadLetter.objects.values_list("status", "replay_count", "claimed_by")
    assert set(rows) == {("replayed", 1, "")}
