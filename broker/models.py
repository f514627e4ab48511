"""The ORM broker's tables (broker/orm.py): the queue's tasks, the leases of the
clusters claiming them, and the event ids taken (exactly once by id).

They were the processing app's until the queue became an app of its own; the
tables kept their names (``db_table``), so a database of either age holds the
same rows (broker/migrations/0001_initial.py).
"""

from __future__ import annotations

from django.db import models

from core.fields import U64Field
from plugins.base import MAX_ID_LENGTH

__all__ = ["ClusterLease", "CommitMarker", "QueuedTask", "SeenMessage"]


class QueuedTask(models.Model):
    """A django-q2 task in the ORM broker (broker/orm.py): waiting
    (``owner`` empty), or claimed by the cluster ``owner`` until ``claimed_until``
    (seconds since the epoch, by the database's clock), and once a queue worker
    started it, held by that worker process (``holder_pid``, ``holder_start``:
    its pid and start time on the cluster's host; 0 while the cluster holds it).
    ``claim_token``: the random token of the claim that took it last, by which a
    claim whose answer was lost is looked up. Deleted when acknowledged."""

    queue = models.CharField(max_length=100)
    payload = models.TextField()
    claimed_until = models.FloatField(default=0)
    owner = models.CharField(max_length=64, default="", blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    holder_pid = models.IntegerField(db_default=0)
    holder_start = models.BigIntegerField(db_default=0)
    # Not indexed: looked up only after a lost answer, and an index on a column
    # every claim writes would cost each claim its heap-only (HOT) update.
    claim_token = models.BigIntegerField(db_default=0)

    class Meta:
        db_table = "processing_queuedtask"
        verbose_name = "queued task"

    def __str__(self) -> str:
        return f"task {self.pk} ({self.owner or 'waiting'})"


class ClusterLease(models.Model):
    """A worker cluster's heartbeat, written by its sentinel every 0.5 s: who it
    is (``host`` and ``pid``/``pid_start`` of its sentinel, to tell at once that a
    cluster of the same host died), since when its heartbeats have been regular
    (``fresh_since``), and django-q2's status of it (``stat``, for /readyz).
    Times are seconds since the epoch, by the database's clock."""

    cluster_id = models.CharField(max_length=64, primary_key=True)
    queue = models.CharField(max_length=100)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    pid_start = models.BigIntegerField(default=0)
    heartbeat = models.FloatField()
    fresh_since = models.FloatField()
    dead = models.BooleanField(default=False)
    stat = models.TextField(blank=True, default="")
    stat_expires = models.FloatField(default=0)

    class Meta:
        db_table = "processing_clusterlease"

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} on {self.host}"


class SeenMessage(models.Model):
    """An event id a source has sent (``id``; a Segment ``messageId``), written in
    the transaction that enqueues the event (broker/commit.py): a repeat within
    ``ingest.dedup_window`` is acknowledged and not enqueued again. ``seen_at``:
    seconds since the epoch; rows older than the window are purged by the
    clusters' housekeeping (broker/orm.py) and never match meanwhile."""

    source_id = U64Field()
    message_id = models.CharField(max_length=MAX_ID_LENGTH)
    seen_at = models.FloatField(db_index=True)

    class Meta:
        db_table = "processing_seenmessage"
        verbose_name = "seen message id"
        constraints = [
            models.UniqueConstraint(
                fields=["source_id", "message_id"], name="processing_seenmessage_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}/{self.message_id}"


class CommitMarker(models.Model):
    """A commit of the queue (broker/commit.py), inserted first in its
    transaction (``landed``), or, when its answer was lost and it did not land,
    by its resolver on another connection (``landed`` false: the commit can no
    longer land, its insert of the same id would fail). ``at``: seconds since
    the epoch; markers older than a few minutes are purged."""

    commit_id = models.CharField(max_length=32, primary_key=True)
    landed = models.BooleanField()
    at = models.FloatField(db_index=True)

    class Meta:
        verbose_name = "commit marker"

    def __str__(self) -> str:
        return f"commit {self.commit_id} ({'landed' if self.landed else 'void'})"
