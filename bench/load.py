"""Running wrk with one of the Lua scripts in bench/lua and reading its summary."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LUA", "WrkResult", "wrk_run"]

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class WrkResult:
    duration_s: float
    requests: int
    status_errors: int  # responses with a status >= 400
    socket_errors: int  # connect/read/write errors and timeouts
    events_per_request: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def ok_requests(self) -> int:
        return self.requests - self.status_errors

    @property
    def rps(self) -> float:
        return self.ok_requests / self.duration_s

    @property
    def events_per_s(self) -> float:
        return self.rps * self.events_per_request


def wrk_run(url: str, script: str, *, threads: int, connections: int, duration_s: int) -> WrkResult:
    """``wrk -tT -cC -dDs -s bench/lua/SCRIPT URL``, bounded in time."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (bench/run.sh installs it: apt-get install wrk)")
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / script),
        url,
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration_s + 60, check=True
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["errors"]
    lat = data["latency_us"]
    return WrkResult(
        duration_s=data["duration_us"] / 1e6,
        requests=data["requests"],
        status_errors=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        events_per_request=data["events_per_request"],
        p50_ms=lat["p50"] / 1000,
        p99_ms=lat["p99"] / 1000,
        mean_ms=lat["mean"] / 1000,
        max_ms=lat["max"] / 1000,
    )
