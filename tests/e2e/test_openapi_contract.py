"""The OpenAPI document against the real server: schemathesis (its own CLI, every
check with its default expectations, every phase: the examples, boundary
coverage, fuzzing, stateful runs over the document's links) runs on every
operation of the document (/ingest*, /v1/*, /stats*, /healthz, /readyz,
/metrics) against a real ``manage.py serve`` over HTTP and finds no failure:
every body the document holds valid is taken, every one it does not is refused,
every answer has a declared status, headers and shape.

Twice: with ``ingest.auth = "off"``, and with write keys and read tokens required
(the document then declares its security schemes; schemathesis sends a source's
key and read tokens by scheme, and checks that a request without them is
refused). The /v1/* operations always take a write key (it names the source): a
source's key is given on both runs. Bounded: at most ``EXAMPLES`` cases per
operation and phase and ``MAX_TIME`` s a run. The seed is fixed so that a run is
repeatable; ``TELEMETRON_SCHEMATHESIS_SEED``, ``_MAX_TIME`` and ``_EXAMPLES`` run
another, longer one. schemathesis prints a ``curl`` line for each failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, wait_until
from tests.support.prom import parse_exposition

pytestmark = [
    pytest.mark.e2e,
    sqlite_pass_only("the OpenAPI document: no database"),
]

EXAMPLES = int(os.environ.get("TELEMETRON_SCHEMATHESIS_EXAMPLES", "40"))
MAX_TIME = int(os.environ.get("TELEMETRON_SCHEMATHESIS_MAX_TIME", "30"))
SEED = int(os.environ.get("TELEMETRON_SCHEMATHESIS_SEED", "2"))


SERIES = "telemetron_http_requests_duration_seconds_count"
SECRET = re.compile(r"tl[wr]_[A-Za-z0-9_-]{40}")


def _schemathesis(
    workdir: Path, url: str, *args: str, auth: str = ""
) -> subprocess.CompletedProcess[str]:
    config = workdir / "schemathesis.toml"
    config.write_text(auth)
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(cli), "--config-file", str(config), "--no-color", "run", url, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=MAX_TIME * 2 + 120,
    )


def _credentials(project: Project, access: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A source's write key (as X-Write-Key: the /v1/* operations always take
    one) and, with ``access = "keys"``, read tokens of scopes stats and metrics,
    as schemathesis' auth configuration by security scheme; and the read
    tokens' headers by scope."""
    [key] = SECRET.findall(project.manage("sources", "create", "1", "--name", "shop").stdout)
    auth = f'[auth.openapi.writeKeyHeader]\napi_key = "{key}"\n'
    if access == "open":
        return auth, {"stats": {}, "metrics": {}}
    project.config["ingest"] = {**project.config["ingest"], "auth": "required"}
    project.config["security"] = {"read_auth": "token"}
    tokens: dict[str, str] = {}
    for scope in ("stats", "metrics"):
        created = project.manage("tokens", "create", scope, "--scope", scope).stdout
        [tokens[scope]] = SECRET.findall(created)
    auth += (
        f'[auth.openapi.readToken]\nbearer = "{tokens["stats"]}"\n'
        f'[auth.openapi.metricsToken]\nbearer = "{tokens["metrics"]}"\n'
    )
    return auth, {scope: {"Authorization": f"Bearer {t}"} for scope, t in tokens.items()}


@pytest.mark.parametrize("access", ["open", "keys"])
def test_schemathesis_finds_no_difference_between_the_document_and_the_server(
    project: Project, access: str
) -> None:
    auth, read = _credentials(project, access)
    server = project.start()
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operations = [f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops]
    batch = spec["paths"]["/ingest/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["minItems"] == 1
    # Over ingest.max_batch_events is a 413 (README, "The HTTP API"), not a body the schema refuses.
    assert "maxItems" not in batch["requestBody"]["content"]["application/json"]["schema"]
    assert "1000" in batch["responses"]["413"]["description"]
    assert bool(batch.get("security")) == (access == "keys")
    assert spec["paths"]["/v1/track"]["post"]["security"]  # a key always: it names the source

    result = _schemathesis(
        project.workdir,
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        auth=auth,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # It tested every operation, and the server took events (not refusals only).
    assert len(operations) == 14, operations
    assert f"{len(operations)} selected / {len(operations)} total" in out, out
    assert "No issues found" in out or " passed" in out, out
    print(*re.findall(r"^ *\d+ generated.*$", out, re.MULTILINE))  # (-rP shows the count)

    # Every operation answered some request with a success, not refusals only
    # (/stats/{source_id}: the stateful phase asks for the sources it sent).
    scraped = httpx.get(f"{server.url}/metrics", headers=read["metrics"])
    metrics = parse_exposition(scraped.text)
    never = [
        path for path in spec["paths"] if not metrics.value(SERIES, endpoint=path, status="2xx")
    ]
    assert not never, never

    def events_counted() -> int:
        stats = httpx.get(f"{server.url}/stats", headers=read["stats"])
        return int(stats.json()["events_count"])

    wait_until(lambda: events_counted() > 0, timeout=30)
