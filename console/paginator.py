"""Paging a list of a million rows without counting them on every page.

The admin's paginator counts the whole (filtered) list on every page: a
``COUNT(*)`` over a million sources is a scan of the table. This one counts
exactly up to :data:`EXACT_UP_TO` rows (a count of at most that many index
entries) and past that takes PostgreSQL's planner estimate of the query (an
``EXPLAIN``, no scan); on SQLite it counts (one writer, one file: a count of
the primary key's b-tree).

A page far from the start reads its keys first (``SELECT key … ORDER BY …
OFFSET n LIMIT per_page``: an index-only scan of the ordering's index, no row
fetched for the rows skipped), then its rows by those keys."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connections
from django.utils.functional import cached_property

__all__ = ["DEFERRED_FROM", "EXACT_UP_TO", "LargeTablePaginator"]

EXACT_UP_TO = 10_000
DEFERRED_FROM = 1_000  # rows skipped from which a page reads its keys first


def _planner_estimate(queryset: Any) -> int:
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeTablePaginator(Paginator):
    """Exact up to :data:`EXACT_UP_TO` rows, estimated past that (PostgreSQL):
    the page links past the true end then show empty pages. ``key_field``: a
    unique column that is the last of every ordering's index."""

    key_field = "pk"

    def page(self, number: Any) -> Any:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        queryset: Any = self.object_list
        if bottom < DEFERRED_FROM:
            return Page(queryset[bottom:top], number, self)
        keys = list(queryset.values_list(self.key_field, flat=True)[bottom:top])
        return Page(queryset.filter(**{f"{self.key_field}__in": keys}), number, self)

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        if connections[queryset.db].vendor != "postgresql":
            return int(queryset.count())
        capped = int(queryset.order_by()[: EXACT_UP_TO + 1].count())
        if capped <= EXACT_UP_TO:
            return capped
        return max(capped, _planner_estimate(queryset.order_by()))
