"""The operator's console in a real browser (Debian's chromium) against a real
``serve`` with its worker cluster: an operator logs in and lands on the
dashboard, whose numbers equal ``GET /stats`` after events were ingested, whose
per-minute chart is drawn (its lines total the events, both visible, with a
legend), and whose pending dead letter links to its entry; the sources list finds
a source by name, and the source's page draws its counts by type; the lists fit
1400 and 1024 px windows. Screenshots of each page go to tests/e2e/artifacts/."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import event
from tests.support.browser import ARTIFACTS, admin_login, chromium, save_page_screenshot
from tests.support.procs import Project, wait_until
from tests.support.prom import parse_exposition

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-console-password"
FAILURE = "the dashboard's test failure"
SHOP, OTHER = 7, 9


def _ingest(client: httpx.Client) -> int:
    batch = [event(SHOP, "Click") for _ in range(4)] + [event(SHOP), event(OTHER, "View")]
    assert client.post("/ingest/batch", json=batch).status_code == 202
    for source_id in (SHOP, OTHER, OTHER):
        assert client.post("/ingest", json=event(source_id)).status_code == 202
    return len(batch) + 3


def _pending_dead_letters(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return parse_exposition(text).value("telemetron_dead_letters", status="pending")


def _number(driver: WebDriver, element_id: str) -> int:
    return int(driver.find_element(By.ID, element_id).text.replace(",", ""))


def _dashboard_shows(driver: WebDriver, url: str, events: int) -> bool:
    """Reload until the last of the events is processed (its batch merged)."""
    driver.get(f"{url}/admin/")
    return _number(driver, "counted-hour") == events


def _go(driver: WebDriver, element: Any) -> None:
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))


LISTS = {
    "sources": "/admin/sources/source/",
    "plugins": "/admin/plugins/pluginconfig/",
    "dead-letters": "/admin/processing/deadletter/",
}
# The width of the list's table beyond its box (clipped, to be scrolled to), and of
# the page beyond the window.
OVERFLOW = (
    "const box = document.querySelector('#changelist-form .results');"
    "return [box.scrollWidth - box.clientWidth,"
    " Math.max(0, document.documentElement.scrollWidth - window.innerWidth)];"
)


def _lists_fit_the_window(driver: WebDriver, url: str) -> None:
    """At 1400 x 900 and 1024 x 768 no list clips its right columns (the issue's
    sources, plugins and dead-letter lists did at 1400 px); screenshots of each."""
    for width, height in ((1400, 900), (1024, 768)):
        driver.set_window_size(width, height)
        for name, path in LISTS.items():
            driver.get(f"{url}{path}")
            assert driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), name
            assert driver.execute_script(OVERFLOW) == [0, 0], f"{name} at {width} px"
            driver.save_screenshot(str(ARTIFACTS / f"console-{name}-{width}.png"))


def test_an_operator_reads_the_dashboard_and_finds_a_source(project: Project) -> None:
    project.config["processing.plugins.FailingProcessor"] = {"message": FAILURE}
    project.extra_env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    project.manage(
        "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com"
    )
    project.manage("sources", "create", str(SHOP), "--name", "dashboard-shop")
    server = project.start()

    with server.client() as client, chromium() as driver:
        events = _ingest(client)
        # Every batch dead-letters in FailingProcessor; StorageProcessor counted it.
        wait_until(lambda: client.get("/stats").json()["events_count"] == events, timeout=60)
        wait_until(lambda: _pending_dead_letters(client) >= 1, timeout=60)
        summary = client.get("/stats").json()

        admin_login(driver, server.url, "ops", PASSWORD, next="/admin/")
        wait_until(lambda: _dashboard_shows(driver, server.url, events), timeout=60)
        assert _number(driver, "events-count") == summary["events_count"] == events
        assert _number(driver, "sources-count") == summary["sources_count"] == 2

        chart = driver.find_element(By.ID, "chart-hour")
        assert chart.is_displayed() and chart.size["width"] > 300 and chart.size["height"] > 100
        lines = chart.find_elements(By.CSS_SELECTOR, "polyline.series")
        assert [(p.get_attribute("data-label"), p.get_attribute("data-total")) for p in lines] == [
            ("counted", str(events)),
            ("received", str(events)),  # drawn last: on top of the other, never under it
        ]
        assert all(p.size["width"] > 0 for p in lines)  # drawn, not just in the markup
        legend = chart.find_elements(By.CSS_SELECTOR, "g.legend")
        assert [g.get_attribute("data-label") for g in legend] == ["counted", "received"]
        assert all(g.is_displayed() and g.text for g in legend)
        assert driver.find_element(By.ID, "chart-day").is_displayed()
        clusters = driver.find_element(By.ID, "clusters").text
        assert "2" in clusters and "s ago" in clusters  # the two workers, a heartbeat
        top = driver.find_element(By.ID, "top-sources").text
        assert "dashboard-shop" in top
        save_page_screenshot(driver, ARTIFACTS / "console-dashboard.png")

        # The pending dead letter, by plugin, links to its list.
        link = driver.find_element(By.CSS_SELECTOR, "#dead-letters a")
        assert link.text == "FailingProcessor"
        _go(driver, link)
        assert "/admin/processing/deadletter/" in driver.current_url
        assert FAILURE in driver.find_element(By.ID, "result_list").text
        save_page_screenshot(driver, ARTIFACTS / "console-dead-letters.png")

        # The sources list finds the source by a part of its name.
        driver.get(f"{server.url}/admin/sources/source/")
        search = driver.find_element(By.ID, "searchbar")
        search.send_keys("shop")
        search.send_keys(Keys.ENTER)
        WebDriverWait(driver, 30).until(expected_conditions.staleness_of(search))
        rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 1
        assert "dashboard-shop" in rows[0].text
        assert rows[0].find_element(By.CSS_SELECTOR, ".field-total_events").text == "6"
        save_page_screenshot(driver, ARTIFACTS / "console-sources.png")

        # Its page: the counts by type drawn, its write key listed.
        _go(driver, rows[0].find_element(By.LINK_TEXT, str(SHOP)))
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart-types rect.bar")
        assert {b.get_attribute("data-label"): b.get_attribute("data-value") for b in bars} == {
            "Click": "4",
            "Heartbeat": "2",
        }
        assert all(b.size["width"] > 0 for b in bars)
        assert "tlw_" in driver.find_element(By.ID, "keys-group").text
        save_page_screenshot(driver, ARTIFACTS / "console-source.png")
        _lists_fit_the_window(driver, server.url)
    assert server.stop() == 0
