from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from console.views import dashboard
from core.errors import ApiError, error_response
from ops.metrics.view import metrics
from ops.readiness import readyz
from sources.access import read_access_check
from telemetron_site.api import api


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness only: the process answers HTTP."""
    return HttpResponse(b"OK", content_type="text/plain")


def metrics_guarded(request: HttpRequest) -> HttpResponse:
    """/metrics behind a read token of scope metrics (``security.read_auth``)."""
    try:
        read_access_check(request, scope="metrics")
    except ApiError as exc:
        return error_response(exc)
    return metrics(request)


urlpatterns = [
    path("healthz", healthz, name="healthz"),  # /healthz and /readyz stay open
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_guarded, name="metrics"),
    path("admin/", dashboard, name="dashboard"),  # the admin's landing page (before its index)
    path("admin/", admin.site.urls),
    path("", api.urls),
    # /static/ is whitenoise's (its middleware answers before URL resolution).
]
