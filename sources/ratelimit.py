"""Per-source rate limits: a request's events, counted per source, are taken
from the sources' token buckets all at once or not at all (429 +
``Retry-After``, nothing accepted). Where the buckets live is
``ingest.rate_limit``: ``node`` (:mod:`sources.buckets`, exact across the web
processes of one node) or ``redis`` (:mod:`sources.redis_buckets`, across
every node)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Protocol

from core.config import get_config
from core.errors import PayloadTooLarge, TooManyRequests
from core.process_wide import process_wide
from sources.buckets import ENV, BucketTable, Want
from sources.directory import SourceEntry

__all__ = ["Buckets", "Limited", "rate_limiter", "rate_take"]


class Buckets(Protocol):
    def take(self, wants: list[Want]) -> float: ...
    def give_back(self, wants: list[Want]) -> None: ...


@process_wide
def rate_limiter() -> Buckets:
    cfg = get_config()
    if cfg.ingest.rate_limit == "redis":
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from sources.redis_buckets import RedisBuckets

        # A request's round trip, bounded and never retried: an unreachable Redis
        # means no limit (redis_buckets.py), not a request held for seconds.
        timeout = min(1.0, cfg.ingest.store_timeout)
        client = redis.Redis.from_url(
            cfg.queue.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return RedisBuckets(client, prefix=cfg.queue.name)
    return BucketTable(os.environ.get(ENV) or None)


class Limited:
    """The tokens a request took, to give back if it is refused later (503)."""

    def __init__(self, wants: list[Want]) -> None:
        self.wants = wants

    def give_back(self) -> None:
        if self.wants:
            rate_limiter().give_back(self.wants)


def rate_take(counts: Iterable[tuple[SourceEntry, int]]) -> Limited:
    """Take ``n`` tokens of each limited source, or raise 429 (or 413 for a
    request no bucket could ever hold)."""
    wants: list[Want] = []
    for source, n in counts:
        if source.rate is None:
            continue
        if n > source.burst:
            raise PayloadTooLarge(
                f"{n} events for source {source.id} exceed its rate limit's burst of"
                f" {source.burst}: send at most {source.burst} events per request"
            )
        wants.append((source.id, n, source.rate, source.burst))
    if not wants:
        return Limited(wants)
    wait = rate_limiter().take(wants)
    if wait > 0:
        ids = ", ".join(str(w[0]) for w in wants)
        raise TooManyRequests(
            f"Rate limit exceeded for source {ids}; retry in {wait:.2f} s",
            max(1, math.ceil(wait)),
        )
    return Limited(wants)
