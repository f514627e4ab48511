"""Reads of sources, write keys and read tokens (other apps read through here,
or through the live directory, :func:`sources.live.get_directory`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q

from sources.directory import Directory, directory_build, source_entry
from sources.models import ReadToken, Source, WriteKey

__all__ = [
    "SourceRow",
    "access_fingerprint",
    "archive_retentions",
    "directory_read",
    "read_token_list",
    "source_find",
    "source_list",
    "write_key_list",
]


def access_fingerprint() -> tuple[object, ...]:
    """Three small aggregates that change whenever a row is added, removed or
    saved (``updated_at`` is set on every save): the reload check."""
    out: list[object] = []
    for model in (Source, WriteKey, ReadToken):
        agg = model.objects.aggregate(n=Count("pk"), last=Max("updated_at"))
        out += [agg["n"], agg["last"]]
    return tuple(out)


def directory_read() -> Directory:
    """The whole directory, in three queries."""
    sources = [
        source_entry(id=sid, name=name, enabled=on, origins=origins or [], rate=rate, burst=burst)
        for sid, name, on, origins, rate, burst in Source.objects.values_list(
            "source_id", "name", "enabled", "allowed_origins", "rate_limit", "rate_burst"
        )
    ]
    keys = WriteKey.objects.filter(revoked_at__isnull=True).values_list(
        "id", "source__source_id", "digest"
    )
    tokens = ReadToken.objects.filter(revoked_at__isnull=True).values_list("id", "scope", "digest")
    return directory_build(sources, list(keys), list(tokens))


@dataclass(frozen=True)
class SourceRow:
    id: int
    name: str
    enabled: bool
    origins: list[str]
    rate_limit: float | None
    rate_burst: int | None
    live_keys: int
    last_used_at: datetime | None


def source_list(*, ids: list[int] | None = None) -> list[SourceRow]:
    """Sources in id order, with their number of live keys and last use."""
    live = Q(keys__revoked_at__isnull=True)
    rows = Source.objects.annotate(
        live_keys=Count("keys", filter=live), last_used=Max("keys__last_used_at")
    ).order_by("source_id")
    if ids is not None:
        rows = rows.filter(source_id__in=ids)
    return [
        SourceRow(
            id=s.source_id,
            name=s.name,
            enabled=s.enabled,
            origins=list(s.allowed_origins or []),
            rate_limit=s.rate_limit,
            rate_burst=s.rate_burst,
            live_keys=s.live_keys,  # type: ignore[attr-defined]
            last_used_at=s.last_used,  # type: ignore[attr-defined]
        )
        for s in rows
    ]


def write_key_list(*, source_id: int | None = None, live_only: bool = False) -> list[WriteKey]:
    keys = WriteKey.objects.select_related("source").order_by("source__source_id", "created_at")
    if source_id is not None:
        keys = keys.filter(source__source_id=source_id)
    if live_only:
        keys = keys.filter(revoked_at__isnull=True)
    return list(keys)


def read_token_list() -> list[ReadToken]:
    return list(ReadToken.objects.order_by("created_at"))


def archive_retentions() -> dict[int, timedelta]:
    """The sources with an archive retention of their own: source id -> age."""
    rows = Source.objects.filter(archive_retention__isnull=False).values_list(
        "source_id", "archive_retention"
    )
    return {int(sid): age for sid, age in rows if age is not None}


def source_find(text: str) -> int | None:
    """The id of the registered source named ``text``, or whose id it is; None."""
    if text.isdigit() and int(text) < 2**64:
        found = Source.objects.filter(source_id=int(text)).values_list("source_id", flat=True)
        if (sid := found.first()) is not None:
            return int(sid)
    names = list(Source.objects.filter(name=text).values_list("source_id", flat=True)[:2])
    return int(names[0]) if len(names) == 1 else None
