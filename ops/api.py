"""The operational endpoints, in the OpenAPI document like the rest of the API:
``GET /healthz`` (liveness), ``GET /readyz`` (:mod:`ops.readiness`) and
``GET /metrics`` (:mod:`ops.metrics.view`, behind a read token of scope
``metrics`` with ``security.read_auth = "token"``)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from ops.metrics.view import metrics as metrics_view
from ops.readiness import readyz as readyz_view
from sources.access import read_access_check
from telemetron_site.config import get_config
from telemetron_site.schemas import ErrorOut, error_responses_openapi, security_openapi

__all__ = ["router"]

router = Router(tags=["operations"])


class CheckOut(Schema):
    """One check: ``ok``, and what it found (on success) or ``error``."""

    model_config = ConfigDict(extra="allow")

    ok: bool
    error: str | None = Field(None, description="Why the check failed (only when it did).")


class Checks(Schema):
    database: CheckOut = Field(description="`SELECT 1` on the database (its vendor).")
    broker: CheckOut = Field(description="The queue's broker answers (its size).")
    cluster: CheckOut = Field(
        description="A worker cluster reported in the last few seconds (or inline processing)."
    )


class Ready(Schema):
    status: Literal["ready"]
    checks: Checks


class NotReady(ErrorOut):
    checks: Checks


_TEXT = {"schema": {"type": "string"}}
_HEALTHZ_DOC = {
    "responses": {
        200: {
            "description": "The process answers HTTP (liveness only: see /readyz).",
            "content": {"text/plain": {"schema": {"type": "string", "enum": ["OK"]}}},
        }
    }
}
_METRICS_DOC: dict[str, Any] = {
    "responses": {
        200: {
            "description": "Every process of this node merged (web and queue workers); "
            "OpenMetrics when the Accept header asks for it.",
            "content": {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
        },
        **error_responses_openapi(
            {
                401: 'No or unknown read token (`security.read_auth = "token"`).',
                403: "A read token without the scope `metrics`.",
            }
        ),
    }
}
if get_config().security.read_auth == "token":
    _METRICS_DOC |= security_openapi("metricsToken")


@router.get("/healthz", openapi_extra=_HEALTHZ_DOC, summary="Liveness")
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness only: the process answers HTTP."""
    return HttpResponse(b"OK", content_type="text/plain")


@router.get(
    "/readyz",
    response={200: Ready, 503: NotReady},
    openapi_extra={
        "responses": {
            503: {
                "description": "The database, the broker or the worker cluster is not usable "
                "(`details` names each failing check)."
            }
        }
    },
    summary="Readiness: can this node do its work?",
)
def readyz(request: HttpRequest) -> HttpResponse:
    """The database, the broker and a worker cluster: `200` when all three are
    usable, else `503` naming the failing ones. Cheap enough to probe every second."""
    return readyz_view(request)


@router.get(
    "/metrics",
    response={401: ErrorOut, 403: ErrorOut},
    openapi_extra=_METRICS_DOC,
    summary="Prometheus metrics",
)
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of this node's processes and its scrape-time gauges."""
    read_access_check(request, scope="metrics")
    return metrics_view(request)
