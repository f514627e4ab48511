"""The README's browser snippet for the Segment API ("Using existing SDKs"), as
written there, in a real browser (Debian's chromium) on a page of an origin
its source allows, against a real ``serve``: its ``fetch`` to /v1/track is
answered ``200 {"success": true}`` (readable: CORS), the ``sendBeacon`` on
``pagehide`` arrives too, and /stats counts each once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.test_sources_browser import page_server
from tests.support.browser import ARTIFACTS, chromium, save_page_screenshot
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, free_port, wait_until

pytestmark = [pytest.mark.e2e, sqlite_pass_only("a browser page, not the database")]

SOURCE = 43
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    section = README.read_text().split("## Using existing SDKs", 1)[1].split("\n## ", 1)[0]
    [html] = re.findall(r"```html\n(.*?)```", section, re.S)
    return html


def test_the_readme_snippet_sends_from_a_page(project: Project) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    out = project.manage(
        "sources", "create", str(SOURCE), "--name", "site", "--origin", origin
    ).stdout
    key = next(w for w in out.split() if w.startswith("tlw_"))
    server = project.start()
    snippet = readme_snippet()
    assert '"https://telemetry.example.com"' in snippet and '"tlw_…"' in snippet
    snippet = snippet.replace('"https://telemetry.example.com"', json.dumps(server.url))
    snippet = snippet.replace('"tlw_…"', json.dumps(key))
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>site</title></head><body>'
        '<h1>A page with the README snippet</h1><pre id="result">running</pre>'
        + snippet
        + "<script>track('Clicked', {button: 'buy'}).then(async r => {"
        " document.getElementById('result').textContent ="
        " JSON.stringify({status: r.status, body: await r.json()}); },"
        " e => { document.getElementById('result').textContent = 'failed: ' + e; });"
        "</script></body></html>"
    )

    def types() -> dict[str, int]:
        r = httpx.get(f"{server.url}/stats/{SOURCE}", timeout=30)
        return dict(r.json()["event_types"]) if r.status_code == 200 else {}

    with chromium() as driver, page_server(port, lambda _: page):
        driver.get(origin + "/")
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "result").text not in ("", "running")
        )
        result = driver.find_element(By.ID, "result").text
        assert json.loads(result) == {"status": 200, "body": {"success": True}}, result
        save_page_screenshot(driver, ARTIFACTS / "segment-snippet.png")
        driver.get("about:blank")  # pagehide: the beacon
        wait_until(lambda: types() == {"Viewed": 1, "Clicked": 1, "Left": 1}, timeout=60)
    assert server.stop() == 0
