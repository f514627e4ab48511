"""Per-request HTTP metrics and the request log line, in one small middleware.

It replaces django-prometheus' Before/After middlewares, which cost a third of
the throughput (bench/RESULTS.md): each request pays one counter increment, one
histogram observation and, when ``telemetron.request`` logs at INFO, one log line.

The log line is written by one thread of the process (:class:`RequestLog`), a
moment after the answer: the request's thread only queues its fields. Written
from the request threads, the lines contended for the log handler's lock, which
cost more than writing them (bench/RESULTS.md). The lines still queued when the
process exits are written at exit, unless the process is killed or leaves
without running ``atexit`` (then the last moment's lines may be missing).

The ``endpoint`` label is the matched route template (``/stats/{source_id}``),
never the raw path, so label values stay few; requests that match no route
share ``endpoint="unmatched"``.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver, get_resolver

from core.metrics.series import HTTP_REQUESTS, HTTP_REQUESTS_DURATION

__all__ = [
    "UNMATCHED",
    "RequestLog",
    "RequestMetricsMiddleware",
    "endpoints_known",
    "request_log",
    "route_template",
]

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


# method, path, endpoint, status, seconds
_Line = tuple[str, str, str, int, float]


class RequestLog:
    """The request lines of a process, written on ``telemetron.request`` by one
    thread of it (started on the first line, again in a forked child)."""

    def __init__(self) -> None:
        self._lines: queue.SimpleQueue[_Line | None] = queue.SimpleQueue()
        self._pid = 0
        self._start_lock = threading.Lock()

    def put(self, line: _Line) -> None:
        if self._pid != os.getpid():
            self._start()
        self._lines.put(line)

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._lines = queue.SimpleQueue()  # a forked child's own
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="telemetron-request-log", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        lines = self._lines
        while (line := lines.get()) is not None:
            self._write(line)

    def flush(self) -> None:
        """Write the lines still queued, in this thread (at exit)."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self._write(line)

    @staticmethod
    def _write(line: _Line) -> None:
        method, path, endpoint, status, elapsed = line
        log.info(
            '"%s %s" %d %.1fms',
            method,
            path,
            status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": path,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


request_log = RequestLog()


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
            method = request.method or ""
            request_log.put((method, request.path, endpoint, response.status_code, elapsed))
        return response
