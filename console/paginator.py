"""Paging a list of a million rows without counting them on every page.

The admin's paginator counts the whole (filtered) list on every page: a
``COUNT(*)`` over a million sources is a scan of the table. This one counts
exactly up to :data:`EXACT_UP_TO` rows (a count of at most that many index
entries) and past that takes PostgreSQL's planner estimate of the query (an
``EXPLAIN``, no scan); on SQLite it counts (one writer, one file: a count of
the primary key's b-tree)."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

__all__ = ["EXACT_UP_TO", "LargeTablePaginator"]

EXACT_UP_TO = 10_000


def _planner_estimate(queryset: Any) -> int:
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeTablePaginator(Paginator):
    """Exact up to :data:`EXACT_UP_TO` rows, estimated past that (PostgreSQL):
    the page links past the true end then show empty pages."""

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        if connections[queryset.db].vendor != "postgresql":
            return int(queryset.count())
        capped = int(queryset.order_by()[: EXACT_UP_TO + 1].count())
        if capped <= EXACT_UP_TO:
            return capped
        return max(capped, _planner_estimate(queryset.order_by()))
