"""``manage.py serve``: the HTTP server (granian, WSGI) and a django-q2 cluster as
one process tree (:mod:`ops.process_tree`). SIGTERM/SIGINT stop both gracefully:
the server stops taking connections and flushes its buffers, the cluster
finishes its running batches; then the command exits 0.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from core import commands
from core.config import SQLITE_EXISTING_ENV, Settings, get_config
from ops.metrics.multiproc import ENV as METRICS_DIR_ENV
from ops.metrics.multiproc import multiproc_dir, multiproc_dir_prepare
from ops.process_tree import granian_command
from ops.static import static_collect_if_stale
from ops.supervise import TreeSpec, exec_supervisor
from plugins.chains import specs_from_config
from plugins.registry import get_registry
from plugins.sync import startup_sync


def _pending_migrations() -> int:
    executor = MigrationExecutor(connections["default"])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


# glibc's malloc gives each thread that allocates an arena of its own, up to 8 a
# core: under the batch load each of a granian worker's 16 blocking threads kept
# 1-3 MB in its own. Two arenas a process: ~20 MB less for the tree, no CPU
# measured (bench/RESULTS.md, "Issue 23, continued").
MALLOC_ARENAS = "2"


def malloc_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for the tree's children, with ``MALLOC_ARENA_MAX`` at
    :data:`MALLOC_ARENAS` unless ``environ`` sets it (an operator's own wins)."""
    return {"MALLOC_ARENA_MAX": MALLOC_ARENAS, **environ}


def static_collect_forked() -> bool:
    """:func:`ops.static.static_collect_if_stale` in a forked child (True when it
    collected): ``collectstatic`` leaves ~30 MB allocated in the process that runs
    it (hashing and compressing ~150 files), and ``serve`` stays up as the tree's
    supervisor for as long as the tree runs (bench/RESULTS.md, issue 23). An
    error in the child is raised here."""
    connections.close_all()  # (no connection shared with the child)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return bool(pool.apply(static_collect_if_stale))


def tree_children(
    cfg: Settings, *, host: str, port: int, with_cluster: bool
) -> list[tuple[str, list[str]]]:
    """The tree's commands: the web server, and the cluster unless web-only."""
    web = granian_command(
        host=host, port=port, workers=cfg.http.workers, threads=cfg.http.threads, respawn=True
    )
    children = [("web", web)]
    if with_cluster:
        children.append(("cluster", [sys.executable, "-m", "django", "qcluster"]))
    return children


RATE_FILE_ENV = "TELEMETRON_RATE_FILE"  # sources.buckets: the node's rate-limit buckets


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_ingest_warning(cfg: Settings, *, host: str) -> str | None:
    """One line when anyone who reaches the port can write any source's events."""
    if cfg.ingest.auth == "off" and not is_loopback(host):
        return (
            f'telemetron: warning: ingest.auth = "off" on {host}: anyone who can reach this'
            ' port can send events for any source id; set ingest.auth = "required"'
            " (README: Securing)"
        )
    return None


def serving_line(cfg: Settings, *, host: str, port: int, with_cluster: bool) -> str:
    if with_cluster:
        processing = f"{cfg.queue.workers} queue workers)"
    else:
        processing = "inline processing)" if cfg.queue.workers == 0 else "web only)"
    return (
        f"telemetron: serving on http://{host}:{port} "
        f"({cfg.http.workers} web workers x {cfg.http.threads} threads, {processing}"
    )


class Command(commands.Command):
    help = commands.describe(
        """Serve Telemetron: the HTTP API (granian, WSGI) plus a django-q2 worker
        cluster, as one process tree. Host, port and sizes come from config.toml /
        TELEMETRON_* variables; the options below override them. SIGTERM or SIGINT
        stops the tree gracefully.""",
        "manage.py serve",
        "manage.py serve --host 0.0.0.0 --port 8080 --web-only",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", help="Address to bind (default: http.host).")
        parser.add_argument("--port", type=int, help="Port to bind (default: http.port).")
        parser.add_argument(
            "--web-only",
            action="store_true",
            help="Run only the HTTP server, no worker cluster (for web nodes; run "
            "`manage.py qcluster` on worker nodes).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=60.0,
            help="Seconds to wait for children to finish after SIGTERM (default 60).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        cfg = get_config()
        pending = _pending_migrations()
        if pending:
            raise CommandError(
                f"{pending} database migration(s) not applied; run `python manage.py migrate` first"
            )
        for line in startup_sync(specs=specs_from_config(cfg), registry=get_registry()):
            # config.toml seeds the plugin rows (README, "Plugins: config.toml and the admin")
            self.stdout.write(line)
        if static_collect_forked():  # the admin's and /docs' files, for whitenoise
            self.stdout.write(f"telemetron: static files collected into {settings.STATIC_ROOT}")
        connections.close_all()
        host = opts["host"] or cfg.http.host
        port = opts["port"] if opts["port"] is not None else cfg.http.port
        with_cluster = not opts["web_only"] and cfg.queue.workers > 0
        timeout = opts["shutdown_timeout"]
        warning = open_ingest_warning(cfg, host=host)
        if warning:
            self.stderr.write(warning)
        # Every child records metrics into one fresh directory that /metrics merges.
        metrics_dir, own_metrics_dir = multiproc_dir_prepare(multiproc_dir())
        # The web processes share one file of rate-limit buckets (fresh per tree).
        rate_file = os.environ.get(RATE_FILE_ENV)
        own_rate_file = not rate_file
        if own_rate_file:
            fd, rate_file = tempfile.mkstemp(prefix="telemetron-rate-")
            os.close(fd)
        env = {
            **malloc_env(os.environ),
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
            METRICS_DIR_ENV: str(metrics_dir),
            RATE_FILE_ENV: str(rate_file),
            SQLITE_EXISTING_ENV: "1",  # migrated above: children never create the file
        }
        spec = TreeSpec(
            children=tree_children(cfg, host=host, port=port, with_cluster=with_cluster),
            shutdown_timeout_s=timeout,
            started_line=serving_line(cfg, host=host, port=port, with_cluster=with_cluster),
            resignal=["web"],
            remove_dirs=[str(metrics_dir)] if own_metrics_dir else [],
            remove_files=[str(rate_file)] if own_rate_file else [],
        )
        # This process becomes the tree's supervisor, without Django (ops/supervise.py).
        exec_supervisor(spec, env)
