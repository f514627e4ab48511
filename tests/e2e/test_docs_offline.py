"""``/docs`` and the static files from the installed packages only, against a
real ``serve``: Swagger UI renders in a real browser (Debian's chromium) whose
resolver finds no host but the server's address, so a page that needed a CDN
would stay blank; whitenoise serves the files gzip-compressed, hashed names
cached for a year; a fresh serve's /metrics holds every known series at zero.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.browser import ARTIFACTS, chromium, save_page_screenshot
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project
from tests.support.prom import parse_exposition

pytestmark = [
    pytest.mark.e2e,
    sqlite_pass_only("docs, static files, metric names: no database"),
]

# Every name resolves to nothing except the server's own address.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
IMMUTABLE = "max-age=315360000, public, immutable"


def _requested_urls(driver: Any) -> list[str]:
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [str(url) for url in entries]


def test_docs_render_swagger_ui_with_every_other_host_unreachable(project: Project) -> None:
    server = project.start()
    with chromium(extra_args=[OFFLINE]) as driver:
        # The rule is in force: a name other than the server's resolves to nothing.
        with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
            driver.get("http://example.com/")

        driver.get(f"{server.url}/docs")
        WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
        )
        assert driver.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("Telemetron")
        operations = {
            el.text.replace("\n", " ")
            for el in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        }
        assert operations >= {"/ingest", "/ingest/batch", "/stats", "/stats/{source_id}"}
        # Swagger UI's own style is applied (its CSS came from the server).
        topbar_font = driver.execute_script(
            "return getComputedStyle(document.querySelector('.swagger-ui .info .title')).fontFamily"
        )
        assert "sans-serif" in topbar_font

        # One operation opened: its schema, drawn from /openapi.json.
        driver.find_element(By.CSS_SELECTOR, "#operations-ingest-ingest_api_ingest button").click()
        WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock-body"))
        )
        assert "sourceId" in driver.find_element(By.CSS_SELECTOR, ".opblock-body").text
        save_page_screenshot(driver, ARTIFACTS / "docs-offline.png")

        urls = _requested_urls(driver)
        assert urls, "the page loaded no resource"
        assert all(url.startswith(server.url) for url in urls), urls


def test_static_files_compressed_and_cached(project: Project) -> None:
    server = project.start()
    with server.client() as client:
        page = client.get("/docs").text
        hashed = re.findall(r'src="(/static/ninja/swagger-ui-bundle\.[0-9a-f]{12}\.js)"', page)
        assert hashed, page
        response = client.get(hashed[0], headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["cache-control"] == IMMUTABLE
        assert "SwaggerUIBundle" in response.text  # httpx decompressed it
        compressed = int(response.headers["content-length"])
        plain = client.get(hashed[0], headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert compressed < int(plain.headers["content-length"]) / 2

        # The admin's files too, under their hashed names.
        login = client.get("/admin/login/").text
        css = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login)
        assert css, login
        assert client.get(css[0]).headers["cache-control"] == IMMUTABLE
        # A name that is not collected is a 404, not a Django page.
        assert client.get("/static/nothing-here.js").status_code == 404


def test_fresh_serve_exports_every_known_series_at_zero(project: Project) -> None:
    project.config["processing.plugins.ArchiveProcessor"] = {}
    server = project.start()
    metrics = parse_exposition(httpx.get(f"{server.url}/metrics").text)

    def at_zero(name: str, **labels: str) -> bool:
        return metrics.has(name, **labels) and metrics.value(name, **labels) == 0

    for plugin in ("StorageProcessor", "ArchiveProcessor"):  # each enabled processor
        assert at_zero("telemetron_processor_plugin_errors_total", plugin=plugin)
        for status in ("success", "error"):
            assert at_zero(
                "telemetron_processor_plugin_duration_seconds_count", plugin=plugin, status=status
            )
    assert not metrics.has("telemetron_processor_plugin_errors_total", plugin="WebhookProcessor")
    for reason in ("invalid", "forbidden", "rate_limited", "too_large", "unauthorized"):
        assert at_zero("telemetron_events_rejected_total", reason=reason)
    for validator in ("SourceIdValidator", "EventTypeValidator"):  # each enabled validator
        assert at_zero("telemetron_events_rejected_total", reason=validator)
    for endpoint in ("/ingest", "/ingest/batch", "/stats", "/stats/{source_id}", "/docs"):
        assert at_zero("telemetron_http_requests_total", endpoint=endpoint)
        for status_class in ("2xx", "4xx", "5xx"):
            assert at_zero(
                "telemetron_http_requests_duration_seconds_count",
                endpoint=endpoint,
                status=status_class,
            )
    assert at_zero(
        "telemetron_http_requests_duration_seconds_count", endpoint="/healthz", status="5xx"
    )
    assert at_zero("telemetron_events_accepted_total")
    assert at_zero("telemetron_events_processed_total")
