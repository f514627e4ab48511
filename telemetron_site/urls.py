from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from telemetron_site.api import api


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness only: the process answers HTTP."""
    return HttpResponse(b"OK", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", api.urls),
]
