"""``GET /metrics``: the Prometheus exposition of every process of this node
(web and queue workers, merged in multiprocess mode) plus the scrape-time gauges."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client.exposition import choose_encoder

from ops.metrics.collectors import ScrapeTimeCollector
from ops.metrics.multiproc import multiproc_dir, scrape_registry

__all__ = ["metrics"]

_scrape_time = ScrapeTimeCollector()


def metrics(request: HttpRequest) -> HttpResponse:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    registry = scrape_registry(multiproc_dir(), _scrape_time)
    return HttpResponse(encoder(registry), content_type=content_type)
