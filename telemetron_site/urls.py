from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from telemetron_site.api import api
from telemetron_site.metrics_view import metrics
from telemetron_site.readiness import readyz


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness only: the process answers HTTP."""
    return HttpResponse(b"OK", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", api.urls),
]
