"""The dead-letter queue: batches a processor plugin failed on permanently."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        REPLAYED = "replayed", "replayed"
        DISCARDED = "discarded", "discarded"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    batch_id = models.CharField(max_length=64, db_index=True)
    plugin = models.CharField(max_length=200, db_index=True)
    events = models.JSONField(help_text="The events as received, normalised (UTC timestamps).")
    error_class = models.CharField(max_length=200)
    error_message = models.TextField()
    attempts = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    replay_count = models.PositiveIntegerField(default=0)
    last_replayed_at = models.DateTimeField(null=True, blank=True)
    last_replay_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "dead letter"

    def __str__(self) -> str:
        return f"#{self.pk} {self.plugin} batch {self.batch_id}"

    @property
    def event_count(self) -> int:
        return len(self.events)
