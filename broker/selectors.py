"""Reads of the queue for the pages that show it (/readyz, /metrics, the
console): its depth, the oldest batch still in it, the clusters' heartbeats
(:func:`broker.leases.cluster_statuses`)."""

from __future__ import annotations

from datetime import datetime

from broker.interface import Depth, queue_broker
from plugins.base import batch_received_at

__all__ = ["oldest_batch_received_at", "queue_depth"]


def queue_depth() -> Depth:
    """Batches waiting for a worker, and claimed by one."""
    return queue_broker().depth()


def oldest_batch_received_at() -> datetime | None:
    """When the oldest batch still in the broker (waiting, or claimed and not yet
    acknowledged) was received; None when the queue is empty."""
    from django.core.signing import BadSignature
    from django_q.signing import SignedPackage

    payload = queue_broker().oldest_task()
    if not payload:
        return None
    try:
        task = SignedPackage.loads(payload)
    except BadSignature:
        return None
    return batch_received_at(str(task.get("name", "")))
