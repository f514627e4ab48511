"""Which process of a running node plays which role, read from outside: the
process tree in /proc (parents, start times, command lines). No title is
needed (django-q2 sets process titles only when ``setproctitle`` is installed,
and Telemetron does not install it).

How each role is found, under the node's own process (``manage.py serve``, or
``manage.py qcluster`` for a bare worker node):

* ``serve`` — the node's process when it runs ``serve``;
* ``granian-main`` — serve's child whose command line runs ``granian``;
  ``granian-worker`` — granian-main's children;
* ``qcluster`` — serve's child whose command line runs ``qcluster`` (or the
  node's own process on a ``qcluster`` node); ``sentinel`` — its child (django-q2
  forks one);
* the sentinel's children are forked copies of qcluster, told apart by the
  order django-q2 starts them (``Sentinel.spawn_cluster``: ``queue.workers``
  workers, then the monitor, then the pusher; a dead one is replaced in the same
  order in ``Sentinel.guard``). A watcher polls the tree every ``interval`` and
  gives a new child the role a vanished child left: ``queue-worker`` first, then
  ``monitor``, then ``pusher`` (a recycled worker is replaced by a worker).
  ``tests/faults/test_roles.py`` checks the roles found against django-q2's own
  log lines ("reincarnated monitor", …) after killing each.

The watcher also remembers every process it ever saw in the tree (pid and start
time), so that after the node's process exits :meth:`TreeWatch.leftovers` names
those still running: orphans."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROCESS_ROLES", "Proc", "TreeWatch", "tree_table"]

PROCESS_ROLES = (
    "serve",
    "granian-main",
    "granian-worker",
    "qcluster",
    "sentinel",
    "monitor",
    "pusher",
    "queue-worker",
)
_SENTINEL_CHILDREN = ("queue-worker", "monitor", "pusher")  # django-q2's spawn order


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # clock ticks since boot: with the pid, one process for ever


def _proc(pid: int) -> Proc | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return Proc(pid, int(fields[1]), int(fields[19]))


def _children(pid: int) -> list[int]:
    """``pid``'s children (Linux: /proc/PID/task/*/children), not the whole table."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return found


def tree_table(root_pid: int) -> dict[int, Proc]:
    """The processes of the tree under ``root_pid``, root included (a snapshot)."""
    table: dict[int, Proc] = {}
    todo = [root_pid]
    while todo:
        proc = _proc(todo.pop())
        if proc is not None and proc.pid not in table:
            table[proc.pid] = proc
            todo += _children(proc.pid)
    return table


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def alive(proc: Proc) -> bool:
    """Is this very process (pid and start time) still running?"""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[19]) == proc.start and fields[0] != "Z"


class TreeWatch:
    """Roles of one node's process tree, kept up to date by a polling thread."""

    def __init__(self, root_pid: int, *, command: str, workers: int, interval: float = 0.25):
        self.root_pid = root_pid
        self.command = command  # "serve" or "qcluster"
        self._expected = Counter({"queue-worker": workers, "monitor": 1, "pusher": 1})
        self._interval = interval
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()  # one poll at a time (the children's roles)
        self._roles: dict[int, str] = {}  # pid -> role, of the last poll
        self._children_roles: dict[Proc, str] = {}  # the sentinel's children
        self._sentinel: Proc | None = None
        self.seen: dict[Proc, str] = {}  # every process ever seen in the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeWatch:
        self.poll()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def roles(self) -> dict[str, list[int]]:
        """Role -> pids (the last poll's)."""
        with self._lock:
            out: dict[str, list[int]] = {}
            for pid, role in sorted(self._roles.items()):
                out.setdefault(role, []).append(pid)
            return out

    def leftovers(self) -> dict[int, str]:
        """Processes seen in the tree that still run (pid -> role)."""
        with self._lock:
            seen = dict(self.seen)
        return {p.pid: role for p, role in seen.items() if alive(p)}

    def poll(self) -> dict[int, str]:
        with self._poll_lock:
            return self._poll()

    def _poll(self) -> dict[int, str]:
        table = tree_table(self.root_pid)
        children: dict[int, list[Proc]] = {}
        for proc in table.values():
            children.setdefault(proc.ppid, []).append(proc)
        for kids in children.values():
            kids.sort(key=lambda p: (p.start, p.pid))
        roles: dict[int, str] = {}
        root = table.get(self.root_pid)
        if root is not None:
            self._walk(root, children, roles)
        with self._lock:
            self._roles = roles
            for pid, role in roles.items():
                self.seen.setdefault(table[pid], role)
        return roles

    def _walk(self, root: Proc, children: dict[int, list[Proc]], roles: dict[int, str]) -> None:
        qcluster: Proc | None = root if self.command == "qcluster" else None
        if self.command == "serve":
            roles[root.pid] = "serve"
            for child in children.get(root.pid, []):
                argv = _argv(child.pid)
                if any(a.endswith("granian") for a in argv):
                    roles[child.pid] = "granian-main"
                    for worker in children.get(child.pid, []):
                        roles[worker.pid] = "granian-worker"
                elif "qcluster" in argv:
                    qcluster = child
        if qcluster is None:
            return
        roles[qcluster.pid] = "qcluster"
        for sentinel in children.get(qcluster.pid, [])[:1]:
            roles[sentinel.pid] = "sentinel"
            for proc, role in self._sentinel_children(sentinel, children).items():
                roles[proc.pid] = role

    def _sentinel_children(
        self, sentinel: Proc, children: dict[int, list[Proc]]
    ) -> dict[Proc, str]:
        """The sentinel's children's roles: a new child takes the first role left
        vacant, in django-q2's spawn order."""
        if sentinel != self._sentinel:
            self._sentinel, self._children_roles = sentinel, {}
        current = children.get(sentinel.pid, [])
        kept = {p: r for p, r in self._children_roles.items() if p in current}
        vacant = self._expected - Counter(kept.values())
        order = [role for role in _SENTINEL_CHILDREN for _ in range(vacant[role])]
        for proc in current:
            if proc not in kept:
                kept[proc] = order.pop(0) if order else "unknown"
        self._children_roles = kept
        return kept
