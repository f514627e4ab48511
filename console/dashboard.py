"""The dashboard's figures, each read through the app that owns it: the stats
store's totals (what ``GET /stats`` answers), events per minute
(:mod:`stats.minutes`), the broker's queue, the dead letters, the enabled
plugins, the clusters' heartbeats and the top sources.

A panel whose read fails (the broker's Redis is down, say) shows its error;
the others are still drawn."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.safestring import SafeString

from broker.interface import queue_broker
from broker.leases import cluster_statuses
from broker.selectors import oldest_batch_received_at, queue_depth
from console.charts import Line, line_chart
from plugins.selectors import plugin_specs_enabled
from processing.selectors import dead_letters_pending_by_plugin
from sources.selectors import source_list
from stats.minutes import MinuteFigures, minute_series
from stats.selectors import top_sources
from stats.store import get_store

__all__ = ["Panel", "dashboard_figures"]

log = logging.getLogger("telemetron.console")

RECEIVED, COUNTED = "#205067", "#8fcf8f"  # a dark narrow line over a pale wide one


@dataclass(frozen=True)
class Panel:
    ok: bool
    data: Any = None
    error: str = ""


def _panel(read: Callable[[], Any]) -> Panel:
    try:
        return Panel(True, read())
    except Exception as exc:  # a dashboard shows what failed instead of failing
        log.warning("dashboard: %s failed: %s", read.__name__, exc)
        return Panel(False, error=f"{type(exc).__name__}: {exc}")


def _totals() -> dict[str, int]:
    sources, events = get_store().totals()
    return {"sources_count": sources, "events_count": events}


def _chart(chart_id: str, title: str, series: list[MinuteFigures], every: int) -> SafeString:
    labels = {
        i: datetime.fromtimestamp(f.minute * 60, UTC).strftime("%H:%M")
        for i, f in enumerate(series)
        if f.minute % every == 0
    }
    return line_chart(
        chart_id=chart_id,
        title=title,
        lines=[  # both are events counted in the stats (console/templates: the help)
            Line(
                "counted",
                [f.processed for f in series],
                COUNTED,
                width=5,
                legend="counted in the stats, by the minute of their merge",
            ),
            Line(
                "received",
                [f.accepted for f in series],
                RECEIVED,
                dashed=True,
                legend="the same events, by the minute of their 202",
            ),
        ],
        x_labels=labels,
    )


def _summary(series: list[MinuteFigures]) -> dict[str, Any]:
    """Events counted in the stats in these minutes (``counted``: merged then;
    ``received``: answered 202 then, counted since), and their lag."""
    counted = sum(f.processed for f in series)
    lag_sum = sum((f.lag_ms_mean or 0) * f.processed for f in series)
    return {
        "received": sum(f.accepted for f in series),
        "counted": counted,
        "lag_ms_mean": lag_sum / counted if counted else None,
        "lag_ms_max": max((f.lag_ms_max for f in series), default=0),
    }


def _throughput() -> dict[str, Any]:
    day = minute_series(minutes=24 * 60)
    hour = day[-60:]
    last = next((f for f in reversed(hour) if f.processed), None)
    return {
        "hour": _summary(hour),
        "day": _summary(day),
        "last_lag": last,
        "hour_chart": _chart("chart-hour", "Events per minute, last hour", hour, 10),
        "day_chart": _chart("chart-day", "Events per minute, last 24 hours", day, 180),
    }


def _queue() -> dict[str, Any]:
    depth = queue_depth()
    oldest = oldest_batch_received_at()
    return {
        "waiting": depth.waiting,
        "claimed": depth.claimed,
        "oldest_received_at": oldest,
        "oldest_age_s": None if oldest is None else max(0.0, time.time() - oldest.timestamp()),
    }


def _chains() -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {"validator": [], "transformer": [], "processor": []}
    for spec in plugin_specs_enabled():
        chains.setdefault(spec.kind, []).append(spec.name)
    return chains


def _top_sources() -> list[dict[str, Any]]:
    top = top_sources(limit=10)
    names = {s.id: s.name for s in source_list(ids=[f.source_id for f in top])}
    return [{"figures": f, "name": names.get(f.source_id)} for f in top]


def _clusters() -> list[Any]:
    return sorted(cluster_statuses(queue_broker()), key=lambda c: (c.host, c.cluster_id))


def dashboard_figures() -> dict[str, Panel]:
    return {
        "totals": _panel(_totals),
        "throughput": _panel(_throughput),
        "queue": _panel(_queue),
        "dead_letters": _panel(dead_letters_pending_by_plugin),
        "chains": _panel(_chains),
        "clusters": _panel(_clusters),
        "top_sources": _panel(_top_sources),
    }
