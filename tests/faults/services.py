"""The dependencies a fault run stops and freezes: a PostgreSQL and a Redis of
the run's own, on free loopback ports under a temporary directory (never the
shared ones, which other work on the machine uses), each behind a
:class:`~tests.faults.tcpproxy.TcpProxy` that Telemetron connects through.

PostgreSQL: ``initdb`` (as the ``postgres`` user when run as root: PostgreSQL
refuses root), ``fsync = off`` (a process crash loses nothing; only the machine's
crash would, and that is not one of the faults). Redis: ``appendonly yes``,
``appendfsync everysec``, no RDB snapshots: killed and started again, it replays
its append-only file."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from tests.faults.tcpproxy import TcpProxy
from tests.support.procs import descendants, free_port, wait_until

__all__ = ["OwnPostgres", "OwnRedis", "signal_pids"]


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def pg_program(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server (Debian: postgresql)")
    return str(versions[-1])


def _as_postgres() -> dict[str, object]:
    """Popen arguments that run a PostgreSQL program as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


class OwnPostgres:
    def __init__(self) -> None:
        # A directory of its own in the system's temporary directory: the postgres
        # user must reach it (a test's temporary directory is its owner's alone).
        self.root = Path(tempfile.mkdtemp(prefix="telemetron-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.proxy = TcpProxy(self.port)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [pg_program(program), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **_as_postgres())
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.stdout}{result.stderr}")
        return result

    def start(self) -> OwnPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.up()
        self.proxy.start()
        return self

    def up(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=300 -c full_page_writes=off"
        )
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def down(self, mode: str = "immediate") -> None:
        """``immediate``: stopped hard (crash recovery at the next start); ``fast``."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def pids(self) -> list[int]:
        """The postmaster and every backend below it."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *sorted(descendants(postmaster))]

    def admin_url(self, dbname: str = "postgres") -> str:
        """A direct connection (not through the proxy): for the harness's own reads."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str) -> str:
        """What Telemetron is given: through the proxy."""
        return f"postgresql://postgres@127.0.0.1:{self.proxy.port}/{dbname}"

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        signal_pids(self.pids(), signal.SIGCONT)
        try:
            self.proxy.stop()
        finally:
            self.down("immediate")
            shutil.rmtree(self.root, ignore_errors=True)


class OwnRedis:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proxy = TcpProxy(self.port)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        self.up()
        self.proxy.start()
        return self

    def up(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.root), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--save", "", "--daemonize", "no", "--logfile", str(self.root / "redis.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, timeout=30)
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(30)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.poll() is None else []

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.proxy.port}/{db}"

    def direct_url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        try:
            self.proxy.stop()
        finally:
            self.kill()


def wait_reachable(url: str, timeout: float = 30.0) -> None:
    """Wait until a PostgreSQL URL accepts a connection."""

    def ok() -> bool:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            time.sleep(0.2)
            return False

    wait_until(ok, timeout=timeout)
