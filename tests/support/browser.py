"""A real browser for end-to-end tests: Debian's Chromium and ChromeDriver
(scripts/ensure-services.sh installs them), driven by selenium, headless, with
a throwaway profile and no background traffic (this machine has no network)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

__all__ = ["ARTIFACTS", "admin_login", "chromium", "console_errors", "save_page_screenshot"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "e2e" / "artifacts"


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[WebDriver]:
    """A headless chromium; ``extra_args``: more command-line switches (e.g.
    ``--host-resolver-rules``)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise AssertionError(f"{path} is missing: run `make services` (Debian's chromium)")
    profile = tempfile.mkdtemp(prefix="telemetron-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1600,1100",
        *extra_args,
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for console_errors
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: WebDriver) -> list[str]:
    """The errors and warnings the page's console got since the last call (a
    failed resource load, an uncaught exception, ``console.error``)."""
    return [
        f"{entry['level']}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
    ]


def admin_login(driver: WebDriver, base_url: str, username: str, password: str, next: str) -> None:
    """Log in through the admin's login form, then land on ``next``."""
    driver.get(f"{base_url}/admin/login/?next={next}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit = driver.find_element(By.CSS_SELECTOR, "input[type=submit]")
    submit.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(submit))


def save_page_screenshot(driver: WebDriver, path: Path) -> None:
    """A PNG of the whole page (the window grown to the page's height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    page_height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, max(height, page_height + 150))
    driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
