"""The replay of dead letters on its own: success, failure, skipped plugins,
claims, and the dry-run plan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from plugins.base import Event
from processing.dead_letter_text import replay_plan_lines, replay_summary_line
from processing.dead_letters import claim_lease
from processing.models import DeadLetter
from processing.replay import (
    ReplayOutcome,
    dead_letter_replay,
    dead_letters_replay,
    replay_plan,
)
from stats.aggregator import aggregate
from stats.store import MemoryStore, get_store
from tests.processing.conftest import MakeLetter, UseProcessors

pytestmark = pytest.mark.django_db


def test_replay_success_marks_replayed_with_the_original_batch_id(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor", events=5, batch_id="orig.0.1")
    result = dead_letter_replay(letter=letter)
    assert result.outcome == ReplayOutcome.REPLAYED
    letter.refresh_from_db()
    assert letter.status == "replayed"
    assert letter.replay_count == 1 and letter.last_replayed_at is not None
    assert letter.resolved_at is not None and letter.claimed_by == ""
    assert get_store().totals() == (1, 5)
    assert get_store().merge(batch_id="orig.0.1", aggregates={}) is False  # same id reused


def test_replay_failure_stays_pending_with_new_error_and_attempt(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("FailingProcessor", {"message": "still broken"}))
    letter = make_letter("FailingProcessor", attempts=3)
    summary = dead_letters_replay(ids=[letter.pk])
    assert replay_summary_line(summary) == "replayed 0, failed 1, skipped 0" and not summary.ok
    letter.refresh_from_db()
    assert (letter.status, letter.attempts, letter.replay_count) == ("pending", 4, 1)
    assert letter.last_replay_error == "ProcessingError: still broken"
    assert letter.error_message == "always fails"  # the original error is kept
    assert letter.claimed_by == "" and letter.claimed_at is None


def test_replay_uses_the_plugins_current_parameters(
    use_processors: UseProcessors, make_letter: MakeLetter, tmp_path: Path
) -> None:
    letter = make_letter("FailingProcessor")
    flag = tmp_path / "healed"
    flag.touch()
    use_processors(("FailingProcessor", {"healed_flag": str(flag)}))  # the fix: new params
    assert dead_letter_replay(letter=letter).outcome == ReplayOutcome.REPLAYED


def test_replay_of_a_storage_batch_merged_before_does_not_double_count(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    """The crash window: the merge committed, then the worker died before it
    could say so, and the batch ended up dead-lettered anyway."""
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor", events=4, batch_id="merged")
    events = tuple(Event.from_wire(e) for e in letter.events)
    assert get_store().merge(batch_id="merged", aggregates=aggregate(events)) is True
    assert get_store().totals() == (1, 4)

    assert dead_letter_replay(letter=letter).outcome == ReplayOutcome.REPLAYED
    assert get_store().totals() == (1, 4)
    letter.refresh_from_db()
    assert letter.status == "replayed"


@pytest.mark.parametrize(
    ("chain", "plugin", "reason"),
    [
        ([], "StorageProcessor", "plugin StorageProcessor is disabled"),
        ([("StorageProcessor", {})], "NoSuchPlugin", "plugin NoSuchPlugin is not installed"),
    ],
)
def test_missing_or_disabled_plugin_is_skipped_untouched_with_a_reason(
    use_processors: UseProcessors,
    make_letter: MakeLetter,
    chain: list[tuple[str, dict[str, object]]],
    plugin: str,
    reason: str,
) -> None:
    use_processors(*chain)
    letter = make_letter(plugin)
    before = DeadLetter.objects.values().get(pk=letter.pk)
    summary = dead_letters_replay(ids=[letter.pk])
    [result] = summary.results
    assert result.outcome == ReplayOutcome.SKIPPED and result.needs_action
    assert result.reason.startswith(reason)
    assert replay_summary_line(summary) == "replayed 0, failed 0, skipped 1" and not summary.ok
    assert DeadLetter.objects.values().get(pk=letter.pk) == before  # never dropped


def test_memory_store_entries_replay_only_inside_serve(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    """With stats.store = "memory" the counts live in the serving process: a replay
    from the dlq command's process would merge into its own memory and lose the
    events, so it is skipped with the way out; the admin (in serve) replays it."""
    with get_store.override(MemoryStore()) as memory:
        _memory_store_entries_replay_only_inside_serve(use_processors, make_letter, memory)


def _memory_store_entries_replay_only_inside_serve(
    use_processors: UseProcessors, make_letter: MakeLetter, memory: MemoryStore
) -> None:
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor", events=4)
    before = DeadLetter.objects.values().get(pk=letter.pk)

    [result] = dead_letters_replay(ids=[letter.pk]).results
    assert result.outcome == ReplayOutcome.SKIPPED and result.needs_action
    assert "replay it from the admin of the running serve" in result.reason
    assert replay_plan(letters=[letter]).skipped[0].skip_reason == result.reason
    assert DeadLetter.objects.values().get(pk=letter.pk) == before
    assert memory.totals() == (0, 0)

    [result] = dead_letters_replay(ids=[letter.pk], in_server=True).results
    assert result.outcome == ReplayOutcome.REPLAYED
    assert memory.totals() == (1, 4)


def test_claimed_entry_is_not_replayed_by_another_replayer(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor")
    DeadLetter.objects.filter(pk=letter.pk).update(claimed_by="other", claimed_at=timezone.now())
    result = dead_letter_replay(letter=letter)
    assert result.outcome == ReplayOutcome.SKIPPED and not result.needs_action
    assert result.reason == "being replayed by another process"
    assert get_store().totals() == (0, 0)


def test_claim_of_a_replayer_that_died_expires(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor")
    stale = timezone.now() - claim_lease() - timedelta(seconds=1)
    DeadLetter.objects.filter(pk=letter.pk).update(claimed_by="dead", claimed_at=stale)
    assert dead_letter_replay(letter=letter).outcome == ReplayOutcome.REPLAYED


def test_replayed_entry_is_not_replayed_again(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    letter = make_letter("StorageProcessor", events=2)
    assert dead_letters_replay(ids=[letter.pk]).ok
    again = dead_letters_replay(ids=[letter.pk])
    assert again.ok and replay_summary_line(again) == "replayed 0, failed 0, skipped 1"
    assert again.results[0].reason == "already replayed"
    assert get_store().totals() == (1, 2)
    assert DeadLetter.objects.get(pk=letter.pk).replay_count == 1


def test_replay_plan_counts_entries_events_and_plugins_and_changes_nothing(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}), ("FailingProcessor", {}))
    letters = [
        make_letter("StorageProcessor", events=2),
        make_letter("StorageProcessor", events=3),
        make_letter("FailingProcessor", events=1),
        make_letter("GoneProcessor", events=7),
    ]
    before = list(DeadLetter.objects.values())
    plan = replay_plan(letters=letters)
    assert plan.by_plugin() == {"FailingProcessor": (1, 1), "StorageProcessor": (2, 5)}
    assert replay_plan_lines(plan) == [
        "Would replay 3 entries (6 events): 1 entry (1 event) for FailingProcessor;"
        " 2 entries (5 events) for StorageProcessor.",
        f"Would skip #{letters[3].pk} (GoneProcessor): plugin GoneProcessor is not installed;"
        " install it, or discard the entry",
    ]
    assert plan.as_dict()["would_replay"]["events"] == 6
    assert list(DeadLetter.objects.values()) == before
