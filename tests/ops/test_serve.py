"""``manage.py serve``'s one warning line: auth off on an address others reach;
the environment of the tree's processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from ops.management.commands.serve import (
    MALLOC_ARENAS,
    is_loopback,
    malloc_env,
    open_ingest_warning,
)
from tests.support.procs import Project, descendants


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_warning(host: str) -> None:
    assert is_loopback(host)
    assert open_ingest_warning(Settings(), host=host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "telemetry.example.com"])
def test_auth_off_on_other_addresses_is_one_warning_line(host: str) -> None:
    line = open_ingest_warning(Settings(), host=host)
    assert line is not None and "\n" not in line
    assert 'ingest.auth = "off"' in line and host in line
    assert open_ingest_warning(Settings(ingest={"auth": "required"}), host=host) is None


def test_malloc_arenas_are_bounded_unless_the_operator_chose() -> None:
    assert malloc_env({"PATH": "/bin"}) == {"MALLOC_ARENA_MAX": MALLOC_ARENAS, "PATH": "/bin"}
    assert malloc_env({"MALLOC_ARENA_MAX": "8"})["MALLOC_ARENA_MAX"] == "8"


def test_the_trees_processes_run_with_two_malloc_arenas(project: Project) -> None:
    server = project.start()
    processes = descendants(server.process.pid)
    assert len(processes) >= 3  # granian, a worker of its (it answered), qcluster
    for pid in processes:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"MALLOC_ARENA_MAX={MALLOC_ARENAS}".encode() in environ, pid
