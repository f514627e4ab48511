"""The roles the fault runs find in a real ``serve`` tree are the ones django-q2
and granian give their processes: after each kill, the parent's own log line
names the role it replaced, and the watcher gives the new process that role.

Does not depend on the database: SQLite pass only."""

from __future__ import annotations

import os
import signal

import pytest

from tests.faults.roles import TreeWatch
from tests.support.databases import sqlite_pass_only
from tests.support.procs import Project, kill_tree, wait_until

pytestmark = [pytest.mark.e2e, sqlite_pass_only("the process tree is the same on both")]

# django-q2's sentinel (Sentinel.reincarnate), at CRITICAL: it names the role.
REINCARNATED = {
    "monitor": "reincarnated monitor",
    "pusher": "reincarnated pusher",
    "queue-worker": "reincarnated worker",
}


def test_each_role_is_the_process_its_parent_replaces_as_that_role(project: Project) -> None:
    project.config["http"]["workers"] = 2
    server = project.start()
    watch = TreeWatch(server.process.pid, command="serve", workers=2).start()
    try:
        roles = wait_until(lambda: len(watch.roles().get("pusher", [])) == 1 and watch.roles())
        assert _counts(roles) == {
            "serve": 1,
            "granian-main": 1,
            "granian-worker": 2,
            "qcluster": 1,
            "sentinel": 1,
            "queue-worker": 2,
            "monitor": 1,
            "pusher": 1,
        }
        assert roles["serve"] == [server.process.pid]
        for role, line in REINCARNATED.items():
            # A whole tree first: the guarded sentinel restarts all of the
            # cluster's processes after a monitor's or pusher's death.
            whole = wait_until(lambda: _counts(watch.roles()) == _counts(roles) and watch.roles())
            victim = whole[role][0]
            before = server.log().count(line)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda line=line, before=before: server.log().count(line) > before)
            replaced = wait_until(
                lambda role=role, victim=victim: (
                    len(watch.roles().get(role, [])) == len(roles[role])
                    and victim not in watch.roles()[role]
                )
            )
            assert replaced, (role, watch.roles())
        # granian respawns a dead worker (--respawn-failed-workers): a new granian-worker.
        victim = watch.roles()["granian-worker"][0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: (
                len(watch.roles().get("granian-worker", [])) == 2
                and victim not in watch.roles()["granian-worker"]
            )
        )
        assert watch.roles()["sentinel"] == roles["sentinel"]  # the tree itself lived on
    finally:
        watch.stop()
        # Not a graceful stop: after these kills the tree may not stop on SIGTERM
        # (a fault run's finding, not this test's subject).
        kill_tree(server.process.pid)
        server.process.wait(30)


def _counts(roles: dict[str, list[int]]) -> dict[str, int]:
    return {role: len(pids) for role, pids in roles.items()}
