"""The one NinjaAPI of the project: mounts each app's router and maps every
error to one JSON shape ``{"error": ..., "details": [...]}``."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Swagger
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from core.errors import ApiError, error_response, loc_text, validation_messages
from core.schemas import SECURITY_SCHEMES
from ingest.api import router as ingest_router
from ingest.schemas import OPENAPI_COMPONENTS
from ingest.segment_api import router as segment_router
from sources.cors import cors_response_headers
from stats.api import router as stats_router

log = logging.getLogger("telemetron.api")


class TelemetronAPI(NinjaAPI):
    """django-ninja's API with the schemas the ingest views declare by hand (they
    read their bodies raw) added to the document's components, and the security
    schemes the operations name (``ingest.auth``, ``security.read_auth``)."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema["components"]
        components.setdefault("schemas", {}).update(OPENAPI_COMPONENTS)
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


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = error_response(exc)
    cors_response_headers(request, response)  # a browser page may read its errors
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {"field": loc_text(loc), "message": msg} for loc, msg in validation_messages(exc.errors)
    ]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    return JsonResponse(
        {"error": f"Invalid {first['field']}: {first['message']}", "details": details}, status=400
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return JsonResponse({"error": str(exc)}, status=exc.status_code)


@api.exception_handler(Exception)
def _internal_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return JsonResponse({"error": "Internal server error"}, status=500)
