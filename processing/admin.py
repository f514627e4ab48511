"""The dead-letter queue in the admin: a filtered, searchable list, a read-only
detail with the events, and the actions "Replay selected" / "Discard selected",
which call the same service functions as ``manage.py dlq``."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from processing.dead_letter_text import (
    discard_line,
    first_line,
    replay_result_note,
    replay_summary_line,
)
from processing.dead_letters import dead_letters_discard
from processing.models import Bisection, DeadLetter
from processing.replay import dead_letters_replay
from processing.selectors import dead_letter_events

EVENTS_SHOWN = 200  # the detail page pretty-prints at most this many events


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "id",
        "created_at",
        "plugin",
        "events_count",
        "attempts",
        "splits",
        "status",
        "replays",
        "error_first_line",
    )
    list_display_links = ("id", "created_at")
    list_filter = (
        "status",
        ("plugin", admin.AllValuesFieldListFilter),
        "created_at",
    )
    search_fields = ("error_message", "error_class", "last_replay_error", "=batch_id")
    search_help_text = "Search the error (class or message) or an exact batch id."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    actions = ("replay_selected", "discard_selected")
    fieldsets = (
        (None, {"fields": ("status", "plugin", "batch_id", "created_at", "splits")}),
        ("Failure", {"fields": ("error_class", "error_message", "attempts")}),
        (
            "Replays",
            {"fields": ("replay_count", "last_replayed_at", "last_replay_error", "resolved_at")},
        ),
        ("Events", {"fields": ("events_count", "events_pretty")}),
    )
    readonly_fields = (
        "status",
        "plugin",
        "batch_id",
        "created_at",
        "splits",
        "error_class",
        "error_message",
        "attempts",
        "replay_count",
        "last_replayed_at",
        "last_replay_error",
        "resolved_at",
        "events_count",
        "events_pretty",
    )

    # Read-only: entries change only through replay and discard.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeadLetter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DeadLetter | None = None) -> bool:
        return False  # kept for audit; `manage.py dlq purge` deletes resolved entries

    def has_replay_permission(self, request: HttpRequest) -> bool:
        """Replaying and discarding need the model's change permission (editing
        is still impossible: entries change only through the services)."""
        return request.user.has_perm("processing.change_deadletter")

    @admin.display(description="events")
    def events_count(self, obj: DeadLetter) -> int:
        return obj.event_count

    @admin.display(description="replays", ordering="replay_count")
    def replays(self, obj: DeadLetter) -> int:
        return obj.replay_count

    @admin.display(description="error")
    def error_first_line(self, obj: DeadLetter) -> str:
        return first_line(obj.last_replay_error or obj.error_summary, 100)

    @admin.display(description="events (JSON)")
    def events_pretty(self, obj: DeadLetter) -> str:
        shown = dead_letter_events(obj, limit=EVENTS_SHOWN)
        note = ""
        if len(obj.events) > len(shown):
            note = (
                f"First {len(shown)} of {len(obj.events)} events;"
                f" `manage.py dlq show {obj.pk} --json` prints them all."
            )
        return format_html(
            '<p>{}</p><pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">'
            "{}</pre>",
            note,
            json.dumps(shown, indent=2, ensure_ascii=False),
        )

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        ids = list(queryset.order_by("created_at", "id").values_list("pk", flat=True))
        summary = dead_letters_replay(ids=ids, in_server=True)  # the admin runs in serve
        level = messages.SUCCESS if summary.ok else messages.WARNING
        self.message_user(request, replay_summary_line(summary), level)
        for result in summary.results:
            if result.outcome == "failed" or result.needs_action:
                self.message_user(request, replay_result_note(result), level)

    @admin.action(description="Discard selected dead letters", permissions=["replay"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        summary = dead_letters_discard(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, discard_line(summary), messages.SUCCESS)


@admin.register(Bisection)
class BisectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only record of the poison-event bisections: how many splits and
    plugin runs each took, and how many events were dead-lettered."""

    list_display = (
        "batch_id",
        "plugin",
        "started_at",
        "finished_at",
        "events",
        "splits",
        "runs",
        "dead_lettered_events",
    )
    list_filter = (("plugin", admin.AllValuesFieldListFilter), "started_at")
    search_fields = ("=batch_id",)
    date_hierarchy = "started_at"
    ordering = ("-started_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Bisection | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Bisection | None = None) -> bool:
        return False
