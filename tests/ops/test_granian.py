"""ops.granian: granian's command line with Django loaded before the fork. What
the main process holds is shared with the workers it forks, so it must hold no
database connection and no thread of ours, and must have imported what a
worker's first request would (the URLconf, the API)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ops.process_tree import granian_command

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, sys, threading
from ops.granian import preload
preload()
from django.db import connections
print(json.dumps({
    "connections": [a for a in connections if connections[a].connection is not None],
    "threads": threading.active_count(),
    "frozen": gc.get_freeze_count(),
    "imported": [m for m in ("telemetron_site.api", "ingest.api", "django.contrib.admin")
                 if m in sys.modules],
    "wsgi": "telemetron_site.wsgi" in sys.modules,
}))
"""


def test_preload_imports_the_urlconf_and_holds_no_connection_or_thread(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "TELEMETRON_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TELEMETRON_CONFIG": str(ROOT / "config.toml"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["connections"] == []
    assert seen["threads"] == 1
    assert seen["frozen"] > 10_000  # Django's and the project's objects, out of the collector's way
    assert seen["imported"] == ["telemetron_site.api", "ingest.api", "django.contrib.admin"]
    # Each worker imports the WSGI module itself (its die-with-parent signal is its own).
    assert seen["wsgi"] is False


def test_serve_runs_granian_through_the_preloading_launcher() -> None:
    cmd = granian_command(host="127.0.0.1", port=8000, workers=2, threads=4)
    assert cmd[:3] == [sys.executable, "-m", "ops.granian"]
    assert cmd[-1] == "telemetron_site.wsgi:application"
