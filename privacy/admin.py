"""The erasure audit in the admin, read-only: nobody edits or deletes a record
there (`manage.py privacy purge` applies privacy.audit_retention)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from privacy.models import ErasureAudit


@admin.register(ErasureAudit)
class ErasureAuditAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "id",
        "started_at",
        "finished_at",
        "by",
        "source_id",
        "short_digest",
        "queue_events",
        "in_flight_batches",
        "dead_letter_events",
        "archive_events",
    )
    list_filter = ("started_at",)
    search_fields = ("by", "user_digest")
    date_hierarchy = "started_at"
    readonly_fields = (
        "started_at",
        "finished_at",
        "by",
        "source_id",
        "user_digest",
        "paths",
        "queue_events",
        "queue_batches_removed",
        "in_flight_batches",
        "dead_letter_events",
        "dead_letters_deleted",
        "archive_events",
    )
    fields = readonly_fields

    @admin.display(description="person (keyed hash)")
    def short_digest(self, obj: ErasureAudit) -> str:
        return f"{obj.user_digest[:12]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by `manage.py privacy erase`

    def has_change_permission(self, request: HttpRequest, obj: ErasureAudit | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ErasureAudit | None = None) -> bool:
        return False
