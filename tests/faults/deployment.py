"""A configuration's running nodes, kept running the way a supervisor
(systemd, a container runtime) would: a node whose process exits is started
again; before that, whatever of its tree still runs after a grace period is
recorded (an ``exit`` record with its leftovers) and killed, as systemd's
``KillMode=control-group`` would.

Each node is a ``manage.py serve`` (with its options) or ``manage.py
qcluster`` process of one :class:`~tests.support.procs.Project`; a restart
gets a new port, so clients ask :meth:`Deployment.url` before every request."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.faults.history import History
from tests.faults.roles import TreeWatch
from tests.faults.services import signal_pids
from tests.support.procs import Project, Server, kill_tree

__all__ = ["Deployment", "Node", "NodeSpec"]

ORPHAN_GRACE_S = 5.0  # after a node's process exits, its tree has this long to follow


@dataclass(frozen=True)
class NodeSpec:
    name: str
    command: str = "serve"  # or "qcluster"
    options: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    http: bool = True  # takes the clients' requests (a web node)


@dataclass
class Node:
    spec: NodeSpec
    server: Server | None = None
    watch: TreeWatch | None = None
    generation: int = 0
    up: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.spec.name

    def roles(self) -> dict[str, list[int]]:
        return self.watch.roles() if self.watch and self.up.is_set() else {}


class Deployment:
    def __init__(
        self, name: str, project: Project, specs: list[NodeSpec], history: History, workers: int
    ) -> None:
        self.name = name
        self.project = project
        self.nodes = [Node(spec) for spec in specs]
        self.history = history
        self._workers = workers
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    # -- what clients and the nemesis ask -------------------------------------------
    def url(self, name: str) -> str | None:
        """A web node's URL while it is up (None while it restarts)."""
        return self.url_any(name) if self.node(name).spec.http else None

    def url_any(self, name: str) -> str | None:
        """The URL of any ``serve`` node (worker nodes serve /readyz and /metrics)."""
        node = self.node(name)
        up = node.server is not None and node.up.is_set() and node.spec.command == "serve"
        return node.server.url if up and node.server else None

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def http_nodes(self) -> list[str]:
        return [n.name for n in self.nodes if n.spec.http]

    def wait_up(self, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(n.up.wait(max(0.0, deadline - time.monotonic())) for n in self.nodes)

    # -- life cycle -------------------------------------------------------------
    def start(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._start_node, self.nodes))
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM every node (the graceful stop); a tree that leaves processes
        behind is recorded as after a crash."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._stop_node, self.nodes))
        self.project.stop_all()  # a restart that was under way

    def _stop_node(self, node: Node) -> None:
        if node.server is None:
            return
        try:
            code = node.server.stop(timeout=60)
        except AssertionError:  # killed after 60 s
            code = -9
        self._after_exit(node, code, cause="stopped")

    def _start_node(self, node: Node) -> None:
        """Start the node's process, again until it serves (a dependency may be down)."""
        while not self._stopping.is_set():
            try:
                server = self.project.start(
                    *node.spec.options, command=node.spec.command, env=dict(node.spec.env)
                )
            except (AssertionError, TimeoutError) as exc:
                self.history.add(
                    "start-failed", t=self.history.now(), node=node.name, error=str(exc)[-300:]
                )
                self._kill_last(node)
                self._stopping.wait(1.0)
                continue
            node.server = server
            node.watch = TreeWatch(
                server.process.pid, command=node.spec.command, workers=self._workers
            ).start()
            node.generation += 1
            node.up.set()
            self.history.add(
                "started",
                t=self.history.now(),
                node=node.name,
                port=server.port,
                pid=server.process.pid,
                generation=node.generation,
            )
            return

    def _kill_last(self, node: Node) -> None:
        """The process of a failed start, if it still runs, with its tree."""
        last = self.project.servers[-1] if self.project.servers else None
        if last is not None and last is not node.server and last.process.poll() is None:
            kill_tree(last.process.pid)
            last.process.wait(30)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for node in self.nodes:
                server = node.server
                if server is None or server.process.poll() is None or not node.up.is_set():
                    continue
                node.up.clear()  # one restart per exit: the next poll skips it
                threading.Thread(target=self._restart, args=(node,), daemon=True).start()

    def _restart(self, node: Node) -> None:
        assert node.server is not None
        code = node.server.process.returncode
        self.history.add("down", t=self.history.now(), node=node.name, code=code)
        self._after_exit(node, code, cause="exited")
        if not self._stopping.is_set():
            self._start_node(node)

    def _after_exit(self, node: Node, code: int | None, *, cause: str) -> None:
        """Wait up to the grace period for the tree to follow its root; record
        and kill what is left."""
        watch = node.watch
        if watch is None:
            return
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while watch.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        watch.stop()
        left = watch.leftovers()
        self.history.add(
            "exit",
            t=self.history.now(),
            node=node.name,
            cause=cause,
            code=code,
            generation=node.generation,
            leftovers={str(pid): role for pid, role in left.items()},
        )
        signal_pids(list(left), signal.SIGCONT)
        signal_pids(list(left), signal.SIGKILL)
        with contextlib.suppress(Exception):
            watch.leftovers()
