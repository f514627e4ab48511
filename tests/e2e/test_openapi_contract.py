"""The OpenAPI document against the real server: schemathesis (its own CLI, every
check, every phase: the examples, boundary coverage, fuzzing, stateful runs over
the document's links) runs against a real ``manage.py serve`` over HTTP and
finds no failure: every body the document holds valid is taken, every one it
does not is refused, every answer has a declared status, headers and shape.

Bounded: at most ``EXAMPLES`` cases per operation and phase and ``MAX_TIME`` s in
all. The seed is fixed so that a run is repeatable (``TELEMETRON_SCHEMATHESIS_SEED``
runs another one); schemathesis prints a ``curl`` line for each failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.procs import Project, wait_until

pytestmark = pytest.mark.e2e

EXAMPLES = 40
MAX_TIME = 90
SEED = int(os.environ.get("TELEMETRON_SCHEMATHESIS_SEED", "2"))
# negative_data_rejection: the refusals the server answers for a schema-violating
# request, schemathesis' defaults plus 413 (more than ingest.max_batch_events
# events: the documented answer to a batch over maxItems).
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415",
                     "422", "428", "429", "5xx"]
"""


def _schemathesis(workdir: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(cli), "--config-file", str(config), "--no-color", "run", url, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 120,
    )


def test_schemathesis_finds_no_difference_between_the_document_and_the_server(
    project: Project,
) -> None:
    server = project.start()
    spec = httpx.get(f"{server.url}/openapi.json").json()
    batch = spec["paths"]["/ingest/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["minItems"] == 1
    assert batch["schema"]["maxItems"] == 1000  # ingest.max_batch_events

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
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # It tested every operation, and the server took events (not refusals only).
    assert "4 selected / 4 total" in out, out
    assert "No issues found" in out or " passed" in out, out
    wait_until(lambda: httpx.get(f"{server.url}/stats").json()["events_count"] > 0, timeout=30)
