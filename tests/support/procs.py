"""Real Telemetron processes for integration and end-to-end tests: a config file
of the test's own, ``manage.py migrate``, ``manage.py serve`` / ``qcluster`` as
subprocesses on a free loopback port, and a small HTTP client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ROOT",
    "Project",
    "Server",
    "descendants",
    "free_port",
    "kill_tree",
    "readyz_ok",
    "wait_answering",
    "wait_until",
    "write_config",
]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    """JSON scalars and arrays are valid TOML; objects become inline tables."""
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write a config.toml; plugin tables are given as e.g.
    ``{"validation.plugins.SourceIdValidator": {"allowed": [1]}}`` (order kept)."""
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout} s (last value: {last!r})")


def readyz_ok(url: str) -> bool:
    """Whether the server at ``url`` answers ``/readyz`` 200 (an unanswered probe: no)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_answering(
    process: subprocess.Popen[Any], url: str, log: Callable[[], str], *, timeout: float = 60.0
) -> None:
    """Wait until ``url`` answers 200; fail at once, with the log, if ``process``
    exits first."""

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited {process.returncode}:\n{log()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout)


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float = 60.0) -> int:
        """Its exit code once it exits; killed, and an error, after ``timeout`` s."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not stop in {timeout} s:\n{self.log()}") from None


@dataclass
class Project:
    """A Telemetron installation of one test: its directory, config and database."""

    workdir: Path
    database_url: str
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.toml"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TELEMETRON_") and k != "DJANGO_SETTINGS_MODULE"
        }
        env.update(
            DJANGO_SETTINGS_MODULE="telemetron_site.settings",
            TELEMETRON_CONFIG=str(self.config_path),
            TELEMETRON_DATABASE__URL=self.database_url,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def write(self) -> None:
        write_config(self.config_path, self.config)

    def manage(
        self, *args: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        self.write()
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def start(
        self,
        *args: str,
        command: str = "serve",
        ready_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> Server:
        """Start ``manage.py serve`` (or another long-running command) on a free
        port; ``env``: variables of this process only (e.g. a node's config keys)."""
        self.write()
        port = free_port()
        log_path = self.workdir / f"{command}-{port}.log"
        cmd = [sys.executable, str(ROOT / "manage.py"), command]
        if command == "serve":
            cmd += ["--port", str(port)]
        cmd += list(args)
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env={**self.env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        server = Server(proc, port, log_path)
        self.servers.append(server)
        if command == "serve":
            wait_answering(proc, f"{server.url}/healthz", server.log, timeout=ready_timeout)
        return server

    def stop_all(self) -> None:
        """Every server still running asked to stop at once, then each waited for."""
        running = [server for server in self.servers if server.process.poll() is None]
        for server in running:
            server.process.send_signal(signal.SIGTERM)
        for server in running:
            server.wait_stopped(timeout=60)


def _children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from /proc (a snapshot)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    return set(_children_by_parent().get(pid, []))


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, however deep."""
    children = _children_by_parent()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for victim in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, sig)


def kill_tree(
    pid: int, *, when: Callable[[], bool] | None = None, timeout: float = 60.0
) -> list[int]:
    """SIGKILL ``pid`` and every process below it at once, as a power cut or the
    OOM killer of a container would: each is stopped first (SIGSTOP), so none
    sees another die, restarts a child or flushes anything, then all are killed.
    With ``when``: the tree is stopped, ``when()`` asked (it sees the state the
    tree is frozen in), and the tree killed if it holds, else let go on for a
    moment and tried again. Returns the pids killed."""
    deadline = time.monotonic() + timeout
    while True:
        tree = [pid, *sorted(descendants(pid))]
        _signal_all(tree, signal.SIGSTOP)
        tree = [pid, *sorted(descendants(pid))]  # none could fork after its stop
        _signal_all(tree, signal.SIGSTOP)
        if when is None or when():
            _signal_all(tree, signal.SIGKILL)
            return tree
        _signal_all(tree, signal.SIGCONT)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the tree of {pid} never got where it was to be killed")
        time.sleep(0.05)
