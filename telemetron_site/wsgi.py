"""WSGI entry point (served by granian's WSGI interface, see `manage.py serve`).

Two Django handlers share the one URLconf. Requests for the API's paths
(``API_PATH_PREFIXES``: /ingest, /v1/, /stats, /healthz, /readyz, /metrics) go
through :class:`ApiHandler`, whose middleware chain is ``API_MIDDLEWARE``; every
other path (the admin, its static files, unknown paths) through Django's own
handler and the full ``MIDDLEWARE``. The session, CSRF, auth, messages and
clickjacking middlewares do nothing for the API but cost it about 7 % of its CPU
per request (bench/RESULTS.md).

:class:`ApiHandler` also skips two costs of Django's handler that the API's
answers do not depend on (each ~10 % of a single event's CPU in one process,
bench/RESULTS.md):

* the URL resolving of a path without parameters (``/ingest``, ``/v1/track``):
  its match is kept, per path, after its first request;
* the ``request_started`` / ``request_finished`` signals, as long as their
  receivers are Django's own (then it does what they do for a request that uses no
  cache, no per-request URLconf and, with ``DEBUG`` off, no query log: the
  database connections in error or past their age are closed, once, when the
  response is closed). With any other receiver connected, the signals are sent.

The process that loads it (a granian worker) is killed when its parent (granian's
main process) dies, so no web worker keeps serving after the server it belongs to
(``ops.process_tree.die_with_parent``; a clean stop ends the workers before their
parent exits, so only a parent's crash sends it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.handlers.base import reset_urlconf
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, reset_queries
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, set_script_prefix

from ops.process_tree import die_with_parent

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetron_site.settings")

__all__ = ["ApiHandler", "application"]

# The receivers Django connects (django.db, django.core.cache, the base handler).
_DJANGO_RECEIVERS: dict[Signal, set[object]] = {
    signals.request_started: {reset_queries, close_old_connections},
    signals.request_finished: {close_old_connections, close_caches, reset_urlconf},
}
_MATCHES_KEPT = 256  # paths without parameters: the API has a few dozen


_checked: dict[Signal, tuple[int, int, bool]] = {}


def _only_djangos(signal: Signal) -> bool:
    """Whether only Django's own receivers listen to ``signal`` (read again when
    its list of receivers changes)."""
    key = (id(signal.receivers), len(signal.receivers))
    seen = _checked.get(signal)
    if seen is not None and seen[:2] == key:
        return seen[2]
    refs = (entry[1] for entry in signal.receivers)  # (key, receiver, ...) in Django 5 and 6
    receivers = {r() if isinstance(r, weakref.ref) else r for r in refs}
    only = receivers <= _DJANGO_RECEIVERS[signal]
    _checked[signal] = (*key, only)
    return only


class _Closing:
    """The response as the WSGI server sees it: its body, and on ``close()`` the
    response's own closers and the database connections' check (what
    ``request_finished``'s receivers do for an API request), no signal."""

    __slots__ = ("_response",)

    def __init__(self, response: HttpResponseBase) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._response)

    def close(self) -> None:
        response = self._response
        closers: list[Callable[[], object]] = response._resource_closers  # type: ignore[attr-defined]
        for closer in closers:
            with contextlib.suppress(Exception):  # as HttpResponseBase.close
                closer()
        closers.clear()
        response.closed = True
        close_old_connections()


class ApiHandler(WSGIHandler):
    """Django's WSGI handler with ``settings.API_MIDDLEWARE`` as its chain, the
    matches of the paths without parameters kept, and no request signals while
    only Django's own receivers listen to them."""

    def __init__(self) -> None:
        super().__init__()
        self._matches: dict[str, ResolverMatch] = {}

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE  # read once, here, at start-up
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = self._matches.get(request.path_info)
        if match is not None:
            request.resolver_match = match
            return match
        match = super().resolve_request(request)
        if not match.args and not match.kwargs and len(self._matches) < _MATCHES_KEPT:
            self._matches[request.path_info] = match
        return match

    def __call__(  # type: ignore[override]  # a WSGI body, not always the response
        self, environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        if (
            settings.DEBUG
            or not _only_djangos(signals.request_started)
            or not _only_djangos(signals.request_finished)
        ):
            return super().__call__(environ, start_response)
        set_script_prefix(get_script_name(environ))
        request = self.request_class(environ)
        response = self.get_response(request)
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        start_response(status, headers)
        return _Closing(response)


def _dispatcher(api: WSGIHandler, full: WSGIHandler) -> Callable[..., Iterable[bytes]]:
    prefixes = tuple(settings.API_PATH_PREFIXES)

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler = api if environ.get("PATH_INFO", "").startswith(prefixes) else full
        return handler(environ, start_response)

    return application


die_with_parent(signal.SIGKILL)
_full = get_wsgi_application()  # sets Django up
application = _dispatcher(ApiHandler(), _full)
