"""A newcomer's two terminals, for tests/test_readme.py: a fresh directory that
looks like a clone after ``make run`` (``manage.py``, the virtualenv, the
repository's ``config.toml``, nothing else), the ``serve`` that ``make run``
starts there, and a shell that runs the README's commands next to it."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.procs import ROOT, free_port, wait_answering, write_config

__all__ = ["Ran", "ReadmeSession"]

# curl as written, plus its status on stderr (which the session reads with stdout)
CURL = "curl() { command curl -w '%{stderr}[curl-status %{http_code}]\\n' \"$@\"; }\n"
CURL_STATUS = re.compile(r"\[curl-status (\d{3})\]\n?")
SECRET = re.compile(r"\b(tlw_|tlr_)[A-Za-z0-9_-]{40}\b")


@dataclass(frozen=True)
class Ran:
    status: int
    printed: str
    http: tuple[int, ...]  # the status of each curl request


def _merged(base: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in more.items():
        old = out.get(key)
        both = isinstance(old, dict) and isinstance(value, dict)
        out[key] = _merged(old, value) if both else value  # type: ignore[arg-type]
    return out


def _sections(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config.toml's tables as write_config takes them (a plugin's table by name)."""
    out: dict[str, dict[str, Any]] = {}
    for name, table in config.items():
        if name in ("validation", "transformation", "processing"):
            for plugin, params in table.get("plugins", {}).items():
                out[f"{name}.plugins.{plugin}"] = params
        else:
            out[name] = table
    return out


class ReadmeSession:
    def __init__(self, workdir: Path, venv: Path) -> None:
        workdir.mkdir(parents=True)
        (workdir / "manage.py").symlink_to(ROOT / "manage.py")
        (workdir / ".venv").symlink_to(venv)
        shutil.copy(ROOT / "config.toml", workdir / "config.toml")
        self.workdir = workdir
        self.port = free_port()
        self.variables: dict[str, str] = {}
        self.secrets: dict[str, str] = {}  # prefix (tlw_, tlr_) -> the last one printed
        self._serve: subprocess.Popen[bytes] | None = None
        self._log = workdir / "make-run.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, extra: Mapping[str, str] = {}) -> dict[str, str]:
        """A shell's environment: none of the test run's Telemetron settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TELEMETRON_") and k != "DJANGO_SETTINGS_MODULE"
        }
        return {**env, "PYTHONUNBUFFERED": "1", **self.variables, **extra}

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def make_run(self, assignments: Mapping[str, str]) -> None:
        """The Makefile's ``run`` recipe (migrate, then serve) with the line's
        variables, on this session's port; the running one stopped first."""
        self.stop()
        env = self.env({**assignments, "TELEMETRON_HTTP__PORT": str(self.port)})
        python = str(self.workdir / ".venv" / "bin" / "python")
        migrate = [python, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=self.workdir, env=env, check=True, timeout=120)
        with self._log.open("a") as log:
            self._serve = subprocess.Popen(
                [python, "manage.py", "serve"],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, as in a terminal
            )
        wait_answering(self._serve, f"{self.url}/healthz", self.log, timeout=90)

    def stop(self) -> None:
        """Ctrl-C in make run's terminal: SIGINT to its whole process group."""
        if self._serve is None:
            return
        os.killpg(self._serve.pid, signal.SIGINT)
        try:
            self._serve.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self._serve.pid, signal.SIGKILL)
            self._serve.wait()
            raise AssertionError(f"serve did not stop on SIGINT:\n{self.log()}") from None
        status, self._serve = self._serve.returncode, None
        assert status == 0, f"serve exited {status} on SIGINT:\n{self.log()}"

    def config_add(self, toml: str) -> None:
        """The reader adds a README block to config.toml (its tables merged)."""
        path = self.workdir / "config.toml"
        config = _merged(tomllib.loads(path.read_text()), tomllib.loads(toml))
        write_config(path, _sections(config))

    def _remember(self, printed: str) -> None:
        for match in SECRET.finditer(printed):
            self.secrets[match.group(1)] = match.group(0)

    def shell(self, command: str, *, answer: str | None = None) -> Ran:
        """Run one command in bash in the directory, as typed; ``answer`` is what
        the reader types at its question."""
        proc = subprocess.Popen(
            ["bash", "-c", "set -o pipefail\n" + CURL + command],
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(answer or "", timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        http = tuple(int(code) for code in CURL_STATUS.findall(out))
        printed = CURL_STATUS.sub("\n", out)
        if answer is not None:  # a terminal shows what was typed
            printed = printed.replace("[y/N] ", "[y/N] " + answer, 1)
        self._remember(printed)
        return Ran(proc.returncode, printed, http)

    def terminal(self, command: str, answers: list[tuple[str, str]]) -> Ran:
        """Run a command on a terminal (for prompts such as getpass'), typing
        each answer once its prompt is printed."""
        main, other = pty.openpty()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.workdir,
            env=self.env(),
            stdin=other,
            stdout=other,
            stderr=other,
            start_new_session=True,
        )
        os.close(other)
        printed, todo = b"", list(answers)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the other side closed: the command is done
                    break
                printed += chunk
                if todo and todo[0][0].encode() in printed.rsplit(b"\n", 1)[-1]:
                    os.write(main, todo.pop(0)[1].encode() + b"\n")
            elif proc.poll() is not None:
                break
        os.close(main)
        if proc.poll() is None:  # still waiting for an answer nobody gives
            os.killpg(proc.pid, signal.SIGKILL)
        status = proc.wait()
        return Ran(status, printed.decode(errors="replace").replace("\r\n", "\n"), ())

    def close(self) -> None:
        self.stop()
