"""CORS for ``/ingest`` and ``/ingest/batch``, by source.

A preflight (``OPTIONS`` with ``Origin``) carries no key, so it is answered for
the origins some enabled source allows (or, with ``?key=``, that key's source
allows), plus ``ingest.allowed_origins`` and the service's own origin; any
other origin gets a 403 and the browser sends nothing. Credentials are never
allowed (no ``Access-Control-Allow-Credentials``): keys travel in headers or
the query, never in cookies.

CORS alone cannot stop a browser from *sending* a simple request
(``sendBeacon``'s text/plain POST has no preflight), so the events themselves
are checked against their source's origins (:class:`sources.access.WriteAccess`,
403). Done here rather than with django-cors-headers: its allow rule is one
list (or a signal) for the whole site, not a source's; and its middleware
would run on every API request (``telemetron_site/wsgi.py``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase

from sources.access import origin_globally_allowed, own_origin, query_key, request_origin
from sources.keys import digest
from sources.live import get_directory
from telemetron_site.errors import Forbidden

__all__ = ["cors_mark", "cors_preflight", "cors_response_headers"]

ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Write-Key"
MAX_AGE = "600"
_ATTR = "telemetron_cors_origin"


def _known(request: HttpRequest, origin: str) -> bool:
    """Some enabled source allows it, or the global list, or it is our own."""
    directory = get_directory()
    if directory.any_origin or origin in directory.origins:
        return True
    return origin_globally_allowed(origin) or origin == own_origin(request)


def _preflight_allowed(request: HttpRequest, origin: str) -> bool:
    """With ``?key=``, that key's source (and the global list) decide."""
    key = query_key(request.META.get("QUERY_STRING", ""))
    entry = get_directory().keys.get(digest(key)) if key else None
    if entry is None:
        return _known(request, origin)
    if entry.source.enabled and entry.source.origin_allowed(origin):
        return True
    return origin_globally_allowed(origin) or origin == own_origin(request)


def cors_mark(request: HttpRequest) -> None:
    """Note the request's origin when it may read our answer (any status; whether
    its events may be written is each event's source's rule, a 403)."""
    origin = request_origin(request)
    if origin is not None and _known(request, origin):
        setattr(request, _ATTR, origin)


def cors_response_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    origin = getattr(request, _ATTR, None)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Vary"] = "Origin"


def cors_preflight(request: HttpRequest) -> HttpResponse:
    """The answer to ``OPTIONS /ingest`` and ``OPTIONS /ingest/batch``."""
    origin = request_origin(request)
    if origin is None:  # not a browser's preflight: say what the path takes
        response = HttpResponse(status=204)
        response["Allow"] = "POST, OPTIONS"
        return response
    if not _preflight_allowed(request, origin):
        response = Forbidden(
            f"Origin {origin} may not send events here (no source allows it)"
        ).response()
        response["Vary"] = "Origin"
        return response
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST"
    response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response["Access-Control-Max-Age"] = MAX_AGE
    response["Vary"] = "Origin"
    return response
