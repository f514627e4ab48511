"""Per-request HTTP metrics and the request log line, in one small middleware.

It replaces django-prometheus' Before/After middlewares, which cost a third of
the throughput (bench/RESULTS.md): each request pays one counter increment, one
histogram observation and, when ``telemetron.request`` logs at INFO, one log line.

The ``endpoint`` label is the matched route template (``/stats/{source_id}``),
never the raw path, so label values stay few; requests that match no route
share ``endpoint="unmatched"``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver, get_resolver

from core.metrics.series import HTTP_REQUESTS, HTTP_REQUESTS_DURATION

__all__ = ["UNMATCHED", "RequestMetricsMiddleware", "endpoints_known", "route_template"]

log = logging.getLogger("telemetron.request")

UNMATCHED = "unmatched"
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")  # path("stats/<int:source_id>")
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")  # re_path(r"(?P<url>.*)$")


def route_template(route: str) -> str:
    """Django's matched route (``stats/<source_id>``) as ``/stats/{source_id}``."""
    route = _NAMED_GROUP.sub(r"{\1}", route)
    route = _CONVERTER.sub(r"{\1}", route)
    return "/" + route.replace("^", "").replace("$", "")


def _routes(resolver: URLResolver, prefix: str) -> Iterator[str]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.namespace != "admin":  # the admin's hundreds of routes: not the API
                yield from _routes(entry, route)
        elif isinstance(entry, URLPattern) and route:  # (django-ninja's empty root route)
            yield route


@cache
def endpoints_known() -> tuple[str, ...]:
    """The ``endpoint`` label of every route outside the admin (the API, /docs,
    /metrics, the probes), as the middleware names them, plus ``unmatched``."""
    templates = {route_template(route) for route in _routes(get_resolver(), "")}
    return (*sorted(templates), UNMATCHED)


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self._endpoints: dict[str, str] = {}
        self._series: dict[tuple[str, int], tuple[Any, Any]] = {}

    def _endpoint(self, request: HttpRequest) -> str:
        match = request.resolver_match
        if match is None:
            return UNMATCHED
        endpoint = self._endpoints.get(match.route)
        if endpoint is None:
            endpoint = self._endpoints[match.route] = route_template(match.route)
        return endpoint

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - start
        endpoint = self._endpoint(request)
        status_class = response.status_code // 100
        series = self._series.get((endpoint, status_class))
        if series is None:
            series = self._series[(endpoint, status_class)] = (
                HTTP_REQUESTS.labels(endpoint),
                HTTP_REQUESTS_DURATION.labels(endpoint, f"{status_class}xx"),
            )
        series[0].inc()
        series[1].observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                '"%s %s" %d %.1fms',
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
        return response
