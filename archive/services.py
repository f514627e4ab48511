"""The archive's writes: a batch archived once (:func:`batch_archive`), the
purge of old events (:func:`archive_purge`, by age, or by each source's own
retention: :func:`archive_purge_plan`) and a person's events erased
(:func:`archive_erase`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from archive.models import ArchivedBatch, ArchivedEvent
from core.erasure import ErasureTarget
from core.fields import u64_to_db
from plugins.base import Event

__all__ = [
    "ERASE_CHUNK",
    "PURGE_CHUNK",
    "PurgeRule",
    "archive_erase",
    "archive_purge",
    "archive_purge_count",
    "archive_purge_plan",
    "batch_archive",
]

# Rows deleted per statement (and per transaction) by a purge: short enough not
# to hold ingest's writers back for long, large enough to be cheap per row.
PURGE_CHUNK = 5000
# Rows deleted per transaction by an erasure (ids listed first: SQLite's parameters).
ERASE_CHUNK = 500

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _insert(cur: Any, events: Sequence[Event], received_at: datetime, batch_id: str) -> None:
    """The events' rows. PostgreSQL: one INSERT from one JSON text of the rows,
    expanded by the server (psycopg's per-value work cost more than the database's:
    a 100-row VALUES list ~80 µs of CPU per event, ``executemany`` ~30, arrays
    ~25; bench/RESULTS.md). SQLite: ``executemany``, a C loop (expanding one JSON
    text with json_each cost more there: SQLite's work is this process's)."""
    table = connection.ops.quote_name(ArchivedEvent._meta.db_table)
    columns = "source_id, type, timestamp, data, received_at, batch_id"
    if connection.vendor == "postgresql":
        rows = [[u64_to_db(e.source_id), e.type, e.timestamp.isoformat(), e.data] for e in events]
        cur.execute(
            f"INSERT INTO {table} ({columns})"
            " SELECT (r->>0)::bigint, r->>1, (r->>2)::timestamptz, NULLIF(r->3, 'null'), %s, %s"
            " FROM jsonb_array_elements(%s::jsonb) AS r",
            [received_at, batch_id, _dumps(rows)],
        )
        return
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(received_at)
    cur.executemany(
        f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (
                u64_to_db(e.source_id),
                e.type,
                adapt(e.timestamp),
                None if e.data is None else _dumps(e.data),
                received,
                batch_id,
            )
            for e in events
        ],
    )


def batch_archive(*, batch_id: str, events: Sequence[Event], received_at: datetime) -> bool:
    """Archive the events of a batch, once per batch id: the ledger row and the
    events in one transaction. False when the batch was archived before (a
    redelivery, a replay). Raw SQL (see ``_insert``): the ORM's ``bulk_create``
    cost ~70 µs of CPU per event."""
    ledger = connection.ops.quote_name(ArchivedBatch._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {ledger} (batch_id, events, archived_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            [batch_id, len(events), now],
        )
        if cur.rowcount == 0:
            return False
        _insert(cur, events, received_at, batch_id)
    return True


@dataclass(frozen=True)
class PurgeRule:
    """Events received before ``before``: of ``source_id`` only, or (None) of
    every source but those in ``except_sources`` (which have rules of their own)."""

    before: datetime
    source_id: int | None = None
    except_sources: tuple[int, ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        """The rule as SQL (a WHERE clause's terms) and its parameters."""
        sql = "received_at < %s"
        params: list[Any] = [connection.ops.adapt_datetimefield_value(self.before)]
        if self.source_id is not None:
            sql += " AND source_id = %s"
            params.append(u64_to_db(self.source_id))
        if self.except_sources:
            sql += f" AND source_id NOT IN ({', '.join(['%s'] * len(self.except_sources))})"
            params += [u64_to_db(s) for s in self.except_sources]
        return sql, params

    def query(self) -> QuerySet[ArchivedEvent]:
        qs = ArchivedEvent.objects.filter(received_at__lt=self.before)
        if self.source_id is not None:
            qs = qs.filter(source_id=self.source_id)
        return qs.exclude(source_id__in=self.except_sources)


def archive_purge_plan(
    *, default: timedelta | None, overrides: dict[int, timedelta], now: datetime | None = None
) -> list[PurgeRule]:
    """The rules of a purge by retention: each source with its own retention
    (``overrides``: source id -> age) by it, every other source by ``default``
    (none: kept)."""
    now = now or timezone.now()
    rules = [PurgeRule(before=now - age, source_id=sid) for sid, age in sorted(overrides.items())]
    if default is not None:
        rules.append(PurgeRule(before=now - default, except_sources=tuple(sorted(overrides))))
    return rules


def archive_purge_count(*, before: datetime | None = None, rules: Sequence[PurgeRule] = ()) -> int:
    """Events received before ``before``, or matching one of ``rules`` (what a
    purge would delete)."""
    rules = [PurgeRule(before=before)] if before is not None else rules
    return sum(rule.query().count() for rule in rules)


def archive_purge(
    *,
    before: datetime | None = None,
    rules: Sequence[PurgeRule] = (),
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Delete the events received before ``before`` (or matching one of
    ``rules``), ``PURGE_CHUNK`` rows per transaction, and the ledger rows of
    batches archived before the oldest cut-off. Returns the events deleted."""
    rules = [PurgeRule(before=before)] if before is not None else list(rules)
    q = connection.ops.quote_name
    events = q(ArchivedEvent._meta.db_table)
    deleted = 0
    for rule in rules:
        where, params = rule.where()
        chunk = (
            f"DELETE FROM {events} WHERE id IN (SELECT id FROM {events}"
            f" WHERE {where} ORDER BY received_at LIMIT {PURGE_CHUNK})"
        )
        while True:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(chunk, params)
                count = cur.rowcount
            deleted += count
            if on_progress is not None and count:
                on_progress(count)
            if count < PURGE_CHUNK:
                break
    if rules:
        # The ledger holds no event, only batch ids: kept as long as the longest retention.
        ArchivedBatch.objects.filter(archived_at__lt=min(r.before for r in rules)).delete()
    return deleted


def _person(target: ErasureTarget) -> QuerySet[ArchivedEvent]:
    match = Q()
    for path in target.paths:
        lookup = "data__" + "__".join(path.split("."))
        for value in target.values():
            match |= Q(**{lookup: value})
    return ArchivedEvent.objects.filter(match, source_id=target.source_id)


def archive_erase(
    *,
    target: ErasureTarget,
    dry_run: bool = False,
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Delete the person's archived events, ``ERASE_CHUNK`` rows per transaction
    (the batch ledger keeps its counts: no personal data). Returns the events
    deleted (with ``dry_run``: found, and nothing deleted)."""
    if dry_run:
        return _person(target).count()
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(_person(target).order_by("id").values_list("id", flat=True)[:ERASE_CHUNK])
            if ids:
                ArchivedEvent.objects.filter(id__in=ids).delete()
        deleted += len(ids)
        if on_progress is not None and ids:
            on_progress(len(ids))
        if len(ids) < ERASE_CHUNK:
            return deleted
