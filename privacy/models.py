"""The erasure audit: one row per run of ``manage.py privacy erase`` (not of a dry
run), saying who asked, when, for which source and person, and how many events
each store gave up. The person is kept as a keyed hash of the id
(:func:`core.erasure.user_digest`), never the id: the audit answers "was this
person erased, when, by whom" without keeping what was erased."""

from __future__ import annotations

from django.db import models

from core.fields import U64Field

__all__ = ["ErasureAudit"]


class ErasureAudit(models.Model):
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: the run stopped before its end (run it again)."
    )
    by = models.CharField(max_length=200, help_text="Who ran it (--by, else the OS user).")
    source_id = U64Field(help_text="The source whose events were erased.")
    user_digest = models.CharField(
        max_length=64,
        db_index=True,
        help_text="Keyed hash of the source and user id (the id is not kept).",
    )
    paths = models.JSONField(help_text="The paths of `data` matched (privacy.user_paths).")
    queue_events = models.PositiveIntegerField(default=0)
    queue_batches_removed = models.PositiveIntegerField(
        default=0, help_text="Waiting batches left empty, so removed."
    )
    in_flight_batches = models.PositiveIntegerField(
        default=0, help_text="Batches being processed meanwhile (their events erased next)."
    )
    dead_letter_events = models.PositiveIntegerField(default=0)
    dead_letters_deleted = models.PositiveIntegerField(
        default=0, help_text="Dead letters left empty, so deleted."
    )
    archive_events = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "erasure"

    def __str__(self) -> str:
        return f"erasure #{self.pk} of source {self.source_id} by {self.by}"

    @property
    def events(self) -> int:
        """The events erased from every store."""
        return self.queue_events + self.dead_letter_events + self.archive_events
