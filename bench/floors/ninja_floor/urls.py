"""One django-ninja sync endpoint doing what the Python floor does: parse the
JSON body, answer 202."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import NinjaAPI

api = NinjaAPI(title="framework floor", docs_url=None, openapi_url=None)

_ACCEPTED = b'{"status":"accepted"}'


@api.post("/ingest")
def ingest(request: HttpRequest) -> HttpResponse:
    json.loads(request.body)
    return HttpResponse(_ACCEPTED, status=202, content_type="application/json")


urlpatterns = [path("", api.urls)]
