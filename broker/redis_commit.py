"""The commit of the Redis broker (broker/redis_streams.py) and the resolution of
one whose answer was lost (broker/commit.py).

A commit is one Lua script (``_COMMIT``): the record of its event ids, its
stream entries and its marker (a key named after the commit's id), in one
atomic step, on a connection taken from the pool first (an error taking it
means nothing was sent: :class:`~broker.interface.CommitFailed`). Its answer is
waited for until the request's deadline less ``RESOLVE_RESERVE_S``: a frozen
Redis runs it and answers when it wakes, in order. When the answer is lost
anyway, ``_RESOLVE`` on a new connection tells whether the marker is there,
and when it is not, writes a tombstone under the same key: the commit, should
it still arrive, is refused.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.utils import SENTINEL

from broker.interface import CommitFailed

__all__ = ["RESOLVE_CONNECT_S", "answer_wait", "commit_resolve", "commit_run"]

# KEYS: the commit's marker, the dedup keys of event ids, then the stream.
# ARGV: marker ttl ms, dedup window ms, then the tasks.
# A commit whose marker says "landed" ran already (a resend): nothing to do. One
# voided by its resolver (_RESOLVE) is refused. Else, when none of the ids is
# seen: records them all (expiring after the window), adds the tasks and sets
# the marker, in one atomic step; when some are seen, adds nothing and returns
# their 1-based indexes.
_COMMIT = """
local marker = redis.call('GET', KEYS[1])
if marker == 'landed' then return {} end
if marker then return redis.error_reply('VOIDED this commit was voided by its resolver') end
local n = #KEYS - 1
local seen = {}
for i = 2, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then seen[#seen + 1] = i - 1 end
end
if #seen > 0 then return seen end
for i = 2, n do redis.call('SET', KEYS[i], '1', 'PX', ARGV[2]) end
for i = 3, #ARGV do redis.call('XADD', KEYS[n + 1], '*', 't', ARGV[i]) end
redis.call('SET', KEYS[1], 'landed', 'PX', ARGV[1])
return seen
"""

# KEYS: a commit's marker. ARGV: marker ttl ms. 1 when the commit landed; else
# voids it (the commit, if it arrives later, is refused) and returns 0.
_RESOLVE = """
local marker = redis.call('GET', KEYS[1])
if marker == 'landed' then return 1 end
if not marker then redis.call('SET', KEYS[1], 'void', 'PX', ARGV[1]) end
return 0
"""

_COMMIT_SHA = hashlib.sha1(_COMMIT.encode()).hexdigest()
# A commit's marker outlives any resolution of it (a request waits at most
# ingest.commit_timeout, its connection to Redis is then closed).
_MARKER_TTL_MS = 15 * 60 * 1000
RESOLVE_CONNECT_S = 2.0  # the resolver's connect timeout when no bound is set
_RESOLVE_PAUSE_S = 0.1  # between a failed connection and the next
_RESOLVE_RESERVE_S = 1.0  # of a commit's deadline, left for its resolution


def _run_script(
    connection: redis.connection.AbstractConnection,
    source: str,
    sha: str,
    keys: list[str],
    args: list[Any],
    wait: float | None = None,
) -> Any:
    """EVALSHA on ``connection``; EVAL the first time Redis lacks the script.
    ``wait``: seconds its answer is waited for (default: the socket timeout)."""
    timeout: Any = SENTINEL if wait is None else wait
    connection.send_command("EVALSHA", sha, len(keys), *keys, *args)
    try:
        return connection.read_response(timeout=timeout)
    except redis.exceptions.NoScriptError:
        connection.send_command("EVAL", source, len(keys), *keys, *args)
        return connection.read_response(timeout=timeout)


def answer_wait(deadline: float, floor: float) -> float:
    """How long a commit's answer is waited for: until ``deadline`` less the
    time its resolution may take, and at least ``floor``."""
    return max(floor, deadline - time.monotonic() - _RESOLVE_RESERVE_S)


def _pause(deadline: float) -> None:
    time.sleep(max(0.0, min(_RESOLVE_PAUSE_S, deadline - time.monotonic())))


def commit_run(
    client: redis.Redis,
    keys: list[str],
    window_ms: int,
    tasks: Sequence[str],
    wait: float | None,
) -> Any:
    """``_COMMIT`` with ``keys`` (the marker, the ids' keys, the stream); its
    answer (the 1-based indexes of the ids already seen) waited for ``wait``
    seconds (None: the client's socket timeout)."""
    pool = client.connection_pool
    try:
        connection = pool.get_connection()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise CommitFailed(f"Redis not reached: {exc}") from exc
    try:
        args = [_MARKER_TTL_MS, window_ms, *tasks]
        return _run_script(connection, _COMMIT, _COMMIT_SHA, keys, args, wait)
    except redis.ResponseError:
        raise  # a refusal, or a script error: answered, not lost
    except BaseException:
        connection.disconnect()  # an answer may still come: never read it as another's
        raise
    finally:
        pool.release(connection)


def commit_resolve(
    connect: Callable[..., redis.Redis], key: str, *, deadline: float, connect_timeout: float
) -> bool | None:
    """``_RESOLVE`` of the marker ``key`` on a connection of its own
    (``connect(**options)``), sent once and its answer awaited until
    ``deadline`` (a frozen Redis runs it when it wakes, after the commit if the
    commit reached it first); sent again on a new connection when one fails.
    True: landed; False: did not, and now never will; None: no answer in time."""
    while (left := deadline - time.monotonic()) > 0:
        client = connect(
            socket_timeout=left,
            socket_connect_timeout=min(left, connect_timeout),
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.eval(_RESOLVE, 1, key, _MARKER_TTL_MS))
        except (redis.ConnectionError, redis.TimeoutError):
            _pause(deadline)  # a connect that failed or timed out: again
        finally:
            client.close()
    return None
