from django.contrib import admin
from django.contrib.staticfiles.views import serve as static_serve
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path

from ops.metrics.view import metrics
from ops.readiness import readyz
from telemetron_site.api import api


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness only: the process answers HTTP."""
    return HttpResponse(b"OK", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", api.urls),
    # The admin's own CSS/JS, found in the installed apps (no collectstatic step);
    # last, so the API routes never pay for it.
    re_path(r"^static/(?P<path>.+)$", static_serve, {"insecure": True}),
]
