"""Gauges computed when ``/metrics`` is scraped, from the database and the broker:
two cheap queries (an indexed COUNT on the broker's queue, a GROUP BY on the
dead letters' indexed status) and the build version. Computing them at scrape
time keeps them right whichever process or node changed them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from broker.selectors import queue_depth
from processing.selectors import dead_letter_counts

__all__ = ["ScrapeTimeCollector", "build_version"]

log = logging.getLogger("telemetron.metrics")


@cache
def build_version() -> str:
    try:
        return version("telemetron")
    except PackageNotFoundError:
        return "unknown"


def _queue_depth() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "telemetron_queue_depth",
        "Batches waiting in the broker for a worker (not counting those being processed).",
    )
    gauge.add_metric([], float(queue_depth().waiting))
    return gauge


def _dead_letters() -> GaugeMetricFamily:
    counts = dead_letter_counts()
    gauge = GaugeMetricFamily(
        "telemetron_dead_letters",
        "Dead-letter entries by status (pending, replayed, discarded).",
        labels=["status"],
    )
    for status, n in sorted(counts.items()):
        gauge.add_metric([status], float(n))
    return gauge


class ScrapeTimeCollector(Collector):
    """Queue depth, dead letters and build info, read when scraped. A database
    error leaves the database gauges out of that scrape (logged), never fails it."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "telemetron_build_info", "Telemetron's version; always 1.", labels=["version"]
        )
        info.add_metric([build_version()], 1.0)
        yield info
        for compute in (_queue_depth, _dead_letters):
            try:
                family = compute()
            except DatabaseError as exc:
                log.warning("metrics: %s left out of this scrape: %s", compute.__name__, exc)
                continue
            yield family
