"""deploy/multinode/Procfile read as its nodes, for the tests that start those
very commands (tests/e2e/test_multinode.py, the fault runs' multi-node shape)."""

from __future__ import annotations

from tests.support.procs import ROOT

__all__ = ["PROCFILE", "procfile_nodes"]

PROCFILE = ROOT / "deploy" / "multinode" / "Procfile"


def procfile_nodes() -> dict[str, tuple[str, list[str]]]:
    """deploy/multinode/Procfile's nodes: name -> (manage.py command, its options
    but the port, which each test node gets free)."""
    nodes = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        argv = command.split()
        command_name, *options = argv[argv.index("manage.py") + 1 :]
        if "--port" in options:
            at = options.index("--port")
            del options[at : at + 2]
        nodes[name] = (command_name, options)
    return nodes
