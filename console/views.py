"""The admin's landing page: the dashboard (staff only, as every admin page)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from console.dashboard import dashboard_figures

__all__ = ["dashboard"]


def _dashboard(request: HttpRequest) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "subtitle": None,
        "app_list": admin.site.get_app_list(request),
        "figures": dashboard_figures(),
    }
    return TemplateResponse(request, "admin/console/dashboard.html", context)


# The admin's own guard: a login page for anyone but active staff; never cached.
dashboard = admin.site.admin_view(_dashboard)
