"""The WSGI entry point sends the API's paths through the short middleware chain
and everything else (the admin) through the full one, CSRF included."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core import signals
from django.db import connection

from telemetron_site.wsgi import ApiHandler, application

pytestmark = pytest.mark.django_db


def call(
    method: str,
    path: str,
    body: bytes = b"",
    handler: Callable[[dict[str, Any], Any], Iterable[bytes]] = application,
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    chunks = handler(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return seen["status"], seen["headers"], content


def test_api_paths_skip_the_admin_middlewares_but_keep_the_security_headers() -> None:
    status, headers, body = call("GET", "/healthz")
    assert (status, body) == (200, b"OK")
    assert headers.get("X-Content-Type-Options") == "nosniff"  # SecurityMiddleware
    assert "X-Frame-Options" not in headers  # no clickjacking middleware: not the full chain


def test_admin_paths_get_the_full_chain() -> None:
    status, headers, _ = call("GET", "/admin/login/")
    assert status == 200
    assert headers.get("X-Frame-Options") == "DENY"
    assert "csrftoken" in headers.get("Set-Cookie", "")


def test_admin_post_without_csrf_token_is_refused() -> None:
    status, _, body = call("POST", "/admin/login/", b"username=a&password=b")
    assert status == 403
    assert b"CSRF" in body


def test_the_favicon_browsers_ask_every_admin_page_for_is_served() -> None:
    """Without it each admin page logs a 404 in the browser's console."""
    status, headers, body = call("GET", "/favicon.ico")
    assert status == 200
    assert headers["Content-Type"] == "image/x-icon"
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


def test_segment_paths_take_the_api_chain() -> None:
    status, headers, body = call("POST", "/v1/track", b'{"event": "x"}')
    assert status == 401 and body.startswith(b'{"error"')
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert "X-Frame-Options" not in headers and "Set-Cookie" not in headers


@pytest.mark.django_db(transaction=True)  # (a request closes a connection in a transaction)
def test_a_parameterless_path_resolves_once_and_a_parameter_each_time() -> None:
    api = ApiHandler()
    for _ in range(2):
        assert call("GET", "/healthz", handler=api)[0] == 200
        assert call("GET", "/stats/7", handler=api)[0] == 404  # unknown source
    assert list(api._matches) == ["/healthz"]


@pytest.mark.django_db(transaction=True)
def test_an_api_request_closes_a_connection_past_its_age_without_the_signals() -> None:
    """What request_finished's receivers do, done once at close: a connection
    past CONN_MAX_AGE (or in error and unusable) is closed after the answer."""
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    sent: list[str] = []

    def started(**kwargs: Any) -> None:
        sent.append("started")

    assert call("GET", "/stats")[0] == 200
    assert connection.connection is None  # closed when the response was closed
    # Another receiver connected: the signals are sent again, every one.
    signals.request_started.connect(started)
    try:
        assert call("GET", "/healthz")[0] == 200
    finally:
        signals.request_started.disconnect(started)
    assert sent == ["started"]
    assert call("GET", "/healthz")[0] == 200
    assert sent == ["started"]
