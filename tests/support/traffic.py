"""Client-side traffic for real-process tests: many requests from several
concurrent clients (bounded in count; each request has a timeout), and
waiting for the stats to reach a number."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support.procs import wait_until

__all__ = ["Post", "post_concurrently", "wait_for_totals"]

# (path, JSON body): one POST.
Post = tuple[str, Any]


def post_concurrently(
    base_url: str, posts: Sequence[Post], *, clients: int, timeout: float = 30.0
) -> list[httpx.Response]:
    """Send every POST once, ``clients`` at a time, each client on its own
    keep-alive connection; return the responses in the order of ``posts``."""
    local = threading.local()
    opened: list[httpx.Client] = []
    opened_lock = threading.Lock()

    def send(post: Post) -> httpx.Response:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base_url, timeout=timeout)
            with opened_lock:
                opened.append(client)
        path, body = post
        return client.post(path, json=body)

    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(send, posts))
    finally:
        for client in opened:
            client.close()


def wait_for_totals(
    client: httpx.Client, *, events: int, sources: int | None = None, timeout: float = 60.0
) -> dict[str, int]:
    """Poll GET /stats until ``events_count`` reaches ``events`` (and
    ``sources_count`` reaches ``sources`` when given); return the last body.
    It returns as soon as the numbers are reached or passed, so callers
    assert equality themselves (a surplus is a double count)."""

    def reached() -> dict[str, int] | None:
        body: dict[str, int] = client.get("/stats").json()
        done = body["events_count"] >= events and (
            sources is None or body["sources_count"] >= sources
        )
        return body if done else None

    result: dict[str, int] = wait_until(reached, timeout=timeout, interval=0.1)
    return result
