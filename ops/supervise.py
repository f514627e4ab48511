"""What ``manage.py serve`` becomes once its start-up work is done: the process
tree's supervisor, without Django.

``serve`` checks the migrations, seeds the plugin rows, collects the static files
and prepares the tree's environment with Django loaded; supervising the tree needs
none of it, and a process that has set Django up holds ~70 MB of PSS for as long
as the tree runs (bench/RESULTS.md, issue 23). So ``serve`` replaces itself
(``execve``: the same pid, its parent and its terminal unchanged) with
``python -m ops.supervise FD``, which imports only :mod:`ops.process_tree` and
the standard library (~10 MB), runs the tree, and says what ``serve`` said: the
serving line once the children are started, the signal that stops it,
``telemetron: stopped`` or, when a child failed, ``CommandError: ...`` and exit
code 1. The environment it is given is the children's.

The spec (:class:`TreeSpec`, JSON: the children's command lines, the shutdown
deadline, the lines to print and the files to remove at the end) is read from
the pipe ``FD``, not given as an argument: the process's command line stays
short, and names no child's (what tells the tree's processes apart reads them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from ops.process_tree import ProcessTree

__all__ = ["TreeSpec", "exec_supervisor", "main", "supervise"]

_PIPE_BUFFER = 60_000  # Linux's pipe holds 64 KiB; the spec is ~1 KB


@dataclass
class TreeSpec:
    children: list[tuple[str, list[str]]]
    shutdown_timeout_s: float
    started_line: str
    resignal: list[str] = field(default_factory=list)
    remove_dirs: list[str] = field(default_factory=list)  # at the end (the metrics directory)
    remove_files: list[str] = field(default_factory=list)  # at the end (the rate-limit file)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TreeSpec:
        data: dict[str, Any] = json.loads(text)
        data["children"] = [(name, list(argv)) for name, argv in data["children"]]
        return cls(**data)


def exec_supervisor(spec: TreeSpec, env: dict[str, str]) -> None:
    """Replace this process with the supervisor of ``spec``'s tree (does not return)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    data = spec.to_json().encode()
    if len(data) > _PIPE_BUFFER:  # (written before anyone reads it)
        raise ValueError(f"the tree's spec is {len(data)} bytes, over {_PIPE_BUFFER}")
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    os.set_inheritable(read, True)
    os.execve(sys.executable, [sys.executable, "-m", "ops.supervise", str(read)], env)


def _ignore_stop_signals() -> None:
    """Once the tree has stopped, a second SIGTERM/SIGINT has nothing left to do.
    Ignored, it cannot kill the exit either: Python restores the default handlers
    while it finalizes (a second or so on a loaded machine), and the process would
    end by that signal (exit 143) instead of 0."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def supervise(spec: TreeSpec) -> int:
    """Run the tree until a signal stops it or a child dies; the exit code."""
    tree = ProcessTree(
        spec.children,
        env=os.environ,
        shutdown_timeout_s=spec.shutdown_timeout_s,
        resignal=spec.resignal,
    )

    def stop(signum: int, frame: object) -> None:
        if not tree.stopping:
            print(f"telemetron: {signal.Signals(signum).name}, shutting down", file=sys.stderr)
            tree.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def started() -> None:
        print(spec.started_line, flush=True)

    result = tree.run(on_started=started)
    _ignore_stop_signals()
    for path in spec.remove_dirs:
        shutil.rmtree(path, ignore_errors=True)
    for path in spec.remove_files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if result.failure:
        print(f"CommandError: {result.failure}", file=sys.stderr, flush=True)
        return 1
    print("telemetron: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m ops.supervise FD (run by manage.py serve)", file=sys.stderr)
        return 2
    with os.fdopen(int(args[0]), encoding="utf-8") as pipe:
        spec = TreeSpec.from_json(pipe.read())
    return supervise(spec)


if __name__ == "__main__":
    sys.exit(main())
