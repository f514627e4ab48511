"""Events per minute: the counter the merge updates (one upsert per batch, in the
merge's transaction, after its ledger row: so exactly once per batch, like the
stats) and the dashboard reads.

A batch adds its events to two minutes: ``accepted`` of the minute it was
received (its UUIDv7 id carries that time, :func:`plugins.base.batch_received_at`)
and ``processed`` of the minute it is merged, with its lag (merged - received,
per event). Accepted figures therefore come from the batches already merged: a
batch still waiting in the broker is in the dashboard's queue depth and oldest
waiting batch, not yet in the accepted line. (Counting at ingest would add a
write to every ``202``; the broker's rows are deleted once processed.)

The rows form a ring (see :class:`stats.models.MinuteCounts`): a write to a row
holding an older minute starts it anew, a write of a minute older than the row's
is dropped (a batch received more than :data:`RING_MINUTES` ago, replayed from
the dead-letter queue, adds to ``processed`` only). A minute has a row per
totals shard (:data:`stats.store.TOTALS_SHARDS`): a merge writes the row of the
shard it added its totals to, whose lock it already holds, so merges that do not
wait for each other's totals (PostgreSQL's ``SKIP LOCKED``) do not wait here
either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db import connection

from plugins.base import batch_received_at
from stats.models import MinuteCounts

__all__ = [
    "RING_MINUTES",
    "SHARDS",
    "MinuteFigures",
    "minute_counts_add_many",
    "minute_rows",
    "minute_series",
    "upsert_set",
]

RING_MINUTES = 2 * 24 * 60  # two days kept: the dashboard shows one
SHARDS = 64  # = stats.store.TOTALS_SHARDS (shard ids 1-64; 64 is row 0)
_COLUMNS = ("accepted", "processed", "lag_ms_sum")


@dataclass(frozen=True)
class MinuteFigures:
    minute: int  # minutes since the epoch
    accepted: int
    processed: int
    lag_ms_mean: float | None  # None: nothing processed in that minute
    lag_ms_max: int


def upsert_set() -> str:
    """The ``ON CONFLICT (id) DO UPDATE SET …`` clause of the counter's upsert (the
    ring's rules): also the one-statement merge's (stats/store.py)."""
    t = connection.ops.quote_name(MinuteCounts._meta.db_table)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "max"

    def ring(column: str, same: str) -> str:
        return (
            f"{column} = CASE WHEN {t}.minute = excluded.minute THEN {same}"
            f" WHEN {t}.minute < excluded.minute THEN excluded.{column} ELSE {t}.{column} END"
        )

    sets = [ring(c, f"{t}.{c} + excluded.{c}") for c in _COLUMNS]
    sets.append(ring("lag_ms_max", f"{greatest}({t}.lag_ms_max, excluded.lag_ms_max)"))
    return f"{', '.join(sets)}, minute = {greatest}({t}.minute, excluded.minute)"


def _sql(rows: int) -> str:
    t = connection.ops.quote_name(MinuteCounts._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * rows)
    return (
        f"INSERT INTO {t} (id, minute, accepted, processed, lag_ms_sum, lag_ms_max)"
        f" VALUES {values} ON CONFLICT (id) DO UPDATE SET {upsert_set()}"
    )


def _rows(batch_id: str, events: int, now_ms: int) -> list[tuple[int, ...]]:
    """The batch's rows as ``(slot, minute, accepted, processed, lag_sum, lag_max)``;
    a slot is a minute's place in the ring, its row id ``slot * SHARDS + shard``."""
    received = batch_received_at(batch_id)
    # An id without a time (made by a test): received when merged, no lag.
    received_ms = now_ms if received is None else int(received.timestamp() * 1000)
    lag_ms = max(0, now_ms - received_ms)
    done, came = now_ms // 60_000, received_ms // 60_000

    def row(minute: int, *counts: int) -> tuple[int, ...]:
        return (minute % RING_MINUTES, minute, *counts)

    if came == done:
        return [row(done, events, events, lag_ms * events, lag_ms)]
    out = [row(done, 0, events, lag_ms * events, lag_ms)]
    if abs(done - came) < RING_MINUTES:  # else its ring row holds another minute
        out.append(row(came, events, 0, 0, 0))
    return out


def minute_rows(batches: list[tuple[str, int]], *, now_ms: int | None = None) -> list[list[int]]:
    """The merged batches' rows, each ``(batch_id, events)``, summed per minute
    (an upsert may not touch a row twice) as ``[slot, minute, accepted,
    processed, lag_ms_sum, lag_ms_max]``. Every row is within the ring of the
    current minute, so a slot stands for one minute here."""
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    summed: dict[int, list[int]] = {}
    for batch_id, events in batches:
        for slot, minute, accepted, processed, lag_sum, lag_max in _rows(batch_id, events, now_ms):
            acc = summed.get(slot)
            if acc is None:
                summed[slot] = [slot, minute, accepted, processed, lag_sum, lag_max]
            else:
                acc[2] += accepted
                acc[3] += processed
                acc[4] += lag_sum
                acc[5] = max(acc[5], lag_max)
    return list(summed.values())


def minute_counts_add_many(
    cur: Any, *, batches: list[tuple[str, int]], shard: int = 1, now_ms: int | None = None
) -> None:
    """Count merged batches, each ``(batch_id, events)``: ONE statement (in the
    merge's transaction), into the rows of totals shard ``shard``."""
    rows = minute_rows(batches, now_ms=now_ms)
    shard %= SHARDS
    if rows:
        cur.execute(_sql(len(rows)), [v for r in rows for v in (r[0] * SHARDS + shard, *r[1:])])


def minute_series(*, minutes: int, now_ms: int | None = None) -> list[MinuteFigures]:
    """The last ``minutes`` minutes up to the current one, oldest first, every
    minute present (zeros where nothing was counted): one query of at most
    ``minutes * SHARDS`` rows, summed over the shards here."""
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    last = now_ms // 60_000
    first = last - minutes + 1
    found: dict[int, list[int]] = {}
    for minute, accepted, processed, lag_sum, lag_max in MinuteCounts.objects.filter(
        minute__gte=first, minute__lte=last
    ).values_list("minute", "accepted", "processed", "lag_ms_sum", "lag_ms_max"):
        acc = found.setdefault(minute, [0, 0, 0, 0])
        acc[0] += accepted
        acc[1] += processed
        acc[2] += lag_sum
        acc[3] = max(acc[3], lag_max)
    out = []
    for minute in range(first, last + 1):
        accepted, processed, lag_sum, lag_max = found.get(minute, [0, 0, 0, 0])
        mean = lag_sum / processed if processed else None
        out.append(MinuteFigures(minute, accepted, processed, mean, lag_max))
    return out
