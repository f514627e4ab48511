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

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from sources.access import origin_globally_allowed, own_origin, request_origin
from sources.keys import digest
from sources.live import get_directory

__all__ = ["cors_mark", "cors_preflight", "cors_response_headers"]

ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Write-Key"
MAX_AGE = "600"
_ATTR = "telemetron_cors_origin"


def _allowed(request: HttpRequest, origin: str) -> bool:
    if origin_globally_allowed(origin):
        return True
    if origin == own_origin(request):
        return True
    directory = get_directory()
    if "key=" in request.META.get("QUERY_STRING", ""):
        entry = directory.keys.get(digest(request.GET.get("key", "")))
        if entry is not None:
            return entry.source.enabled and entry.source.origin_allowed(origin)
    return directory.any_origin or origin in directory.origins


def cors_mark(request: HttpRequest) -> None:
    """Note the request's origin when it may read our answer (any status)."""
    origin = request_origin(request)
    if origin is not None and _allowed(request, origin):
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
    if not _allowed(request, origin):
        response = JsonResponse(
            {"error": f"Origin {origin} may not send events here (no source allows it)"},
            status=403,
        )
        response["Vary"] = "Origin"
        return response
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST"
    response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response["Access-Control-Max-Age"] = MAX_AGE
    response["Vary"] = "Origin"
    return response
