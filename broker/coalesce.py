"""A claim's batch tasks handed to a queue worker as one task.

Our brokers claim ``queue.bulk`` tasks at a time; django-q2 then runs each on
its own: a pickle to the worker, a pickle of the result to the monitor, an
acknowledgement, and, for the StorageProcessor, a merge transaction of its own.
With 100-event batches those hops and the merge's page writes cost more than
the folding (bench/RESULTS.md). So our brokers' ``dequeue`` (with
``queue.coalesce``, the default) returns the claimed batch tasks, in order, as
one task of :func:`processing.tasks.process_batches` (``PROCESS_MANY``),
whose acknowledgement id is the tuple of theirs, up to :data:`MAX_CHARS` of
event JSON per task.

What stays as it was: each batch keeps its id, its retries, dead letters,
bisection and metrics; a redelivered batch is marked as before (the
``redelivered`` flag travels with it); a task that is not a batch (or whose
package does not load) is passed on untouched, in its place. The coalesced task
is acknowledged when all its batches are done, so a cluster that dies in the
middle has all of them handed out again: the ledger skips what was merged.
"""

from __future__ import annotations

import uuid
from typing import Any

from django_q.signing import SignedPackage

from broker.packages import PROCESS_MANY, BatchArgs, batch_args

__all__ = ["MAX_CHARS", "ack_ids", "coalesce"]

# Event JSON per coalesced task: ~2,500 events of ~100 bytes. Bounds one merge
# transaction (SQLite's write lock, which ingest's commits wait for) and a task's
# memory.
MAX_CHARS = 250_000


# A batch task in a claim: (ack id, its package, its arguments, the package loaded).
_Member = tuple[Any, str, BatchArgs, dict[str, Any]]


def ack_ids(ack_id: Any) -> list[Any]:
    """The broker's ids behind an acknowledgement id (a coalesced task's tuple)."""
    return list(ack_id) if isinstance(ack_id, tuple) else [ack_id]


def coalesce(tasks: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """``(ack_id, signed package)`` of a claim, the runs of batch tasks in it
    made one task each (a run of one kept as it was)."""
    out: list[tuple[Any, str]] = []
    group: list[_Member] = []
    chars = 0

    def close() -> None:
        nonlocal chars
        if len(group) == 1:
            out.append((group[0][0], group[0][1]))
        elif group:
            out.append(_combined(group))
        group.clear()
        chars = 0

    for ack_id, payload in tasks:
        found = batch_args(payload)
        if found is None:
            close()
            out.append((ack_id, payload))
            continue
        args, task = found
        if group and chars + len(args[1]) > MAX_CHARS:
            close()
        group.append((ack_id, payload, args, task))
        chars += len(args[1])
    close()
    return out


def _combined(group: list[_Member]) -> tuple[Any, str]:
    first = group[0][3]
    task: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": f"{first.get('name', '')} +{len(group) - 1}",
        "func": PROCESS_MANY,
        "args": ([args for _, _, args, _ in group],),
        "kwargs": {},
        "started": first.get("started"),
    }
    if any(t.get("ack_failure") for _, _, _, t in group):
        task["ack_failure"] = True
    return tuple(ack_id for ack_id, _, _, _ in group), str(SignedPackage.dumps(task))
