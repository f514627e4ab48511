"""What a process of the tree loads at start-up: the libraries only a configured
transformer or webhook uses (CEL, MaxMind, ua-parser, CrawlerDetect, httpx; ~8 MB
of memory in each process) are imported by their first use, not by loading the
plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ON_USE = ("cel_expr_python", "maxminddb", "ua_parser", "crawlerdetect", "httpx")

SCRIPT = f"""
import sys
import django
django.setup()
import telemetron_site.wsgi  # the web process' application, URLs and API
from plugins.registry import get_registry
registry = get_registry()  # every built-in plugin class
from ingest.transformers.client_context import ClientContext
from ingest.transformers.cel_rules import cel_compile
from webhooks.processors import WebhookProcessor
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({ON_USE!r})))
cel_compile("event.type == 'x'")  # a rule compiled: CEL loaded now
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({ON_USE!r})))
"""


def test_transformer_and_webhook_libraries_load_on_first_use(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRON_")}
    env["DJANGO_SETTINGS_MODULE"] = "telemetron_site.settings"
    env["TELEMETRON_CONFIG"] = str(REPO / "config.toml")
    env["TELEMETRON_DATABASE__URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = done.stdout.splitlines()[-2:]
    assert before == "[]"
    assert after == "['cel_expr_python']"
