"""Writes of the processing app: the dead-letter queue's life cycle.

* :func:`dead_letter_create` — a plugin failed for good on a batch (or a part of
  one found by bisection).
* :func:`dead_letter_replay` / :func:`dead_letters_replay` — run the failed plugin
  again, with its current parameters, on the stored events and the original batch
  id; :func:`replay_plan` says what a replay would do, changing nothing.
* :func:`dead_letters_discard` — keep for audit, never replay.
* :func:`dead_letters_purge` — delete entries replayed or discarded long ago.

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
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from plugins.base import Batch, Event, Processor
from plugins.loader import get_chains, get_registry
from processing.models import Bisection, DeadLetter
from telemetron_site.config import get_config

__all__ = [
    "DiscardSummary",
    "Outcome",
    "PlannedReplay",
    "ReplayPlan",
    "ReplayResult",
    "ReplaySummary",
    "bisection_finish",
    "bisection_start",
    "bisections_started",
    "claim_lease",
    "dead_letter_create",
    "dead_letter_replay",
    "dead_letters_discard",
    "dead_letters_purge",
    "dead_letters_replay",
    "processor_lookup",
    "replay_plan",
]

dlq_log = logging.getLogger("telemetron.dlq")
Pending = DeadLetter.Status.PENDING


def _error_text(error: BaseException) -> str:
    return str(error) or repr(error)


def dead_letter_create(
    *,
    batch_id: str,
    plugin: str,
    events: list[dict[str, Any]],
    error: BaseException,
    attempts: int,
    splits: int = 0,
) -> DeadLetter:
    """Record that ``plugin`` failed for good on these events.

    A redelivered batch that fails again updates its pending entry instead of
    adding a second one.
    """
    letter = DeadLetter.objects.filter(batch_id=batch_id, plugin=plugin, status=Pending).first()
    if letter is None:
        letter = DeadLetter.objects.create(
            batch_id=batch_id,
            plugin=plugin,
            events=events,
            error_class=type(error).__name__,
            error_message=_error_text(error),
            attempts=attempts,
            splits=splits,
        )
    else:
        letter.error_class = type(error).__name__
        letter.error_message = _error_text(error)
        letter.attempts += attempts
        letter.save(update_fields=["error_class", "error_message", "attempts"])
    dlq_log.error(
        "dead-lettered batch %s: plugin %s failed %d times on %d events%s: %s: %s",
        batch_id,
        plugin,
        attempts,
        len(events),
        f" (isolated by {splits} splits)" if splits else "",
        type(error).__name__,
        error,
        extra={
            "batch_id": batch_id,
            "plugin": plugin,
            "attempts": attempts,
            "error": f"{type(error).__name__}: {error}",
            "events": len(events),
            "splits": splits,
            "dead_letter_id": letter.pk,
        },
    )
    return letter


# --- bisection records -------------------------------------------------------


def bisection_start(*, batch_id: str, plugin: str, events: int) -> None:
    """Note that ``plugin``'s failure on this batch is being bisected (a redelivery
    of the batch then resumes the bisection: see processing.tasks)."""
    Bisection.objects.get_or_create(batch_id=batch_id, plugin=plugin, defaults={"events": events})


def bisection_finish(
    *, batch_id: str, plugin: str, splits: int, runs: int, dead_lettered_events: int
) -> None:
    Bisection.objects.filter(batch_id=batch_id, plugin=plugin).update(
        finished_at=timezone.now(),
        splits=splits,
        runs=runs,
        dead_lettered_events=dead_lettered_events,
    )


def bisections_started(*, batch_id: str) -> frozenset[str]:
    """The plugins whose failure on this batch was being bisected."""
    return frozenset(Bisection.objects.filter(batch_id=batch_id).values_list("plugin", flat=True))


# --- replay ------------------------------------------------------------------


class Outcome(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ReplayResult:
    letter_id: int
    plugin: str
    batch_id: str
    events: int
    outcome: Outcome
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

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """Every entry replayed, or already out of the queue (nothing to fix)."""
        return not any(r.outcome == Outcome.FAILED or r.needs_action for r in self.results)

    def line(self) -> str:
        return (
            f"replayed {self.count(Outcome.REPLAYED)}, failed {self.count(Outcome.FAILED)},"
            f" skipped {self.count(Outcome.SKIPPED)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.count(Outcome.REPLAYED),
            "failed": self.count(Outcome.FAILED),
            "skipped": self.count(Outcome.SKIPPED),
            "results": [r.as_dict() for r in self.results],
        }


def claim_lease() -> timedelta:
    """How long a replay's claim holds: the broker's redelivery delay."""
    return timedelta(seconds=get_config().queue.retry)


def _claimable(now: datetime) -> Q:
    return Q(status=Pending) & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_lease()))


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


def _result(letter: DeadLetter, outcome: Outcome, reason: str = "", **kw: Any) -> ReplayResult:
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
        return _result(letter, Outcome.SKIPPED, f"already {letter.status}")
    processor, why = processor_lookup(letter.plugin, in_server=in_server)
    if processor is None:
        dlq_log.warning("dead letter %s not replayed: %s", letter.pk, why)
        return _result(letter, Outcome.SKIPPED, why, needs_action=True)
    token = token or uuid.uuid4().hex
    now = timezone.now()
    claimed = DeadLetter.objects.filter(_claimable(now), pk=letter.pk).update(
        claimed_by=token, claimed_at=now
    )
    if not claimed:
        return _result(letter, Outcome.SKIPPED, _not_pending_reason(letter.pk))
    error: BaseException | None = None
    try:
        batch = Batch(id=letter.batch_id, events=tuple(Event.from_wire(e) for e in letter.events))
        processor.process(batch)
    except Exception as exc:
        error = exc
    done = timezone.now()
    mine = DeadLetter.objects.filter(pk=letter.pk, claimed_by=token)
    release: dict[str, Any] = {
        "claimed_by": "",
        "claimed_at": None,
        "replay_count": F("replay_count") + 1,
        "last_replayed_at": done,
    }
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
            extra={
                "dead_letter_id": letter.pk,
                "plugin": letter.plugin,
                "batch_id": letter.batch_id,
            },
        )
        return _result(letter, Outcome.REPLAYED)
    message = f"{type(error).__name__}: {_error_text(error)}"
    mine.update(attempts=F("attempts") + 1, last_replay_error=message, **release)
    dlq_log.warning(
        "replay of dead letter %s failed: plugin %s, batch %s: %s",
        letter.pk,
        letter.plugin,
        letter.batch_id,
        message,
        extra={"dead_letter_id": letter.pk, "plugin": letter.plugin, "batch_id": letter.batch_id},
    )
    return _result(letter, Outcome.FAILED, message)


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
            result = ReplayResult(letter_id, "", "", 0, Outcome.SKIPPED, "no such entry")
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

    def lines(self) -> list[str]:
        runnable = self.runnable
        events = sum(e.events for e in runnable)
        head = f"Would replay {_n(len(runnable), 'entry', 'entries')} ({_n(events, 'event')})"
        plugins = self.by_plugin()
        if len(plugins) == 1:
            head += f" for {next(iter(plugins))}"
        elif plugins:
            head += ": " + "; ".join(
                f"{_n(n, 'entry', 'entries')} ({_n(ev, 'event')}) for {plugin}"
                for plugin, (n, ev) in plugins.items()
            )
        out = [head + "."]
        out += [f"Would skip #{e.letter_id} ({e.plugin}): {e.skip_reason}" for e in self.skipped]
        return out

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


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


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


# --- discard and purge -------------------------------------------------------


@dataclass(frozen=True)
class DiscardSummary:
    discarded: int
    skipped: int

    def line(self) -> str:
        return f"discarded {self.discarded}, skipped {self.skipped}"


def dead_letters_discard(*, ids: Sequence[int]) -> DiscardSummary:
    """Mark pending entries discarded (kept for audit); entries not pending, or
    being replayed right now, are skipped."""
    now = timezone.now()
    discarded = DeadLetter.objects.filter(_claimable(now), pk__in=list(ids)).update(
        status=DeadLetter.Status.DISCARDED, resolved_at=now
    )
    if discarded:
        dlq_log.info("discarded %d dead letters", discarded)
    return DiscardSummary(discarded, len(set(ids)) - discarded)


def dead_letters_purge(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete entries replayed or discarded more than ``older_than`` ago (and the
    finished bisection records of that age). Returns the entries deleted."""
    cutoff = timezone.now() - older_than
    letters = DeadLetter.objects.filter(
        status__in=[DeadLetter.Status.REPLAYED, DeadLetter.Status.DISCARDED],
        resolved_at__lt=cutoff,
    )
    if dry_run:
        return letters.count()
    deleted, _ = letters.delete()
    Bisection.objects.filter(finished_at__lt=cutoff).delete()
    if deleted:
        dlq_log.info("purged %d dead letters resolved before %s", deleted, cutoff.isoformat())
    return deleted
