"""``GET /metrics``: the Prometheus exposition of every process of this node
(web and queue workers, merged in multiprocess mode) plus the scrape-time gauges.
Every series of a known label value is there from the first scrape, at zero
(each enabled plugin's, each rejection reason's, each endpoint's)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client.exposition import choose_encoder

from core.metrics.recording import known_series_init
from ops.metrics.collectors import ScrapeTimeCollector
from ops.metrics.multiproc import multiproc_dir, scrape_registry
from ops.middleware import endpoints_known
from plugins.live import plugins_in_use

__all__ = ["metrics"]

_scrape_time = ScrapeTimeCollector()


def metrics(request: HttpRequest) -> HttpResponse:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    validators, transformers, processors = plugins_in_use()  # as this process last read them
    known_series_init(
        validators=validators,
        transformers=transformers,
        processors=processors,
        endpoints=endpoints_known(),
    )
    registry = scrape_registry(multiproc_dir(), _scrape_time)
    return HttpResponse(encoder(registry), content_type=content_type)
