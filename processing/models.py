"""The dead-letter queue: batches (or, after bisection, parts of batches) that a
processor plugin failed on permanently, kept until an operator replays or
discards them; and the record of each bisection."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        REPLAYED = "replayed", "replayed"
        DISCARDED = "discarded", "discarded"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    batch_id = models.CharField(
        max_length=64,
        db_index=True,
        help_text="The batch id; a part found by bisection has the original id plus"
        " '.0'/'.1' per split (replays reuse it, so nothing is counted twice).",
    )
    plugin = models.CharField(max_length=200, db_index=True)
    events = models.JSONField(help_text="The events as received, normalised (UTC timestamps).")
    error_class = models.CharField(max_length=200)
    error_message = models.TextField()
    attempts = models.PositiveIntegerField(
        help_text="Runs of the plugin on these events that failed (processing and replays)."
    )
    splits = models.PositiveIntegerField(
        default=0,
        help_text="How many times the original batch was halved to isolate these events"
        " (0: the batch was not bisected).",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    replay_count = models.PositiveIntegerField(default=0)
    last_replayed_at = models.DateTimeField(null=True, blank=True)
    last_replay_error = models.TextField(blank=True, default="")
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the entry was replayed or discarded."
    )
    # A replay claims the entry first (one conditional UPDATE), so two replays
    # running at once never run the plugin twice on it.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "dead letter"

    def __str__(self) -> str:
        return f"#{self.pk} {self.plugin} batch {self.batch_id}"

    @property
    def event_count(self) -> int:
        return len(self.events)

    @property
    def error_summary(self) -> str:
        """The error's class and the first line of its message."""
        first = (self.error_message.splitlines() or [""])[0]
        return f"{self.error_class}: {first}" if first else self.error_class


class Bisection(models.Model):
    """One bisection of a batch a plugin failed on: written when it starts (so a
    redelivered batch resumes the bisection instead of re-running the whole
    batch), completed when it ends."""

    batch_id = models.CharField(max_length=64)
    plugin = models.CharField(max_length=200)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    events = models.PositiveIntegerField()
    splits = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0, help_text="Sub-batch runs of the plugin.")
    dead_lettered_events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch_id", "plugin"], name="processing_bisection_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.plugin} batch {self.batch_id}: {self.splits} splits"
