"""The process tree ``manage.py serve`` runs: the HTTP server (granian, WSGI) and,
unless web-only, a django-q2 cluster, supervised as one.

* :func:`granian_command` — granian's command line; ``bench/`` starts its
  floors with the same one, so they are measured on the server Telemetron uses.
* :class:`ProcessTree` — starts the children (each in its own session, told to
  stop when its parent dies), stops them all when one exits on its own or when
  :meth:`ProcessTree.stop` is called (``serve``'s SIGTERM/SIGINT handler), waits
  for them up to a deadline and kills what is left: each child's whole process
  group, so no granian worker or cluster process outlives the tree. A child's
  group is killed too as soon as the child is gone (a granian main process
  SIGKILLed leaves its workers serving otherwise). No Django in here: a test can
  run a tree of any commands.

The deadline is the tree's alone: granian gets no ``--workers-kill-timeout``.
With one, granian (2.8) joins each worker for the timeout, then asks
``is_alive()``; a thread of its own (its worker watcher) reaps the same worker
at the same moment, and until that thread has run again the worker looks alive
to the joining thread, which then logs "Killing worker-N after it refused to
gracefully stop" for a worker that had already exited (now and then on a loaded
two-core machine: 2 stops in 20 in one run, none in 40 in another; every time
when the watcher is made late, tests/ops/test_process_tree.py). Without a
timeout granian joins and never asks.

While it waits, the tree asks the children of ``resignal`` children (granian's
workers) to stop again every ``resignal_s``: granian (2.8) forks a worker with
its main process' signal handler, which only sets a flag, and keeps it until the
worker has loaded the application (our Django start-up, a second or more on a
loaded machine). The one SIGTERM granian sends a worker that is still starting
(its shutdown right after it respawned a dead worker) is lost, and its shutdown
would wait ``--workers-kill-timeout`` for that worker: seen in CI as ``serve``
not stopping in 60 s. Asked again once it serves, the worker stops gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GRANIAN_LOG_CONFIG",
    "GranianThreadsFilter",
    "ProcessTree",
    "TreeResult",
    "die_with_parent",
    "granian_command",
]

WSGI_APPLICATION = "telemetron_site.wsgi:application"
# granian's logging (its own format) with GranianThreadsFilter on its logger.
GRANIAN_LOG_CONFIG = Path(__file__).with_name("granian_logging.json")
_THREADS_WARNING = "Configuration allows spawning up to "


class GranianThreadsFilter(logging.Filter):
    """Leaves out granian's start-up warning that its blocking threads outnumber
    2 x cores + 1 ("Configuration allows spawning up to 16 Python threads ..."):
    a rule of thumb for views that keep the CPU busy. Ours mostly wait for the
    group commit, which needs several requests in flight per process: 16 threads
    commit 11-12 events per broker write, 4 and 8 threads make ``/ingest`` 2-3x
    slower (bench/RESULTS.md). ``http.threads`` is that choice, said in serve's
    first line; every other granian message is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_THREADS_WARNING)


def granian_command(
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    target: str = WSGI_APPLICATION,
    log_level: str = "warning",
    respawn: bool = False,
) -> list[str]:
    """granian serving ``target`` over WSGI with a few blocking threads per worker
    (bench/RESULTS.md: its default of up to 256 threads hurts p99), logging through
    :data:`GRANIAN_LOG_CONFIG`; no kill timeout (the tree's deadline is the one)."""
    cmd = [
        sys.executable,
        "-m",
        "ops.granian",  # granian's command line, Django loaded before it forks
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
    ]
    if respawn:
        cmd.append("--respawn-failed-workers")
    cmd += ["--log-level", log_level, "--log-config", str(GRANIAN_LOG_CONFIG)]
    return [*cmd, target]


def die_with_parent(sig: int = signal.SIGTERM, *, parent: int | None = None) -> None:
    """In a child process: get ``sig`` when its parent dies (Linux's
    PR_SET_PDEATHSIG), so no process of the tree outlives the one that started
    it, whichever dies first. ``parent``: the pid the child was forked by; if it
    is gone already (it died before this call), the signal comes at once."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def _die_with_parent() -> None:
    """In a child: killed if the tree's parent dies without stopping it first (a
    clean stop ends the children before ``serve`` exits; a ``serve`` killed leaves
    nobody to wait for a graceful stop, which under load outlasted 5 s)."""
    die_with_parent(signal.SIGKILL)


def _signal_children(pid: int, sig: int) -> None:
    """Send ``sig`` to ``pid``'s children (Linux: /proc/PID/task/*/children)."""
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"{task.path}/children") as f:
                for child in f.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(child), sig)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child and its process group (it leads one: started in a session
    of its own), so its own children (granian's workers, a cluster's sentinel and
    workers) go with it, even when the child itself is gone already."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if child.returncode is None:
            child.kill()


@dataclass
class TreeResult:
    """How the tree ended: each child's exit code, and what went wrong (None: a
    clean stop, every child exiting in time)."""

    codes: dict[str, int] = field(default_factory=dict)
    failure: str | None = None


class ProcessTree:
    def __init__(
        self,
        children: Sequence[tuple[str, list[str]]],
        *,
        env: Mapping[str, str],
        shutdown_timeout_s: float,
        poll_s: float = 0.2,
        resignal: Sequence[str] = (),
        resignal_s: float = 1.0,
    ) -> None:
        self._commands = list(children)
        self._resignal = set(resignal)
        self._resignal_s = resignal_s
        self._env = dict(env)
        self._shutdown_timeout = shutdown_timeout_s
        self._poll = poll_s
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopping = threading.Event()

    @property
    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self._children}

    def start(self) -> None:
        """Start the children; none when :meth:`stop` came first (a SIGTERM
        between serve's handler and the start would leave them unasked)."""
        if self._stopping.is_set():
            return
        for name, argv in self._commands:
            child = subprocess.Popen(
                argv, env=self._env, start_new_session=True, preexec_fn=_die_with_parent
            )
            self._children.append((name, child))

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask every child to stop (SIGTERM), once."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for _, child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def supervise(self) -> str | None:
        """Until :meth:`stop`: if a child exits on its own, stop the others and
        return what happened."""
        while not self._stopping.is_set():
            for name, child in self._children:
                if child.poll() is not None:
                    if self._stopping.is_set():  # stopped meanwhile: the exit was asked for
                        return None
                    _kill_group(child)  # its own children (granian's workers) go with it
                    self.stop()
                    return f"{name} process exited with code {child.returncode}"
            self._stopping.wait(self._poll)
        return None

    def wait(self) -> TreeResult:
        """Wait for every child up to the shutdown deadline (asking ``resignal``
        children's own children to stop again meanwhile); kill the late ones
        with their process groups."""
        result = TreeResult()
        deadline = time.monotonic() + self._shutdown_timeout
        for name, child in self._children:
            while True:
                left = deadline - time.monotonic()
                step = min(left, self._resignal_s) if name in self._resignal else left
                try:
                    result.codes[name] = child.wait(max(0.1, step))
                    _kill_group(child)  # none of its processes outlives it
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() < deadline:
                        _signal_children(child.pid, signal.SIGTERM)
                        continue
                    _kill_group(child)
                    result.codes[name] = child.wait()
                    result.failure = result.failure or (
                        f"{name} process did not stop in time and was killed"
                    )
                    break
        return result

    def run(self, on_started: Callable[[], None] | None = None) -> TreeResult:
        """Start, supervise until stopped or a child dies, wait for the rest."""
        self.start()
        if on_started is not None:
            on_started()
        failure = self.supervise()
        result = self.wait()
        result.failure = failure or result.failure
        return result
