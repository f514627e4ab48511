"""CORS in a real browser (Debian's chromium) against a real ``serve``: a page
served from another local origin (another loopback port) posts with ``fetch``
(JSON and an X-Write-Key header, so a preflight) and with
``navigator.sendBeacon`` (text/plain, the key in the query); both are counted.
The same page from an origin the source does not allow: the browser blocks the
fetch at its preflight, the beacon goes out (no preflight for it) and the
server refuses it (403); nothing is counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.browser import ARTIFACTS, chromium, save_page_screenshot
from tests.support.databases import sqlite_pass_only
from tests.support.loopback import http_server
from tests.support.procs import Project, free_port, wait_until
from tests.support.prom import parse_exposition

pytestmark = [pytest.mark.e2e, sqlite_pass_only("CORS in a browser, not the database")]

SOURCE = 41

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title></head>
<body><h1>A page on %(origin)s</h1>
<p>Telemetron at %(api)s, source %(source)d</p>
<pre id="result">running</pre>
<script>
const API = %(api_json)s, KEY = %(key_json)s;
function ev(type) {
  return {sourceId: %(source)d, type: type, timestamp: new Date().toISOString()};
}
async function run() {
  const out = {};
  try {
    const r = await fetch(API + "/ingest", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Write-Key": KEY},
      body: JSON.stringify(ev("FetchFrom%(tag)s")),
    });
    out.fetch = r.status;
  } catch (e) {
    out.fetch = "blocked: " + e.message;
  }
  out.beacon = navigator.sendBeacon(
    API + "/ingest?key=" + encodeURIComponent(KEY), JSON.stringify(ev("BeaconFrom%(tag)s")));
  document.getElementById("result").textContent = JSON.stringify(out);
}
run();
</script></body></html>
"""


@contextmanager
def page_server(port: int, html_for: Any) -> Iterator[str]:
    """Serve one HTML page at / on 127.0.0.1:``port`` (an origin of its own)."""
    origin = f"http://127.0.0.1:{port}"
    body = html_for(origin).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler, port):
        yield origin


def _result(driver: WebDriver, origin: str) -> dict[str, Any]:
    driver.get(origin + "/")
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "result").text not in ("", "running")
    )
    return dict(json.loads(driver.find_element(By.ID, "result").text))


def _forbidden(url: str) -> float:
    return parse_exposition(httpx.get(f"{url}/metrics", timeout=30).text).value(
        "telemetron_events_rejected_total", reason="forbidden"
    )


def test_pages_post_from_an_allowed_origin_and_not_from_another(project: Project) -> None:
    allowed_port = free_port()
    allowed_origin = f"http://127.0.0.1:{allowed_port}"
    project.config["ingest"] = {**project.config["ingest"], "auth": "required"}
    out = project.manage(
        "sources", "create", str(SOURCE), "--name", "shop", "--origin", allowed_origin
    ).stdout
    key = next(w for w in out.split() if w.startswith("tlw_"))
    server = project.start()

    def html(tag: str) -> Any:
        return lambda origin: (
            PAGE
            % {
                "origin": origin,
                "api": server.url,
                "api_json": json.dumps(server.url),
                "key_json": json.dumps(key),
                "source": SOURCE,
                "tag": tag,
            }
        )

    def types() -> dict[str, int]:
        r = httpx.get(f"{server.url}/stats/{SOURCE}", timeout=30)
        return dict(r.json()["event_types"]) if r.status_code == 200 else {}

    with chromium() as driver:
        with page_server(allowed_port, html("Allowed")) as origin:
            result = _result(driver, origin)
            assert result == {"fetch": 202, "beacon": True}
            wait_until(lambda: types() == {"FetchFromAllowed": 1, "BeaconFromAllowed": 1})
            save_page_screenshot(driver, ARTIFACTS / "cors-allowed-origin.png")

        forbidden_before = _forbidden(server.url)
        with page_server(free_port(), html("Foreign")) as origin:
            result = _result(driver, origin)
            assert str(result["fetch"]).startswith("blocked")  # its preflight was refused
            assert result["beacon"] is True  # queued: a beacon needs no preflight
            # the beacon reached the server and was refused there (403)
            wait_until(lambda: _forbidden(server.url) == forbidden_before + 1)
            save_page_screenshot(driver, ARTIFACTS / "cors-foreign-origin.png")
    # nothing from the foreign page was counted (the cluster had the time to: the
    # allowed page's events were processed before it)
    assert types() == {"FetchFromAllowed": 1, "BeaconFromAllowed": 1}
    assert server.stop() == 0
