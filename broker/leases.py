"""The leases of the clusters claiming tasks, for both of our brokers: who a
cluster is, whether one of this host is still running, and what its heartbeat
says (for /readyz and the console).

A cluster is known by django-q2's cluster id, which the broker learns from the
first heartbeat its sentinel saves (``set_stat``, before the sentinel forks the
pusher and the monitor, so they inherit it). Every heartbeat (0.5 s) renews the
cluster's lease. A task claimed by a cluster is handed out again:

* when the queue worker that adopted it is gone (the cluster's sentinel looks
  at its workers every second: :mod:`broker.base`), never while it lives;
* when its claim expires (``queue.retry`` after the claim) and no worker adopted
  it, as django-q2's brokers do, or at once when the cluster restarts its
  processes (``ops/cluster.py``);
* at once when its cluster ran on this host (same :func:`host_id`) and its
  sentinel process is gone: a crash, seen by the next cluster to start here or
  by any other cluster of this host;
* ``queue.dead_after`` seconds after its cluster's last heartbeat, for a
  cluster of another host, provided the claiming cluster's own heartbeats have
  been regular for that long (after an outage of the database or Redis, every
  lease looks stale: nobody takes over until the live ones had time to renew).

A redelivered batch task is marked so (:func:`broker.packages.mark_redelivered`).
The lease also carries django-q2's status of its cluster (``Stat``, saved with
a 3 s expiry), where every process and node reads it: :func:`cluster_statuses`.

A cluster that stops cleanly (SIGTERM: its sentinel's last heartbeat says
``Stopped``, :func:`stat_stopped`) gives its lease up itself: marked dead with
that heartbeat, so whatever it still held is handed out at once, and no cluster
started later mistakes it for a crash.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from broker.interface import QueueBroker
from core.config import get_config

__all__ = [
    "FULL_CLAIM_INTERVAL_S",
    "LEASE_CLEANUP_S",
    "ClusterStatus",
    "Lease",
    "cluster_id_of",
    "cluster_statuses",
    "host_id",
    "process_alive",
    "process_start",
    "stat_stopped",
]

# Leases of dead clusters holding nothing are removed after this long.
LEASE_CLEANUP_S = 3600.0
# A pusher looks for dead clusters' tasks after an empty poll and at least this
# often; in between its claims scan the waiting tasks only.
FULL_CLAIM_INTERVAL_S = 1.0


@cache
def host_id() -> str:
    """This machine's identity for crash detection: ``queue.host_id``, else the
    host name with the kernel's boot id and this PID namespace (two containers
    with one host name never read each other's process ids)."""
    configured = get_config().queue.host_id
    if configured:
        return configured
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append(f"no-proc-{os.getpid()}")  # nothing to check processes with
    return "/".join(parts)[:255]


def process_start(pid: int) -> int:
    """The start time of process ``pid`` (clock ticks since boot), 0 if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, start: int) -> bool:
    """Is process ``pid``, started at ``start``, still running on this host?
    Unknown (no /proc, or no start time recorded) counts as alive."""
    if not start or not Path("/proc/self/stat").exists():
        return True
    return process_start(pid) == start


def cluster_id_of(stat_key: str) -> str:
    """The cluster id in a django-q2 status key (``django_q:<name>:cluster:<id>``)."""
    return stat_key.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Lease:
    """A cluster's lease as the housekeeping reads it: whose sentinel holds it."""

    cluster_id: str
    host: str
    pid: int
    pid_start: int


# --- reading the heartbeats ------------------------------------------------------------


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    host: str
    status: str
    workers: int
    age_s: float

    @property
    def alive(self) -> bool:
        from django_q.conf import Conf

        return self.status in (Conf.IDLE, Conf.WORKING)


def cluster_statuses(broker: QueueBroker) -> list[ClusterStatus]:
    """The clusters that reported in the last few seconds."""
    from django.core.signing import BadSignature
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    now = time.time()
    found: list[ClusterStatus] = []
    for pack in broker.get_stats(f"{Conf.Q_STAT}:*") or []:
        if not pack:
            continue
        try:
            stat = SignedPackage.loads(pack)
        except BadSignature:
            continue
        found.append(
            ClusterStatus(
                cluster_id=str(stat.cluster_id),
                host=str(stat.host),
                status=str(stat.status),
                workers=len(stat.workers),
                age_s=round(max(0.0, now - stat.timestamp.timestamp()), 3),
            )
        )
    return found


def stat_stopped(stat: str) -> bool:
    """Is this heartbeat (django-q2's signed status of a cluster) the last one of
    a clean stop: the sentinel's pusher, workers and monitor all gone?"""
    if not stat:
        return False
    from django_q.conf import Conf
    from django_q.signing import BadSignature, SignedPackage

    try:
        status = SignedPackage.loads(stat)
    except (BadSignature, TypeError, ValueError):
        return False
    return getattr(status, "status", None) == Conf.STOPPED
