"""``GET /metrics``: the Prometheus exposition of every process of this node
(web and queue workers, merged in multiprocess mode) plus the scrape-time gauges.
Every series of a known label value is there from the first scrape, at zero
(each enabled plugin's, each rejection reason's, each endpoint's)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client.exposition import choose_encoder

from ops.metrics.collectors import ScrapeTimeCollector
from ops.metrics.multiproc import multiproc_dir, scrape_registry
from ops.metrics.recording import known_series_init
from ops.middleware import endpoints_known
from plugins.live import get_chains

__all__ = ["metrics"]

_scrape_time = ScrapeTimeCollector()


def metrics(request: HttpRequest) -> HttpResponse:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    chains = get_chains()  # the enabled plugins now (hot reload included)
    known_series_init(
        validators=[v.name for v in chains.validators],
        processors=[p.name for p in chains.processors],
        endpoints=endpoints_known(),
    )
    registry = scrape_registry(multiproc_dir(), _scrape_time)
    return HttpResponse(encoder(registry), content_type=content_type)
