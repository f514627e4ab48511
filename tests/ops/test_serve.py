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


def test_serve_supervises_the_tree_without_django_loaded(project: Project) -> None:
    """Once the tree runs, serve's process (the same pid) is ops.supervise: no
    library of the application's is mapped in it (pydantic-core's, which Django's
    set-up loads through django-ninja, is in every other process of the tree), and
    it still prints serve's lines and removes the tree's metrics directory."""
    server = project.start()
    pid = server.process.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[1:3] == [b"-m", b"ops.supervise"]
    assert b"granian" not in b" ".join(argv)  # (the children's command lines tell them apart)
    assert b"_pydantic_core" not in Path(f"/proc/{pid}/maps").read_bytes()
    environ = dict(
        item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"=" in item
    )  # fmt: skip
    metrics_dir = Path(environ[b"PROMETHEUS_MULTIPROC_DIR"].decode())
    assert metrics_dir.is_dir()
    (web, *_) = sorted(descendants(pid))
    assert b"_pydantic_core" in Path(f"/proc/{web}/maps").read_bytes()
    assert server.stop() == 0
    log = server.log()
    assert "telemetron: serving on http://127.0.0.1:" in log
    assert log.rstrip().endswith("telemetron: stopped")
    assert not metrics_dir.exists()
