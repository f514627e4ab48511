"""The admin's frame (its titles; django-q2's own models left out: the queue is
ours, the `broker` app) and its sources list, for a million sources:
the sources app's own admin (keys, origins, limits) with each source's
statistics, read per page.

* Every page is one indexed query: ordered by ``source_id`` (unique) or by
  ``name`` (the index on ``(name, source_id)``), with ``source_id`` as the tie
  breaker in the same direction so the index serves both; no per-row aggregate
  over the table (the live keys and the statistics are read for the page's
  sources only, :func:`stats.selectors.source_figures`).
* No ``COUNT(*)`` of the table per page (:class:`console.paginator.LargeTablePaginator`,
  ``show_full_result_count = False``).
* Search: an exact id, or a part of the name (a scan of the names: see the README).

bench/sources_admin.py shows the plans and times at a million sources.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

from console.charts import bar_chart
from console.paginator import LargeTablePaginator
from plugins.base import U64_MAX
from sources.admin import SourceAdmin
from sources.selectors import source_list
from stats.selectors import SourceFigures, source_figures

# The model the sources app's admin is registered for (this admin replaces it).
Source = apps.get_model("sources", "Source")
TYPES_SHOWN = 3

admin.site.site_header = "Telemetron"
admin.site.site_title = "Telemetron admin"
admin.site.index_title = "Dashboard"
# The app list is on the dashboard and every page's breadcrumbs lead there; the
# sidebar's 300 px would leave the lists too narrow for their columns.
admin.site.enable_nav_sidebar = False

# django-q2 registers its task tables (successes, failures, schedules, its own
# ORM queue): Telemetron keeps none of them (save_limit = -1, our brokers, no
# schedules), so they are left out; the queue is on the dashboard.
for _model in apps.get_app_config("django_q").get_models():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class SourcesPaginator(LargeTablePaginator):
    key_field = "source_id"  # the last column of both orderings' indexes


class SourcesChangeList(ChangeList):
    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        """The clicked column, then source_id in the same direction (unique: no
        ``-pk`` appended, so the ``(name, source_id)`` index serves either way)."""
        ordering = [o for o in super().get_ordering(request, queryset) if o not in ("pk", "-pk")]
        if not any(str(o).lstrip("-") == "source_id" for o in ordering):
            descending = bool(ordering) and str(ordering[0]).startswith("-")
            ordering.append("-source_id" if descending else "source_id")
        return ordering

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        ids = [s.source_id for s in self.result_list]
        figures = source_figures(ids=ids)
        live = {row.id: row.live_keys for row in source_list(ids=ids)}
        for source in self.result_list:
            source.figures = figures.get(source.source_id)
            source.n_live = live.get(source.source_id, 0)


class SourceOverviewAdmin(SourceAdmin):
    list_display = (  # type: ignore[assignment]
        "source_id",
        "name",
        "enabled",
        "total_events",
        "first_event",
        "last_event",
        "event_types",
        "live_keys",
    )
    sortable_by = ("source_id", "name")
    # and an exact id: get_search_results
    search_fields = ("name",)  # type: ignore[assignment]
    search_help_text = "An exact source id, or a part of the name."
    paginator = SourcesPaginator
    show_full_result_count = False
    list_per_page = 100
    change_list_template = "admin/console/sources_change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # No per-row aggregate over the table (SourceAdmin's count of live keys):
        # the page's keys are read by SourcesChangeList.
        return admin.ModelAdmin.get_queryset(self, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """A part of the name, or an exact id (an index lookup; Django's ``=``
        search would compare the id's stored, biased, value as text)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isascii() and term.isdigit() and len(term) <= 20 and int(term) <= U64_MAX:
            found = found | queryset.filter(source_id=int(term))
        return found, duplicates

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SourcesChangeList

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "statistics") if obj is not None else fields

    @staticmethod
    def _figures(obj: Any) -> SourceFigures | None:
        if not hasattr(obj, "figures"):
            obj.figures = source_figures(ids=[obj.source_id]).get(obj.source_id)
        return obj.figures  # type: ignore[no-any-return]

    @admin.display(description="events")
    def total_events(self, obj: Any) -> int:
        figures = self._figures(obj)
        return figures.total_events if figures else 0

    @admin.display(description="first event")
    def first_event(self, obj: Any) -> Any:
        figures = self._figures(obj)
        return figures.first_event if figures else None

    @admin.display(description="last event")
    def last_event(self, obj: Any) -> Any:
        figures = self._figures(obj)
        return figures.last_event if figures else None

    @admin.display(description="event types")
    def event_types(self, obj: Any) -> str:
        figures = self._figures(obj)
        if not figures or not figures.event_types:
            return "—"
        shown = [f"{t}: {n}" for t, n in list(figures.event_types.items())[:TYPES_SHOWN]]
        more = len(figures.event_types) - TYPES_SHOWN
        return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")

    @admin.display(description="statistics")
    def statistics(self, obj: Any) -> SafeString:
        figures = self._figures(obj)
        if figures is None:
            return format_html("<p>{}</p>", "No events counted yet.")
        chart = bar_chart(
            chart_id="chart-types",
            title=f"Events of source {obj.source_id} by type",
            bars=list(figures.event_types.items()),
        )
        return format_html(
            "<p>{} events, first {}, last {}; by type:</p>{}",
            figures.total_events,
            date_format(figures.first_event, "DATETIME_FORMAT"),
            date_format(figures.last_event, "DATETIME_FORMAT"),
            chart,
        )


admin.site.unregister(Source)
admin.site.register(Source, SourceOverviewAdmin)
