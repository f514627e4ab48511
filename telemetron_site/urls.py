from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import defaults

from console.views import dashboard
from telemetron_site.api import api
from telemetron_site.api import not_found as api_not_found
from telemetron_site.errors import error_response

urlpatterns = [
    path("admin/", dashboard, name="dashboard"),  # the admin's landing page (before its index)
    path("admin/", admin.site.urls),
    # The API, /docs, /openapi.json and the operational endpoints (/healthz, /readyz,
    # /metrics): each is an operation of the one NinjaAPI.
    path("", api.urls),
    # /static/ is whitenoise's (its middleware answers before URL resolution).
]


# Django's own error answers (a path nothing matches, a request Django refuses
# before any view, an exception outside the API's views) in the API's JSON shape,
# except for the admin's pages, which keep Django's HTML ones.
def _admin(request: HttpRequest) -> bool:
    return request.path_info == "/admin" or request.path_info.startswith("/admin/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _admin(request):
        return defaults.page_not_found(request, exception)
    return api_not_found(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _admin(request):
        return defaults.bad_request(request, exception)
    return error_response(400, "Bad request")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _admin(request):
        return defaults.permission_denied(request, exception)
    return error_response(403, "Forbidden")


def server_error(request: HttpRequest) -> HttpResponse:
    if _admin(request):
        return defaults.server_error(request)
    return error_response(500, "Internal server error")


handler400 = bad_request
handler403 = permission_denied
handler404 = not_found
handler500 = server_error
