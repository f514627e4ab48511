"""The JsonSchemaValidator in a real `serve`: a schema changed while it runs is
compiled and used within ``plugins.reload_interval``, without a restart; a change
to a schema that is not valid never replaces the working one."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import event
from tests.support.procs import Project, wait_until

pytestmark = pytest.mark.integration

INTERVAL = 1.0


def _schema(minimum: int) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"price": {"type": "number", "minimum": minimum}},
        "required": ["price"],
    }


def _post(client: httpx.Client, price: float) -> httpx.Response:
    return client.post("/ingest", json=event(source_id=1, type="purchase", data={"price": price}))


def test_a_changed_schema_is_used_by_the_running_serve_and_a_broken_one_is_not(
    project: Project,
) -> None:
    project.config["plugins"] = {"reload_interval": INTERVAL}
    project.config["validation.plugins.JsonSchemaValidator"] = {
        "schemas": {"purchase": _schema(0)},
        "unknown_types": "allow",
    }
    project.extra_env["TELEMETRON_LOGGING__LEVELS"] = json.dumps({"telemetron.plugins": "INFO"})
    server = project.start()
    with server.client() as client:
        refused = _post(client, -5)
        assert refused.status_code == 400
        assert refused.json()["error"] == "data.price: -5 is less than the minimum of 0"
        assert _post(client, 5).status_code == 202

        # The operator lowers the minimum (config.toml, then `plugins sync --force`).
        project.config["validation.plugins.JsonSchemaValidator"]["schemas"] = {
            "purchase": _schema(-10)
        }
        project.manage("plugins", "sync", "--force")
        changed_at = time.monotonic()
        wait_until(lambda: _post(client, -5).status_code == 202, timeout=INTERVAL + 30)
        print(f"new schema in use after {time.monotonic() - changed_at:.2f} s")
        assert _post(client, -11).json()["error"] == (
            "data.price: -11 is less than the minimum of -10"
        )

        # A schema that is not one, written past the checks (by hand in the
        # database): logged, and the working schema stays.
        project.manage(
            "shell",
            "-c",
            "from plugins.models import PluginConfig as P\n"
            "row = P.objects.get(name='JsonSchemaValidator')\n"
            "row.params = {**row.params, 'schemas': {'purchase': '{\"minimum\": \"low\"}'}}\n"
            "row.save()",
        )

        # (Checks are made by the traffic itself: each request sent while waiting
        # must still be judged by the working schema.)
        def broken_change_seen() -> bool:
            assert (_post(client, -5).status_code, _post(client, -11).status_code) == (202, 400)
            return "plugin configuration change not applied" in server.log()

        wait_until(broken_change_seen, timeout=30)
        assert "not a valid JSON Schema (draft 2020-12)" in server.log()
        assert _post(client, -5).status_code == 202
        assert _post(client, -11).status_code == 400
    assert server.stop() == 0
