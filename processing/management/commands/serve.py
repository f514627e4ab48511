"""``manage.py serve``: the HTTP server (granian, WSGI) and a django-q2 cluster as
one process tree. SIGTERM/SIGINT stop both gracefully: the server stops taking
connections and flushes its buffers, the cluster finishes its running batches;
then the command exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from plugins.loader import get_registry, specs_from_config
from plugins.sync import startup_sync
from telemetron_site.config import get_config
from telemetron_site.metrics_multiproc import ENV as METRICS_DIR_ENV
from telemetron_site.metrics_multiproc import multiproc_dir, multiproc_dir_prepare


def _die_with_parent() -> None:
    """In a child: get SIGTERM if serve dies without forwarding it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _pending_migrations() -> int:
    executor = MigrationExecutor(connections["default"])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = (
        "Serve Telemetron: the HTTP API (granian, WSGI) plus a django-q2 worker cluster, "
        "as one process tree. Host, port and sizes come from config.toml / TELEMETRON_* "
        "variables; the options below override them."
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
            self.stdout.write(line)  # config.toml seeds the plugin rows (DESIGN §5)
        connections.close_all()
        host = opts["host"] or cfg.http.host
        port = opts["port"] if opts["port"] is not None else cfg.http.port
        with_cluster = not opts["web_only"] and cfg.queue.workers > 0

        web_cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(cfg.http.workers),
            "--blocking-threads",
            str(cfg.http.threads),
            "--no-ws",
            "--respawn-failed-workers",
            "--log-level",
            "warning",
            "--workers-kill-timeout",
            str(int(opts["shutdown_timeout"])),
            "telemetron_site.wsgi:application",
        ]
        # Every child records metrics into one fresh directory that /metrics merges.
        metrics_dir, own_metrics_dir = multiproc_dir_prepare(multiproc_dir())
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
            METRICS_DIR_ENV: str(metrics_dir),
        }
        children: list[tuple[str, subprocess.Popen[bytes]]] = []
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            if not stopping:
                stopping = True
                self.stderr.write(f"telemetron: {signal.Signals(signum).name}, shutting down")
                for _, child in children:
                    if child.poll() is None:
                        child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        children.append(
            (
                "web",
                subprocess.Popen(
                    web_cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent
                ),
            )
        )
        if with_cluster:
            cluster_cmd = [sys.executable, "-m", "django", "qcluster"]
            children.append(
                (
                    "cluster",
                    subprocess.Popen(
                        cluster_cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent
                    ),
                )
            )
        self.stdout.write(
            f"telemetron: serving on http://{host}:{port} "
            f"({cfg.http.workers} web workers x {cfg.http.threads} threads, "
            + (
                f"{cfg.queue.workers} queue workers)"
                if with_cluster
                else ("inline processing)" if cfg.queue.workers == 0 else "web only)")
            )
        )
        self.stdout.flush()

        # Supervise: if one child dies on its own, stop the other and fail.
        failed: str | None = None
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    failed = f"{name} process exited with code {child.returncode}"
                    stop(signal.SIGTERM, None)
                    break
            time.sleep(0.2)

        deadline = time.monotonic() + opts["shutdown_timeout"]
        codes: dict[str, int] = {}
        for name, child in children:
            try:
                codes[name] = child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                codes[name] = child.wait()
                failed = failed or f"{name} process did not stop in time and was killed"
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if failed:
            raise CommandError(failed)
        self.stdout.write("telemetron: stopped")
