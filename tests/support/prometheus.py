"""A real Prometheus (Debian's ``prometheus`` package) for end-to-end tests:
its own config, storage and loopback port; scrapes the given targets every
second; queried through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import free_port, wait_answering

__all__ = ["Prometheus", "prometheus_server", "tool"]


def tool(name: str) -> str:
    """Path of ``prometheus`` or ``promtool``; fail (not skip) when missing."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"{name} not found: install Debian's `prometheus` package "
            "(scripts/ensure-services.sh, run by `make test`, does)"
        )
    return path


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float | None:
        """The value of a query returning at most one sample (None when none)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def rules(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/rules", timeout=10)
        response.raise_for_status()
        return [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def prometheus_server(
    workdir: Path,
    targets: Sequence[str],
    *,
    rule_files: Sequence[Path] = (),
    bearer_token: str | None = None,
    anonymous_job: bool = False,
) -> Iterator[Prometheus]:
    """Run Prometheus scraping ``targets`` (host:port, path /metrics) as job
    ``telemetron`` every second (sending ``bearer_token`` with
    ``authorization``, when given; with ``anonymous_job``, a second job
    ``anonymous`` scrapes the same targets without it); stop it afterwards."""
    binary = tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    quoted = ", ".join(f'"{t}"' for t in targets)
    rules = "".join(f'\n  - "{path}"' for path in rule_files)
    job = f"    metrics_path: /metrics\n    static_configs:\n      - targets: [{quoted}]\n"
    auth = (
        f'    authorization:\n      type: Bearer\n      credentials: "{bearer_token}"\n'
        if bearer_token
        else ""
    )
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:{rules}\n" if rule_files else "")
        + "scrape_configs:\n  - job_name: telemetron\n"
        + job
        + auth
        + ("  - job_name: anonymous\n" + job if anonymous_job else "")
    )
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)

    try:
        wait_answering(process, f"{server.url}/-/ready", server.log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
