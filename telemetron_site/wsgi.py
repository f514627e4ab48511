"""WSGI entry point (served by granian's WSGI interface, see `manage.py serve`).

Two Django handlers share the one URLconf. Requests for the API's paths
(``API_PATH_PREFIXES``: /ingest, /stats, /healthz, /readyz, /metrics) go through a
handler whose middleware chain is ``API_MIDDLEWARE``; every other path (the
admin, its static files, unknown paths) through the full ``MIDDLEWARE``. The
session, CSRF, auth, messages and clickjacking middlewares do nothing for the API
but cost it about 7 % of its CPU per request (bench/RESULTS.md).

The process that loads it (a granian worker) gets SIGTERM when its parent (granian's
main process) dies, so no web worker keeps serving after the server it belongs to
(``ops.process_tree.die_with_parent``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

from ops.process_tree import die_with_parent

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetron_site.settings")

__all__ = ["application"]


class ApiHandler(WSGIHandler):
    """Django's WSGI handler with ``settings.API_MIDDLEWARE`` as its chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE  # read once, here, at start-up
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def _dispatcher(api: WSGIHandler, full: WSGIHandler) -> Callable[..., Iterable[bytes]]:
    prefixes = tuple(settings.API_PATH_PREFIXES)

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler = api if environ.get("PATH_INFO", "").startswith(prefixes) else full
        return handler(environ, start_response)

    return application


die_with_parent()
_full = get_wsgi_application()  # sets Django up
application = _dispatcher(ApiHandler(), _full)
