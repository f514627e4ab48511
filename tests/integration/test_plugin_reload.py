"""Hot reload in a real `serve`: a change to the plugin rows reaches the running
web and worker processes within ``plugins.reload_interval`` (no restart), and a
change that fails to build never replaces the working chains."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import event
from tests.support.procs import Project, Server, wait_until

pytestmark = pytest.mark.integration

INTERVAL = 1.0
NOT_APPLIED = "plugin configuration change not applied"


def _status(client: httpx.Client, source_id: int) -> int:
    return client.post("/ingest", json=event(source_id=source_id)).status_code


def _pids(server: Server, logger: str, text: str = "") -> set[int]:
    pattern = re.compile(rf" \w+ {re.escape(logger)} (\d+): .*{re.escape(text)}")
    return {int(m.group(1)) for m in pattern.finditer(server.log())}


def _set_params(project: Project, name: str, params: str) -> None:
    """Write a row the way any other tool could (not through the admin's checks)."""
    project.manage(
        "shell",
        "-c",
        "from plugins.models import PluginConfig as P\n"
        f"row = P.objects.get(name={name!r})\nrow.params = {params}\nrow.save()",
    )


def test_running_serve_follows_changes_within_the_interval_but_never_a_broken_one(
    project: Project, tmp_path: Path
) -> None:
    record = tmp_path / "batches.jsonl"
    project.config["plugins"] = {"reload_interval": INTERVAL}
    project.config["queue"]["workers"] = 1  # one worker: it must reload, not load afresh
    project.extra_env["TELEMETRON_LOGGING__LEVELS"] = json.dumps(
        {"telemetron.request": "INFO", "telemetron.plugins": "INFO"}
    )
    server = project.start()
    with server.client() as client:
        assert _status(client, 3) == 202
        (web_pid,) = _pids(server, "telemetron.request")
        wait_until(lambda: client.get("/stats").json()["events_count"] == 1, timeout=30)

        # An operator's change, through `plugins sync --force` after editing
        # config.toml: the web process filters source 3 out without a restart ...
        project.config["validation.plugins.SourceIdValidator"] = {"allowed": [1, 2]}
        project.config["processing.plugins.RecordingProcessor"] = {"path": str(record)}
        project.manage("plugins", "sync", "--force")
        changed_at = time.monotonic()
        wait_until(lambda: _status(client, 3) == 400, timeout=INTERVAL + 30)
        print(f"web process followed the change after {time.monotonic() - changed_at:.2f} s")
        assert _status(client, 1) == 202

        # ... and the worker process, which ran a batch before, runs the newly
        # enabled processor. (Its check is made by a batch: one processed less than
        # the interval after its previous check still runs the old chain, so keep
        # sending until a batch shows the new one.)
        def recorded() -> bool:
            if record.exists() and record.read_text().strip():
                return True
            assert _status(client, 1) == 202  # one more batch for the worker to check with
            return False

        wait_until(recorded, timeout=30, interval=0.5)
        reloaded = _pids(server, "telemetron.plugins", "plugin configuration reloaded")
        assert web_pid in reloaded and len(reloaded) == 2, server.log()

        # A broken change (a list expected): every process that checks logs it
        # once and keeps its working chains.
        # (Checks are made by requests: each one sent while waiting must still
        # be judged by the working chain.)
        _set_params(project, "SourceIdValidator", "{'allowed': 'all of them'}")

        def broken_change_seen() -> bool:
            assert (_status(client, 3), _status(client, 1)) == (400, 202)
            return web_pid in _pids(server, "telemetron.plugins", NOT_APPLIED)

        wait_until(broken_change_seen, timeout=30)
        assert "allowed: Input should be a valid list" in server.log()
        assert (_status(client, 3), _status(client, 1)) == (400, 202)

        # A valid change afterwards goes live again.
        _set_params(project, "SourceIdValidator", "{'allowed': [3]}")
        wait_until(lambda: _status(client, 1) == 400, timeout=INTERVAL + 30)
        assert _status(client, 3) == 202
    assert server.stop() == 0
