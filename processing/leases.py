"""What both of our brokers need to know about the clusters claiming tasks: who
a cluster is, whether one of this host is still running, and how a redelivered
task is told so.

A cluster is known by django-q2's cluster id, which the broker learns from the
first heartbeat its sentinel saves (``set_stat``, before the sentinel forks the
pusher and the monitor, so they inherit it). Every heartbeat (0.5 s) renews the
cluster's lease. A task claimed by a cluster is handed out again:

* when its claim expires (``queue.retry`` after the claim: a worker died inside
  a cluster that lives on), as django-q2's brokers do;
* at once when its cluster ran on this host (same :func:`host_id`) and its
  sentinel process is gone: a crash, seen by the next cluster to start here or
  by any other cluster of this host;
* ``queue.dead_after`` seconds after its cluster's last heartbeat, for a
  cluster of another host, provided the claiming cluster's own heartbeats have
  been regular for that long (after an outage of the database or Redis, every
  lease looks stale: nobody takes over until the live ones had time to renew).

A cluster that stops cleanly (SIGTERM: its sentinel's last heartbeat says
``Stopped``, :func:`stat_stopped`) gives its lease up itself: marked dead with
that heartbeat, so whatever it still held is handed out at once, and no cluster
started later mistakes it for a crash.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

from ops.broker import PROCESS_TASK
from telemetron_site.config import get_config

__all__ = [
    "FULL_CLAIM_INTERVAL_S",
    "LEASE_CLEANUP_S",
    "cluster_id_of",
    "host_id",
    "mark_redelivered",
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


def mark_redelivered(payload: str) -> str:
    """A batch task's signed package, re-signed with ``redelivered=True`` for
    :func:`processing.tasks.process_batch` (which then looks for a bisection to
    resume); any other task as it is. Costs a package load and dump, paid on
    redeliveries only."""
    from django_q.signing import BadSignature, SignedPackage

    try:
        task = SignedPackage.loads(payload)
    except (BadSignature, TypeError, ValueError):
        return payload  # the pusher reports it
    if task.get("func") != PROCESS_TASK:
        return payload
    task["kwargs"] = {**task.get("kwargs", {}), "redelivered": True}
    return str(SignedPackage.dumps(task))


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
