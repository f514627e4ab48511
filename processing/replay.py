"""Replaying the dead-letter queue: run the failed plugin again, with its current
parameters, on the stored events and the original batch id
(:func:`dead_letter_replay`, :func:`dead_letters_replay`); :func:`replay_plan`
says what a replay would do, changing nothing.

A replay first *claims* its entry with one conditional UPDATE (pending and not
claimed, or claimed longer than ``queue.retry`` seconds ago by a replayer that
died). Only the claimer runs the plugin, so two replays running at once (two
commands, the admin and a command) never replay one entry twice.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db.models import F
from django.utils import timezone

from plugins.base import Batch, Event, Processor
from plugins.live import get_chains
from plugins.registry import get_registry
from processing.dead_letters import claimable, error_text
from processing.models import DeadLetter

__all__ = [
    "PlannedReplay",
    "ReplayOutcome",
    "ReplayPlan",
    "ReplayResult",
    "ReplaySummary",
    "dead_letter_replay",
    "dead_letters_replay",
    "processor_lookup",
    "replay_plan",
]

dlq_log = logging.getLogger("telemetron.dlq")
Pending = DeadLetter.Status.PENDING


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ReplayResult:
    letter_id: int
    plugin: str
    batch_id: str
    events: int
    outcome: ReplayOutcome
    reason: str = ""  # the new error, or why the entry was skipped
    needs_action: bool = False  # skipped for a reason the operator must fix

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.letter_id,
            "plugin": self.plugin,
            "batch_id": self.batch_id,
            "events": self.events,
            "outcome": str(self.outcome),
            "reason": self.reason,
        }


@dataclass
class ReplaySummary:
    results: list[ReplayResult] = field(default_factory=list)

    def count(self, outcome: ReplayOutcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """Every entry replayed, or already out of the queue (nothing to fix)."""
        return not any(r.outcome == ReplayOutcome.FAILED or r.needs_action for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.count(ReplayOutcome.REPLAYED),
            "failed": self.count(ReplayOutcome.FAILED),
            "skipped": self.count(ReplayOutcome.SKIPPED),
            "results": [r.as_dict() for r in self.results],
        }


def processor_lookup(name: str, *, in_server: bool = False) -> tuple[Processor | None, str]:
    """The live instance of processor ``name`` (current parameters), or why not.

    ``in_server``: the caller runs inside ``serve`` (the admin), where a plugin
    whose state is process-local (the memory stats store) can be replayed; from
    any other process (the ``dlq`` command) it would be merged into that process's
    memory and lost with it."""
    for processor in get_chains().processors:
        if processor.name == name:
            if not in_server and processor.state_is_process_local():
                return None, (
                    f"plugin {name} keeps its state in the serving process"
                    ' (stats.store = "memory"); replay it from the admin of the running serve'
                )
            return processor, ""
    registry = get_registry()
    if registry.get("processor", name) is not None:
        return None, f"plugin {name} is disabled; enable it (admin or config.toml), then replay"
    if any(f.kind == "processor" and f.name == name for f in registry.failures):
        return None, f"plugin {name} is installed but fails to import (see `manage.py check`)"
    return None, f"plugin {name} is not installed; install it, or discard the entry"


def _not_pending_reason(letter_id: int) -> str:
    row = DeadLetter.objects.filter(pk=letter_id).values("status", "claimed_at").first()
    if row is None:
        return "no longer exists (purged)"
    if row["status"] != Pending:
        return f"already {row['status']}"
    return "being replayed by another process"


def _result(
    letter: DeadLetter, outcome: ReplayOutcome, reason: str = "", **kw: Any
) -> ReplayResult:
    return ReplayResult(
        letter.pk, letter.plugin, letter.batch_id, letter.event_count, outcome, reason, **kw
    )


def dead_letter_replay(
    *, letter: DeadLetter, token: str | None = None, in_server: bool = False
) -> ReplayResult:
    """Replay one entry: claim it, run its plugin once, record the outcome.

    Success marks it ``replayed``; failure leaves it ``pending`` with the new
    error and one more attempt; a missing or disabled plugin skips it untouched.
    """
    if letter.status != Pending:
        return _result(letter, ReplayOutcome.SKIPPED, f"already {letter.status}")
    processor, why = processor_lookup(letter.plugin, in_server=in_server)
    if processor is None:
        dlq_log.warning("dead letter %s not replayed: %s", letter.pk, why)
        return _result(letter, ReplayOutcome.SKIPPED, why, needs_action=True)
    token = token or uuid.uuid4().hex
    now = timezone.now()
    claimed = DeadLetter.objects.filter(claimable(now), pk=letter.pk).update(
        claimed_by=token, claimed_at=now
    )
    if not claimed:
        return _result(letter, ReplayOutcome.SKIPPED, _not_pending_reason(letter.pk))
    error: BaseException | None = None
    try:
        batch = Batch(id=letter.batch_id, events=tuple(Event.from_wire(e) for e in letter.events))
        processor.process(batch)
    except Exception as exc:
        error = exc
    return _replay_record(letter, token, error)


def _replay_record(letter: DeadLetter, token: str, error: BaseException | None) -> ReplayResult:
    """Record a claimed entry's replay and release the claim."""
    done = timezone.now()
    mine = DeadLetter.objects.filter(pk=letter.pk, claimed_by=token)
    release: dict[str, Any] = {
        "claimed_by": "",
        "claimed_at": None,
        "replay_count": F("replay_count") + 1,
        "last_replayed_at": done,
    }
    fields = {"dead_letter_id": letter.pk, "plugin": letter.plugin, "batch_id": letter.batch_id}
    if error is None:
        mine.update(
            status=DeadLetter.Status.REPLAYED, resolved_at=done, last_replay_error="", **release
        )
        dlq_log.info(
            "replayed dead letter %s: plugin %s, batch %s, %d events",
            letter.pk,
            letter.plugin,
            letter.batch_id,
            letter.event_count,
            extra=fields,
        )
        return _result(letter, ReplayOutcome.REPLAYED)
    message = f"{type(error).__name__}: {error_text(error)}"
    mine.update(attempts=F("attempts") + 1, last_replay_error=message, **release)
    dlq_log.warning(
        "replay of dead letter %s failed: plugin %s, batch %s: %s",
        letter.pk,
        letter.plugin,
        letter.batch_id,
        message,
        extra=fields,
    )
    return _result(letter, ReplayOutcome.FAILED, message)


def dead_letters_replay(
    *,
    ids: Sequence[int],
    on_result: Callable[[ReplayResult], None] | None = None,
    in_server: bool = False,
) -> ReplaySummary:
    """Replay the entries ``ids`` in that order (see :func:`dead_letter_replay`)."""
    summary = ReplaySummary()
    token = uuid.uuid4().hex
    letters = DeadLetter.objects.in_bulk(list(ids))
    for letter_id in ids:
        letter = letters.get(letter_id)
        if letter is None:
            result = ReplayResult(letter_id, "", "", 0, ReplayOutcome.SKIPPED, "no such entry")
        else:
            result = dead_letter_replay(letter=letter, token=token, in_server=in_server)
        summary.results.append(result)
        if on_result is not None:
            on_result(result)
    return summary


@dataclass(frozen=True)
class PlannedReplay:
    letter_id: int
    plugin: str
    batch_id: str
    events: int
    skip_reason: str = ""


@dataclass
class ReplayPlan:
    entries: list[PlannedReplay]

    @property
    def runnable(self) -> list[PlannedReplay]:
        return [e for e in self.entries if not e.skip_reason]

    @property
    def skipped(self) -> list[PlannedReplay]:
        return [e for e in self.entries if e.skip_reason]

    def by_plugin(self) -> dict[str, tuple[int, int]]:
        """plugin -> (entries, events) that would be replayed."""
        entries: Counter[str] = Counter()
        events: Counter[str] = Counter()
        for e in self.runnable:
            entries[e.plugin] += 1
            events[e.plugin] += e.events
        return {p: (entries[p], events[p]) for p in sorted(entries)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "would_replay": {
                "entries": len(self.runnable),
                "events": sum(e.events for e in self.runnable),
                "plugins": {
                    p: {"entries": n, "events": ev} for p, (n, ev) in self.by_plugin().items()
                },
                "ids": [e.letter_id for e in self.runnable],
            },
            "would_skip": [
                {"id": e.letter_id, "plugin": e.plugin, "reason": e.skip_reason}
                for e in self.skipped
            ],
        }


def replay_plan(*, letters: Iterable[DeadLetter]) -> ReplayPlan:
    """What :func:`dead_letters_replay` would do with these entries (no writes)."""
    lookups: dict[str, str] = {}
    entries = []
    for letter in letters:
        if letter.plugin not in lookups:
            lookups[letter.plugin] = processor_lookup(letter.plugin)[1]
        reason = lookups[letter.plugin] if letter.status == Pending else f"already {letter.status}"
        entries.append(
            PlannedReplay(letter.pk, letter.plugin, letter.batch_id, letter.event_count, reason)
        )
    return ReplayPlan(entries)
