"""The queue worker's side of a claim (:mod:`broker.base`): a worker adopts the
claim of the task it starts, and acknowledges the task itself when it is done,
before it hands the result to the cluster's monitor. So a claim is held by the
process that runs it (a dead worker's comes back at once, a live worker's never),
and a monitor that dies loses no acknowledgement.

Connected to django-q2's signals sent in the worker process (``pre_execute``,
``post_execute_in_worker``) by :class:`broker.apps.BrokerConfig`. A task run
inline (``queue.workers = 0``) has no claim and is left alone.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import connections

from broker.base import LeasedBroker
from broker.interface import queue_broker
from core.memory import trim_now_and_then

__all__ = ["task_finished", "task_started"]

log = logging.getLogger("telemetron.processing")

_SETTLE_BACKOFF_MAX_S = 10.0


def _broker() -> LeasedBroker | None:
    broker = queue_broker()
    return broker if isinstance(broker, LeasedBroker) else None


def task_started(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """``pre_execute``: this worker holds the task's claim from now on."""
    ack_id = task.get("ack_id")
    broker = _broker() if ack_id else None
    if broker is None:
        return
    try:
        adopted = broker.adopt(ack_id)
    except Exception:
        # The store is away: the claim stays its cluster's (it expires after
        # queue.retry); the task runs, and its acknowledgement is tried after.
        log.exception("could not adopt the claim of task %s", task.get("name"))
        return
    if not adopted:
        # Taken over meanwhile (this cluster looked dead, or its claim expired
        # while the task waited for a worker): another cluster runs it and
        # acknowledges it. Running it here too is harmless (the batch-id ledger
        # counts a batch once); acknowledging it here would not be.
        log.warning(
            "task %s was handed to another cluster while it waited for a worker: run"
            " without acknowledging it here",
            task.get("name"),
        )
        task.pop("ack_id", None)


def task_finished(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """``post_execute_in_worker``: acknowledge a task done (the monitor then has
    nothing to acknowledge); give a failed one back to the cluster's claim. The
    memory the task freed goes back to the system now and then."""
    trim_now_and_then()
    ack_id = task.get("ack_id")
    broker = _broker() if ack_id else None
    if broker is None:
        return
    done = bool(task.get("success") or task.get("ack_failure"))
    try:
        _settle(broker, ack_id, done=done)
    except Exception:
        # The store is away. A claim this live worker holds would never come back:
        # a thread of this worker settles it once the store answers (and the
        # monitor, handed the ack id, acknowledges a task done too).
        log.exception("could not settle the claim of task %s: retrying", task.get("name"))
        threading.Thread(
            target=_settle_later, args=(broker, ack_id, done), name="settle", daemon=True
        ).start()
        return
    if done:
        task.pop("ack_id")


def _settle(broker: LeasedBroker, ack_id: Any, *, done: bool) -> None:
    if done:
        broker.acknowledge(ack_id)
    else:
        broker.disown(ack_id)


def _settle_later(broker: LeasedBroker, ack_id: Any, done: bool) -> None:
    delay = 0.5
    while True:
        time.sleep(delay)
        try:
            _settle(broker, ack_id, done=done)
            return
        except Exception as exc:
            delay = min(delay * 2, _SETTLE_BACKOFF_MAX_S)
            log.warning("the claim of a finished task is still not settled: %s", exc)
        finally:
            connections.close_all()  # this thread's own database connection
