"""Starting and stopping the servers under test, all on loopback: Telemetron's
real ``manage.py serve`` on a fresh database, and the two floors on the same
granian WSGI set-up."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ops.process_tree import granian_command

__all__ = ["REPO", "Server", "free_port", "granian_cmd", "start_floor", "start_telemetron"]

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_ready(self, method: str, path: str, body: bytes | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode}; log: {self.log_path}"
                )
            try:
                status, _ = self.request(method, path, body)
                if status < 300:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s; log: {self.log_path}")

    def stop(self, timeout_s: float = 90.0) -> int:
        """SIGTERM, wait; SIGKILL the process group if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._log.close()
        return code


def _spawn(
    name: str, cmd: list[str], env: dict[str, str], port: int, workdir: Path, cwd: Path = REPO
) -> Server:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Server(name=name, port=port, proc=proc, log_path=log_path, _log=log)


def granian_cmd(target: str, port: int, workers: int, threads: int) -> list[str]:
    """The granian command ``manage.py serve`` uses, serving ``target``."""
    return granian_command(
        host=HOST, port=port, workers=workers, threads=threads, target=target, log_level="error"
    )


def start_floor(name: str, target: str, *, workers: int, threads: int, workdir: Path) -> Server:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.floors.ninja_floor.settings"}
    server = _spawn(name, granian_cmd(target, port, workers, threads), env, port, workdir)
    server.wait_ready("POST", "/ingest", b"{}", timeout_s=60)
    return server


def telemetron_env(workdir: Path, overrides: dict[str, str], tree: Path = REPO) -> dict[str, str]:
    """The embedded default (the tree's config.toml) on a fresh SQLite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRON_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # The tree's own packages before the virtualenv's editable install of this one.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    env["TELEMETRON_CONFIG"] = str(tree / "config.toml")
    env["TELEMETRON_DATABASE__URL"] = f"sqlite:///{workdir / 'telemetron.sqlite3'}"
    env.update(overrides)
    return env


def _switch_interval_hook(workdir: Path, seconds: float) -> str:
    """A sitecustomize that sets the GIL switch interval in every process of the
    tree (an experiment: Python's default is 5 ms)."""
    hook = workdir / "switch-interval-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(f"import sys\nsys.setswitchinterval({seconds!r})\n")
    return str(hook)


def start_telemetron(
    workdir: Path,
    overrides: dict[str, str],
    *,
    switch_interval: float | None = None,
    tree: Path = REPO,
) -> Server:
    """``tree``: the source tree to serve (another revision's checkout runs with
    this virtualenv: its directory comes first on ``sys.path``)."""
    env = telemetron_env(workdir, overrides, tree)
    if switch_interval is not None:
        hook = _switch_interval_hook(workdir, switch_interval)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (hook, env.get("PYTHONPATH")) if p)
    manage = [sys.executable, str(tree / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], cwd=tree, env=env, check=True, timeout=300
    )
    port = free_port()
    server = _spawn(
        "telemetron", [*manage, "serve", "--port", str(port)], env, port, workdir, cwd=tree
    )
    server.wait_ready("GET", "/healthz", None, timeout_s=120)
    return server
