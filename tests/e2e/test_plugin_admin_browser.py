"""The plugins page in a real browser against a real `serve`: an operator logs
in, enables SourceIdValidator with allowed = [1, 2], and the running service
follows within the reload interval; then disables it again."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import event
from tests.support.browser import ARTIFACTS, admin_login, chromium, save_page_screenshot
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, wait_until

pytestmark = [pytest.mark.e2e, sqlite_pass_only("the admin in a browser, not the database")]

INTERVAL = 1.0
PASSWORD = "e2e-admin-password"
PAGE = "/admin/plugins/pluginconfig/"


def _status(client: httpx.Client, source_id: int) -> int:
    return client.post("/ingest", json=event(source_id=source_id)).status_code


def _save(driver: WebDriver) -> str:
    """Press Save, wait for the next page, and return its message."""
    button = driver.find_element(By.NAME, "_save")
    button.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(button))
    return str(driver.find_element(By.CSS_SELECTOR, ".messagelist").text)


def _row(driver: WebDriver, name: str) -> WebElement:
    link = driver.find_element(By.LINK_TEXT, name)
    return link.find_element(By.XPATH, "./ancestor::tr")


def test_operator_enables_and_disables_a_validator_in_the_admin(project: Project) -> None:
    # SourceIdValidator is installed but not in config.toml: listed, disabled.
    del project.config["validation.plugins.SourceIdValidator"]
    project.config["plugins"] = {"reload_interval": INTERVAL}
    project.extra_env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    project.manage(
        "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com"
    )
    server = project.start()

    with chromium() as driver, server.client() as client:
        assert _status(client, 3) == 202
        admin_login(driver, server.url, "ops", PASSWORD, next=PAGE)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Select plugin to change"
        row = _row(driver, "SourceIdValidator")
        checkbox = row.find_element(By.CSS_SELECTOR, "input[name$='-enabled']")
        assert not checkbox.is_selected()

        # The change form: the parameters are drawn from the plugin's schema.
        driver.find_element(By.LINK_TEXT, "SourceIdValidator").click()
        add = driver.find_element(By.CSS_SELECTOR, "#id_params_jsonform .rjf-add-button")
        add.click()
        add.click()
        items = driver.find_elements(By.CSS_SELECTOR, "#id_params_jsonform input[type=number]")
        assert len(items) == 2
        items[0].send_keys("1")
        items[1].send_keys("2")
        driver.find_element(By.ID, "id_enabled").click()
        assert "was changed successfully" in _save(driver)

        # The running service follows without a restart.
        wait_until(lambda: _status(client, 3) == 400, timeout=INTERVAL + 30)
        assert _status(client, 1) == 202
        rejected = client.post("/ingest", json=event(source_id=3)).json()
        assert rejected["error"] == "Disallowed source_id: 3"

        row = _row(driver, "SourceIdValidator")
        assert row.find_element(By.CSS_SELECTOR, "input[name$='-enabled']").is_selected()
        assert '{"allowed": [1, 2]}' in row.text
        save_page_screenshot(driver, ARTIFACTS / "plugins-page.png")

        # Disable it from the list (the enabled column is editable there).
        row.find_element(By.CSS_SELECTOR, "input[name$='-enabled']").click()
        assert "was changed successfully" in _save(driver)
        wait_until(lambda: _status(client, 3) == 202, timeout=INTERVAL + 30)

        # Both changes are in the admin's history: who, when, what.
        driver.find_element(By.LINK_TEXT, "SourceIdValidator").click()
        driver.find_element(By.LINK_TEXT, "HISTORY").click()
        history = driver.find_element(By.ID, "change-history").text
        assert 'params: {"allowed": []} -> {"allowed": [1, 2]}' in history
        assert "enabled: True -> False" in history
        assert history.count("ops") >= 2
    assert server.stop() == 0
