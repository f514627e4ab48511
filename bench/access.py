"""CPU per request of the access checks on /ingest (issue 12's budget: key check,
origin check and rate limit together <= 15 µs): the exact calls the ingest path
makes (``write_access``, ``WriteAccess.refusal``, ``rate_take``, and for
browsers ``cors_mark`` + ``cors_response_headers``), on Django request objects
built like granian's, in one process, measured with ``time.process_time``.

    .venv/bin/python -m bench.access             # the table
    .venv/bin/python -m bench.access --redis     # + the Redis buckets (127.0.0.1:6379)

Each row is the median of 5 rounds of N calls; "baseline" is the same loop
calling nothing, subtracted from every row.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROUNDS = 5


def _setup(workdir: Path, extra: str) -> None:
    config = workdir / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{workdir / "db.sqlite3"}"\n'
        "[queue]\nworkers = 0\n[http]\nworkers = 1\n"
        '[ingest]\nauth = "required"\n' + extra + '\n[logging]\nlevel = "WARNING"\n'
    )
    os.environ["TELEMETRON_CONFIG"] = str(config)
    os.environ["DJANGO_SETTINGS_MODULE"] = "telemetron_site.settings"
    os.environ["TELEMETRON_RATE_FILE"] = str(workdir / "rate")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=io.StringIO())


def _measure(fn: Callable[[], Any], n: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(n):
            fn()
        rounds.append((time.process_time() - start) / n * 1e6)
    return statistics.median(rounds)


def _request(factory: Any, path: str, **headers: str) -> Any:
    return factory.post(path, b"{}", content_type="application/json", headers=headers)


def run(n: int, redis_url: str | None) -> list[tuple[str, float]]:
    from django.test import RequestFactory

    from core.config import get_config
    from sources.access import write_access
    from sources.cors import cors_mark, cors_response_headers
    from sources.ratelimit import rate_limiter, rate_take
    from sources.services import source_create

    _, key = source_create(source_id=1, name="plain")
    _, limited = source_create(
        source_id=2,
        name="limited",
        origins=["https://shop.example"],
        rate_limit=1e9,
        rate_burst=10**9,
    )
    _, small = source_create(source_id=3, name="small burst", rate_limit=1e9, rate_burst=100)
    factory = RequestFactory()
    plain = _request(factory, "/ingest", Authorization=f"Bearer {key.value}")
    browser = _request(factory, f"/ingest?key={limited.value}", Origin="https://shop.example")
    basic_limited = _request(factory, "/ingest", **{"X-Write-Key": limited.value})
    small_burst = _request(factory, "/ingest", **{"X-Write-Key": small.value})
    off_cfg = get_config().model_copy(
        update={"ingest": get_config().ingest.model_copy(update={"auth": "off"})}
    )

    def check(request: Any, source_id: int) -> None:
        access = write_access(request)
        assert access.refusal(source_id) is None
        source = access.source(source_id)
        if source is not None:
            rate_take([(source, 1)])

    def browser_check() -> None:
        cors_mark(browser)
        check(browser, 2)
        cors_response_headers(browser, {})  # type: ignore[arg-type]

    rows = [("baseline (empty loop)", _measure(lambda: None, n))]
    with get_config.override(off_cfg):
        rows.append(
            ('auth "off", no Source row (the default)', _measure(lambda: check(plain, 99), n))
        )
    rows.append(("Bearer key, no limit", _measure(lambda: check(plain, 1), n)))
    rows.append(
        (
            "X-Write-Key, node rate limit (flock'd file)",
            _measure(lambda: check(basic_limited, 2), n),
        )
    )
    rows.append(("?key= + Origin (CORS) + node rate limit", _measure(browser_check, n)))
    if redis_url:
        import redis

        from sources.redis_buckets import RedisBuckets

        client = redis.Redis.from_url(redis_url)
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        with rate_limiter.override(RedisBuckets(client, prefix=prefix)):
            label = "X-Write-Key, Redis, burst 10^9 (a round trip per 10^8 events)"
            rows.append((label, _measure(lambda: check(basic_limited, 2), n)))
            label = "X-Write-Key, Redis, burst 100 (a round trip per 10 events)"
            rows.append((label, _measure(lambda: check(small_burst, 3), n)))
        for k in client.scan_iter(f"{prefix}:*"):
            client.delete(k)
    base = rows[0][1]
    return [(label, value - base) if i else (label, value) for i, (label, value) in enumerate(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="calls per round (default 20000)")
    parser.add_argument(
        "--redis",
        nargs="?",
        const="redis://127.0.0.1:6379/0",
        default=None,
        help="also measure Redis buckets (default redis://127.0.0.1:6379/0)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="telemetron-bench-access-") as tmp:
        _setup(Path(tmp), "")
        rows = run(args.n, args.redis)
    print(f"CPU per request, median of {ROUNDS} rounds of {args.n:,} (µs, baseline subtracted)")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:7.2f}")
    print(f"load average: {os.getloadavg()[0]:.2f} (the machine may be shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
