"""The ORM broker's SQL statements (broker/orm.py), one per round trip, each with
its reason: the claim and its conditions, the leases, the workers' side of a
claim, the sentinel's housekeeping and an erasure's reads and writes."""

from __future__ import annotations

from typing import Any

from broker.models import ClusterLease, QueuedTask, SeenMessage

__all__ = ["orm_statements"]

_NOW = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def orm_statements(connection: Any) -> dict[str, str]:
    """The statements on ``connection``'s database (PostgreSQL or SQLite)."""
    q = connection.ops.quote_name
    now = _NOW[connection.vendor]
    tq, tl = q(QueuedTask._meta.db_table), q(ClusterLease._meta.db_table)
    ts = q(SeenMessage._meta.db_table)
    claims, expired = _claim_statements(connection, tq, tl, now)
    return {
        "enqueue": f"INSERT INTO {tq} (queue, payload, claimed_until, owner, deliveries)"
        " VALUES (%s, %s, 0, '', 0) RETURNING id",
        **claims,
        "purge": f"DELETE FROM {tq} WHERE queue = %s",
        "depth": f"SELECT COALESCE(SUM(CASE WHEN {expired} THEN 1 ELSE 0 END), 0),"
        f" COALESCE(SUM(CASE WHEN {expired} THEN 0 ELSE 1 END), 0)"
        f" FROM {tq} t WHERE t.queue = %s",
        "oldest": f"SELECT payload FROM {tq} WHERE queue = %s ORDER BY id LIMIT 1",
        **_erasure_statements(tq, now, expired),
        # Params: id, queue, host, pid, pid_start, stopped, stat, stat ttl, dead_after.
        # A clean stop's last heartbeat marks the lease dead (broker/leases.py).
        "heartbeat": f"INSERT INTO {tl} (cluster_id, queue, host, pid, pid_start, heartbeat,"
        " fresh_since, dead, stat, stat_expires)"
        f" VALUES (%s, %s, %s, %s, %s, {now}, {now}, %s, %s, {now} + %s)"
        " ON CONFLICT (cluster_id) DO UPDATE SET"
        f" fresh_since = CASE WHEN {tl}.dead OR {tl}.heartbeat < excluded.heartbeat - %s"
        f" THEN excluded.heartbeat ELSE {tl}.fresh_since END,"
        " heartbeat = excluded.heartbeat, dead = excluded.dead, pid = excluded.pid,"
        " pid_start = excluded.pid_start, stat = excluded.stat,"
        " stat_expires = excluded.stat_expires",
        "seen_purge": f"DELETE FROM {ts} WHERE seen_at < %s",
        "stats": f"SELECT cluster_id, stat FROM {tl} WHERE queue = %s AND stat <> ''"
        f" AND stat_expires >= {now}",
        # Followed by "id IN (...)" (_by_ids).
        "acknowledge": f"DELETE FROM {tq} WHERE",
        **_holder_statements(tq, now),
        **_housekeeping_statements(tq, tl, now),
    }


def _claim_statements(connection: Any, tq: str, tl: str, now: str) -> tuple[dict[str, str], str]:
    """The statements of a claim, and the condition of a task whose claim expired."""
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # Params: me, dead_after, me, dead_after. A task is claimable when its claim
    # expired, or its owner (another cluster) has no live lease: none, marked
    # dead, or stale while this cluster's own heartbeats have been regular.
    # A task a live worker of this host holds (holder_pid) never expires: the
    # sentinel's housekeeping gives it back when that worker is gone.
    expired = f"(t.claimed_until < {now} AND t.holder_pid = 0)"
    claimable = (
        f"({expired} OR (t.owner <> '' AND t.owner <> %s AND NOT EXISTS ("
        f"SELECT 1 FROM {tl} o WHERE o.cluster_id = t.owner AND NOT o.dead AND ("
        f"o.heartbeat >= {now} - %s OR NOT EXISTS (SELECT 1 FROM {tl} m"
        f" WHERE m.cluster_id = %s AND m.fresh_since <= {now} - %s)))))"
    )
    lease_alive = (
        f"EXISTS (SELECT 1 FROM {tl} WHERE cluster_id = %s AND NOT dead"
        f" AND heartbeat >= {now} - %s)"
    )
    claim = (
        f"UPDATE {tq} SET claimed_until = {now} + %s, owner = %s, claim_token = %s,"
        f" holder_pid = 0, holder_start = 0, deliveries = deliveries + 1"
        f" WHERE id IN (SELECT t.id FROM {tq} t WHERE t.queue = %s AND {{}}"
        f" ORDER BY t.id LIMIT %s{skip_locked}) AND {lease_alive}"
        " RETURNING id, payload, deliveries"
    )
    return {
        "peek": f"SELECT 1 FROM {tq} t WHERE t.queue = %s AND {claimable} LIMIT 1",
        # Params: retry, me, token, queue, <claimable>, bulk, me, dead_after.
        "claim": claim.format(claimable),
        # The same without looking for dead clusters' tasks (params: no <claimable>).
        "claim_waiting": claim.format(expired),
        # Params: retry, token, queue, me, me, dead_after; followed by
        # " IN (...) RETURNING …" (the lost claims' tokens, OrmBroker._claims_found).
        # The tasks of claims whose answers were lost that this cluster still
        # holds and no worker has started, claimed again under a token of this
        # lookup's own (its answer may be lost too).
        "found": f"UPDATE {tq} SET claimed_until = {now} + %s, claim_token = %s"
        f" WHERE queue = %s AND owner = %s AND holder_pid = 0 AND {lease_alive}"
        " AND claim_token",
    }, expired


def _housekeeping_statements(tq: str, tl: str, now: str) -> dict[str, str]:
    """The statements of a sentinel's look at the leases of its host."""
    return {
        "same_host": f"SELECT cluster_id, pid, pid_start FROM {tl}"
        " WHERE host = %s AND NOT dead AND cluster_id <> %s",
        "mark_dead": f"UPDATE {tl} SET dead = TRUE"
        " WHERE cluster_id = %s AND pid = %s AND pid_start = %s",
        "cleanup": f"DELETE FROM {tl} WHERE (dead OR heartbeat < {now} - %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {tq} WHERE owner = {tl}.cluster_id)",
    }


def _holder_statements(tq: str, now: str) -> dict[str, str]:
    """The statements of the workers' side of a claim (broker/workers.py)."""
    released = f"UPDATE {tq} SET claimed_until = 0, owner = '', holder_pid = 0, holder_start = 0"
    return {
        # Params: queue, owner. The workers holding a cluster's tasks.
        "holders": f"SELECT DISTINCT holder_pid, holder_start FROM {tq}"
        " WHERE queue = %s AND owner = %s AND holder_pid <> 0",
        # Params: queue, owner, pid, start. A dead worker's tasks given back.
        "release_holder": f"{released} WHERE queue = %s AND owner = %s"
        " AND holder_pid = %s AND holder_start = %s",
        # Params: queue, owner. Everything a cluster holds given back.
        "release_owner": f"{released} WHERE queue = %s AND owner = %s",
        # Followed by "id IN (...)" (_by_ids).
        "release": f"{released} WHERE",
        # Params: pid, start, owner. A worker takes over its cluster's claim.
        "adopt": f"UPDATE {tq} SET holder_pid = %s, holder_start = %s"
        " WHERE owner = %s AND holder_pid = 0 AND",
        # Params: retry, owner, pid, start. Back to the cluster, expiring from now.
        "disown": f"UPDATE {tq} SET holder_pid = 0, holder_start = 0,"
        f" claimed_until = {now} + %s WHERE owner = %s AND holder_pid = %s"
        " AND holder_start = %s AND",
    }


def _erasure_statements(tq: str, now: str, expired: str) -> dict[str, str]:
    """An erasure's reads (params: queue, after id, up to id, chunk) and writes of
    a waiting task (broker/erasure.py). ``expired``: a task no cluster and no
    worker holds (a worker's task stays held past its claim's expiry)."""
    return {
        "scan": f"SELECT t.id, t.payload, NOT {expired} FROM {tq} t"
        " WHERE t.queue = %s AND t.id > %s AND t.id <= %s ORDER BY t.id LIMIT %s",
        "last_id": f"SELECT MAX(id) FROM {tq} WHERE queue = %s",
        "replace": f"UPDATE {tq} SET payload = %s WHERE id = %s"
        f" AND claimed_until < {now} AND holder_pid = 0",
        "remove": f"DELETE FROM {tq} WHERE id = %s AND claimed_until < {now} AND holder_pid = 0",
    }
