"""A third-party plugin package (examples/telemetron-example-validator) added
with `pip install` and no change to Telemetron: new processes discover it
through the entry-point group; it shows in `plugins list` and the admin, and
works once enabled."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import event
from tests.support.procs import ROOT, Project

pytestmark = pytest.mark.integration

PACKAGE = ROOT / "examples" / "telemetron-example-validator"
DIST = "telemetron-example-validator"
PASSWORD = "example-admin-password"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def example_installed() -> Iterator[None]:
    """Install the package into the test virtualenv (editable, built offline), and
    uninstall it afterwards unless it was there before. Only processes started
    after the install see it; the test process itself never loads it."""
    was_installed = _pip("show", "-q", DIST).returncode == 0
    if not was_installed:
        done = _pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(PACKAGE))
        assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        if not was_installed:
            _pip("uninstall", "-q", "-y", DIST)


def _admin_page(base_url: str, username: str, path: str) -> str:
    """Log in through the admin's form (CSRF and all) and fetch ``path``."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token is not None
        done = client.post(
            "/admin/login/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": PASSWORD,
                "next": path,
            },
            follow_redirects=True,
        )
        assert done.status_code == 200 and done.url.path == path, done.text[:500]
        return done.text


def test_installed_package_appears_in_plugins_list(
    example_installed: None, project: Project
) -> None:
    listed = json.loads(project.manage("plugins", "list", "--json").stdout)
    (entry,) = [e for e in listed if e["name"] == "TypePrefixValidator"]
    assert entry == {
        "kind": "validator",
        "name": "TypePrefixValidator",
        "package": DIST,
        "version": "1.0.0",
        "configured": False,
        "enabled": False,
        "position": None,
        "source": "",
        "error": "",
    }
    table = project.manage("plugins", "list").stdout
    assert re.search(rf"TypePrefixValidator\s+validator\s+no row\s+{DIST}\s+1\.0\.0\s+-", table)


def test_installed_package_is_in_the_admin_and_runs_when_enabled(
    example_installed: None, project: Project
) -> None:
    project.config["validation.plugins.TypePrefixValidator"] = {"prefixes": ["app."]}
    project.extra_env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    project.manage("createsuperuser", "--noinput", "--username", "ops", "--email", "o@example.com")
    server = project.start()

    page = _admin_page(server.url, "ops", "/admin/plugins/pluginconfig/")
    row = page.split(">TypePrefixValidator</a>", 1)[1].split("</tr>", 1)[0]
    assert f"{DIST} 1.0.0" in row
    assert 'name="form-0-enabled"' in page

    with server.client() as client:
        assert client.post("/ingest", json=event(type="app.start")).status_code == 202
        rejected = client.post("/ingest", json=event(type="Heartbeat"))
        assert rejected.status_code == 400
        assert rejected.json()["error"] == "Event type 'Heartbeat' has none of the allowed prefixes"
    assert server.stop() == 0
