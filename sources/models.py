"""Sources (who sends events), their write keys, and the read tokens of /stats
and /metrics. Keys and tokens are stored as the SHA-256 digest of the secret
(a fast hash is right for 240-bit random secrets: nobody can guess one, so a
slow hash would only cost every request) and a short public prefix to name
them by; the secret itself is shown once, when it is made.

Every row has ``updated_at`` (set on each save): the processes' caches
(:mod:`sources.live`) reload when it changes. ``last_used_at`` is written by
``QuerySet.update``, which leaves ``updated_at`` alone.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from core.fields import U64Field

__all__ = ["Credential", "ReadToken", "Source", "WriteKey"]


def _no_origins() -> list[Any]:
    return []


class Source(models.Model):
    # Not the primary key: a ForeignKey to a U64Field would bias lookups twice.
    source_id = U64Field(unique=True, help_text="The events' sourceId (0 to 2^64 - 1).")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(
        default=True, help_text="A disabled source's events are refused (403)."
    )
    allowed_origins = models.JSONField(
        default=_no_origins,
        blank=True,
        help_text='Browser origins that may send events ("*": any).',
    )
    rate_limit = models.FloatField(
        null=True, blank=True, help_text="Events per second (empty: no limit)."
    )
    rate_burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Events taken at once (empty: one second's worth).",
    )
    archive_retention = models.DurationField(
        null=True,
        blank=True,
        help_text="How long the archive keeps this source's events (30d, 12h, 1w; empty:"
        " archive.retention of config.toml). `manage.py archive purge` deletes older ones.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("source_id",)
        # The admin's sources list sorted by name, a page at a time (console/admin.py).
        indexes = [models.Index(fields=["name", "source_id"], name="sources_name_id_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.source_id})"


class Credential(models.Model):
    """What a write key and a read token share: the digest of the secret, when it
    was made, changed, last used and revoked (live while ``revoked_at`` is empty)."""

    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class WriteKey(Credential):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to name it.")

    class Meta:
        ordering = ("source", "created_at")
        verbose_name = "write key"

    def __str__(self) -> str:
        return f"{self.prefix}…"


class ReadToken(Credential):
    class Scope(models.TextChoices):
        STATS = "stats", "stats (GET /stats, /stats/{id})"
        METRICS = "metrics", "metrics (GET /metrics)"

    name = models.CharField(max_length=200, help_text="Who uses it, e.g. prometheus.")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    prefix = models.CharField(max_length=16, editable=False)

    class Meta:
        ordering = ("created_at",)
        verbose_name = "read token"

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"
