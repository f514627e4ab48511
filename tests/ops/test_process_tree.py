"""The process tree serve runs (ops/process_tree.py), on real child processes:
a clean stop, a child that dies on its own, a child that ignores SIGTERM."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from ops.process_tree import ProcessTree, granian_command
from tests.support.procs import wait_until

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
STUBBORN = (  # ignores SIGTERM, then says so by creating the file named by its argument
    "import pathlib, signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pathlib.Path(sys.argv[1]).touch()\nwhile True: time.sleep(0.05)"
)
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]
# A parent whose worker loses the first SIGTERM it gets (as a granian worker still
# starting does) and stops on the next; the parent forwards its SIGTERM once, then
# waits for the worker. The worker says it is ready by creating the file.
DEAF_ONCE = (
    "import pathlib, signal, sys, time\n"
    "heard = []\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0) if heard else heard.append(1))\n"
    "pathlib.Path(sys.argv[1]).touch()\n"
    "while True: time.sleep(0.05)"
)
FORWARDS_ONCE = (
    "import signal, subprocess, sys\n"
    "worker = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]])\n"
    "signal.signal(signal.SIGTERM, lambda *a: worker.terminate())\n"
    "sys.exit(worker.wait())"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_ends_every_child_cleanly() -> None:
    tree = ProcessTree([("a", SLEEPER), ("b", SLEEPER)], env=os.environ, shutdown_timeout_s=30)
    started = threading.Event()
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(tree.run(on_started=started.set)))
    runner.start()
    assert started.wait(30)
    pids = tree.pids
    tree.stop()
    runner.join(60)
    [outcome] = result
    assert outcome.failure is None  # type: ignore[attr-defined]
    assert set(outcome.codes) == {"a", "b"}  # type: ignore[attr-defined]
    assert not any(_alive(pid) for pid in pids.values())


def test_a_child_that_exits_on_its_own_stops_the_others_and_is_named() -> None:
    tree = ProcessTree(
        [("web", SLEEPER), ("cluster", QUITTER)], env=os.environ, shutdown_timeout_s=30
    )
    result = tree.run()
    assert result.failure == "cluster process exited with code 3"
    assert result.codes["cluster"] == 3
    assert not _alive(tree.pids["web"])


def test_a_child_that_ignores_sigterm_is_killed_at_the_deadline(tmp_path: Path) -> None:
    ready = tmp_path / "ignoring"
    stubborn = [sys.executable, "-c", STUBBORN, str(ready)]
    tree = ProcessTree([("stubborn", stubborn)], env=os.environ, shutdown_timeout_s=0.5)
    tree.start()
    wait_until(ready.exists, timeout=30, interval=0.01)
    tree.stop()
    result = tree.wait()
    assert result.failure == "stubborn process did not stop in time and was killed"
    assert result.codes["stubborn"] == -9
    assert not _alive(tree.pids["stubborn"])


def test_a_worker_that_lost_its_sigterm_is_asked_again(tmp_path: Path) -> None:
    ready = tmp_path / "worker"
    web = [sys.executable, "-c", FORWARDS_ONCE, DEAF_ONCE, str(ready)]
    tree = ProcessTree(
        [("web", web)], env=os.environ, shutdown_timeout_s=30, resignal=("web",), resignal_s=0.2
    )
    tree.start()
    wait_until(ready.exists, timeout=30, interval=0.01)
    tree.stop()
    result = tree.wait()  # without resignal: killed at the 30 s deadline
    assert result.failure is None
    assert result.codes["web"] == 0


def test_granian_command_carries_the_serving_flags() -> None:
    cmd = granian_command(host="127.0.0.1", port=8080, workers=2, threads=16, kill_timeout_s=60)
    joined = " ".join(cmd)
    assert (
        "--interface wsgi --host 127.0.0.1 --port 8080 --workers 2 --blocking-threads 16" in joined
    )
    assert "--workers-kill-timeout 60" in joined
    assert cmd[-1] == "telemetron_site.wsgi:application"
