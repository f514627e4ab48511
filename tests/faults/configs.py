"""The configurations a fault run can take, as the README offers them:

* ``sqlite-orm`` — the embedded default: one ``serve`` tree, SQLite, ORM broker;
* ``pg-orm`` — one ``serve`` tree on PostgreSQL, ORM broker;
* ``pg-redis`` — one ``serve`` tree on PostgreSQL, Redis broker (append-only file);
* ``multinode-orm``, ``multinode-redis`` — deploy/multinode/Procfile's nodes (two
  ``serve --web-only`` web nodes, a ``serve`` worker node kept out of the load
  balancer, a bare ``qcluster`` worker node) on one PostgreSQL, each broker; the
  worker nodes have host ids of their own, as on separate machines.

PostgreSQL and Redis are the run's own (:mod:`tests.faults.services`), reached
through their proxies. One migrated template database (with the sources the
``/v1`` clients write to and their keys) is copied for each configuration (on
SQLite, one template file). A pass runs the SQLite configuration or the
PostgreSQL ones, so ``keys`` are its one template's."""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.deployment import Deployment, NodeSpec
from tests.faults.history import History
from tests.faults.services import OwnPostgres, OwnRedis
from tests.support.dbread import sqlite_copy
from tests.support.multinode import procfile_nodes
from tests.support.procs import Project

__all__ = ["CONFIGURATIONS", "FaultServices", "deployment_build"]

CONFIGURATIONS = ("sqlite-orm", "pg-orm", "pg-redis", "multinode-orm", "multinode-redis")
WORKERS = 2  # queue workers per cluster
NATIVE_SOURCES = tuple(range(101, 109))  # /ingest, /ingest/batch: no key (ingest.auth off)
KEYED_SOURCES = (201,)  # /v1/*: the write key's source
_KEY = re.compile(r"tl[wr]_[A-Za-z0-9_-]{40}")

BASE_CONFIG: dict[str, dict[str, Any]] = {
    "http": {"host": "127.0.0.1", "workers": 2, "threads": 8},
    "queue": {"workers": WORKERS},
    # Bounded waits, so a run's every request ends: the invariant is an answer
    # within commit_timeout + 5 s.
    "ingest": {"commit_timeout": 10},
    "logging": {"level": "WARNING"},
    # Every node signs and reads the queue's tasks with the same key.
    "security": {"secret_key": "fault-runs-" + "k" * 48},
    "processing.plugins.StorageProcessor": {},
}


def uses_postgres(config: str) -> bool:
    return config != "sqlite-orm"


def uses_redis(config: str) -> bool:
    return config.endswith("-redis")


@dataclass
class FaultServices:
    """A run's own dependencies, started when first needed, and its template."""

    root: Path
    postgres: OwnPostgres | None = None
    redis: OwnRedis | None = None
    keys: dict[int, str] = field(default_factory=dict)  # source id -> write key
    _template: str = ""

    def pg(self) -> OwnPostgres:
        if self.postgres is None:
            self.postgres = OwnPostgres().start()
        return self.postgres

    def rd(self) -> OwnRedis:
        if self.redis is None:
            self.redis = OwnRedis(self.root / "redis").start()
        return self.redis

    def database(self, config: str, workdir: Path) -> str:
        """A fresh database for ``config``, migrated, with the keyed sources."""
        if not uses_postgres(config):
            template = self.root / "sqlite-template" / "telemetron.sqlite3"
            if not template.exists():
                self._prepare(f"sqlite:///{template}", template.parent)
            workdir.mkdir(parents=True, exist_ok=True)
            path = workdir / "telemetron.sqlite3"
            sqlite_copy(template, path)
            return f"sqlite:///{path}"
        pg = self.pg()
        if not self._template:
            self._template = "fault_template"
            pg.execute(f'CREATE DATABASE "{self._template}"')
            self._prepare(pg.admin_url(self._template), self.root / "template")
        name = f"faults_{config.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
        pg.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return pg.url(name)

    def _prepare(self, url: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        project = Project(workdir=workdir, database_url=url, config=dict(BASE_CONFIG))
        project.migrate()
        for source in KEYED_SOURCES:
            out = project.manage("sources", "create", str(source), "--name", f"v1-{source}")
            self.keys[source] = _KEY.findall(out.stdout)[0]

    def stop(self) -> None:
        try:
            if self.redis is not None:
                self.redis.stop()
        finally:
            try:
                if self.postgres is not None:
                    self.postgres.stop()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)


# A serve tree's children get this long to stop (serve's default is 60 s): runs
# stay bounded when a tree does not stop gracefully.
SHUTDOWN = ("--shutdown-timeout", "10")


def _node_specs(config: str) -> list[NodeSpec]:
    if not config.startswith("multinode"):
        return [NodeSpec("serve", options=SHUTDOWN)]
    specs = []
    for name, (command, options) in procfile_nodes().items():
        env: tuple[tuple[str, str], ...] = ()
        if name.startswith("worker"):  # separate machines: their own host ids
            env = (("TELEMETRON_QUEUE__HOST_ID", f"host-{name}"),)
        if command == "serve":
            options = [*options, *SHUTDOWN]
        specs.append(NodeSpec(name, command, tuple(options), env, http=name.startswith("web")))
    return specs


def deployment_build(
    config: str, *, services: FaultServices, workdir: Path, history: History
) -> Deployment:
    """The configuration's nodes (not started) on a fresh database."""
    if config not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {config!r}: one of {', '.join(CONFIGURATIONS)}")
    workdir.mkdir(parents=True, exist_ok=True)
    url = services.database(config, workdir)
    settings = {section: dict(values) for section, values in BASE_CONFIG.items()}
    if uses_redis(config):
        queue_name = f"faults-{uuid.uuid4().hex[:8]}"
        settings["queue"].update(broker="redis", redis_url=services.rd().url(), name=queue_name)
    project = Project(workdir=workdir, database_url=url, config=settings)
    return Deployment(config, project, _node_specs(config), history, WORKERS)
