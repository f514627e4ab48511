"""The one NinjaAPI of the project: mounts each app's router and maps every
error to one JSON shape ``{"error": ..., "details": [...]}``
(:func:`telemetron_site.errors.error_response`): the errors views raise, the
refusals django-ninja answers itself (an invalid request, a method a path does
not take), and any other exception (a 500)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI, Swagger
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from ingest.api import router as ingest_router
from ingest.schemas import OPENAPI_COMPONENTS
from ingest.segment_api import router as segment_router
from ingest.segment_schemas import SEGMENT_COMPONENTS
from ops.api import router as ops_router
from sources.cors import cors_response_headers
from stats.api import router as stats_router
from telemetron_site.errors import (
    ApiError,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    error_response,
    loc_text,
    validation_messages,
)
from telemetron_site.schemas import SECURITY_SCHEMES

log = logging.getLogger("telemetron.api")


View = Callable[..., HttpResponseBase]


def _json_not_allowed(view: View) -> View:
    """``view`` answering its 405 (django-ninja's, a text body) as a JSON error."""

    @functools.wraps(view)  # (keeps its csrf_exempt mark)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = sorted(response["Allow"].split(", "))
            message = f"Method {request.method} is not allowed here; use {', '.join(allowed)}"
            return MethodNotAllowed(message, allowed).response()
        return response

    return wrapped


class TelemetronAPI(NinjaAPI):
    """django-ninja's API with the schemas the ingest views declare by hand (they
    read their bodies raw) added to the document's components, the security
    schemes the operations name (``ingest.auth``, ``security.read_auth``), and
    its 405s in the API's error shape."""

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _json_not_allowed(pattern.callback)
        return patterns, app_name, namespace

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema["components"]
        components.setdefault("schemas", {}).update(OPENAPI_COMPONENTS | SEGMENT_COMPONENTS)
        named = {
            name
            for path in schema["paths"].values()
            for operation in path.values()
            for requirement in operation.get("security", ())
            for name in requirement
        }
        if named:
            components["securitySchemes"] = {n: SECURITY_SCHEMES[n] for n in sorted(named)}
        return schema


api = TelemetronAPI(
    title="Telemetron",
    version="0.1.0",
    description="Telemetry event ingestion and processing",
    docs_url="/docs",
    openapi_url="/openapi.json",
    # Swagger UI from django-ninja's own static files ("ninja" is an installed
    # app); no online validator badge: /docs asks nothing of any other host.
    docs=Swagger(settings={"validatorUrl": None}),
)
api.add_router("", ingest_router)
api.add_router("", stats_router)
api.add_router("", segment_router)
api.add_router("", ops_router)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = exc.response()
    cors_response_headers(request, response)  # a browser page may read its errors
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {"field": loc_text(loc), "message": msg} for loc, msg in validation_messages(exc.errors)
    ]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    return BadRequest(f"Invalid {first['field']}: {first['message']}", details).response()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, str(exc))


def not_found(request: HttpRequest) -> HttpResponse:
    """The answer to a path of the API that holds nothing."""
    return NotFound(f"Nothing at {request.path}: see /docs for the API's paths").response()


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return not_found(request)


@api.exception_handler(Exception)
def _internal_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "Internal server error")
