"""What transformers cost per event, in one process (``time.process_time``,
median of 5 rounds):

* each built-in alone, ``transform()`` on one event: ``CelTransformer`` with 5
  rules, ``PiiRedactor`` with its patterns on a 1 kB event, ``ClientContext``
  (a MaxMind lookup, a user agent seen before and one never seen), ``Sampler``;
* the batch path of ``/ingest/batch`` (parse, access, validators, transformers:
  ``ingest.services.batch_ingest`` with the queue commit left out, the same for
  every row) on a body of 100 events, with no transformer, each built-in, all
  four; per event.

``--path-only`` measures the batch path with no transformer alone: the same
script run on another checkout (one without transformers) gives the figure to
compare (bench/RESULTS.md says how).

    .venv/bin/python -m bench.transformers [--rounds-events 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROUNDS = 5
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CEL_RULES = [
    {"name": "debug", "when": 'event.type == "debug"', "action": "drop"},
    {
        "name": "total",
        "when": "has(event.data.price) && has(event.data.quantity)",
        "action": "set",
        "field": "data.total",
        "value": "event.data.price * double(event.data.quantity)",
    },
    {"when": 'event.data.currency == "EUR"', "action": "set", "field": "data.eu", "value": "true"},
    {"action": "rename", "field": "data.sku", "to": "data.product.sku"},
    {"action": "delete", "field": "data.internal"},
]
PII = {
    "drop_paths": ["data.phone"],
    "hash_paths": ["data.userId"],
    "secret": "bench-secret-0123456789",
    "custom": {"order": "ORD-[0-9]{6}"},
}


def _event(i: int = 0) -> dict[str, Any]:
    """A ~250-byte purchase."""
    return {
        "sourceId": 1,
        "type": "purchase",
        "timestamp": "2026-12-07T10:00:00Z",
        "id": f"evt-{i:08d}",
        "data": {
            "price": 12.5,
            "quantity": 2,
            "currency": "EUR",
            "sku": "ABC-1",
            "internal": "x",
            "userId": "user-42",
            "page": "/checkout",
        },
    }


def _event_1kb() -> dict[str, Any]:
    """A 1 kB event with e-mail, card, IP and custom matches among plain text."""
    event = _event()
    event["data"].update(
        {
            "phone": "+44 20 7946 0000",
            "message": (
                "Customer ann.lee@example.org paid with 4111 1111 1111 1111 from 192.0.2.55, "
                "order ORD-123456, asked about delivery times and the return policy. "
            )
            * 3,
            "notes": ["called back at 10:30", "address confirmed", "version 1.2.3 of the app"],
            "referrer": "https://www.example.com/products/abc-1?utm_source=newsletter",
            "items": [{"sku": f"SKU-{n}", "name": f"Item number {n}", "qty": n} for n in range(5)],
        }
    )
    size = len(json.dumps(event))
    assert 900 <= size <= 1200, size
    return event


def _setup(workdir: Path) -> None:
    config = workdir / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{workdir / "db.sqlite3"}"\n'
        '[queue]\nworkers = 0\n[http]\nworkers = 1\n[logging]\nlevel = "WARNING"\n'
    )
    os.environ["TELEMETRON_CONFIG"] = str(config)
    os.environ["DJANGO_SETTINGS_MODULE"] = "telemetron_site.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=io.StringIO())


def _median_us(run: Callable[[], int]) -> float:
    """``run`` does some work and says on how many events: µs per event."""
    rounds = []
    for _ in range(ROUNDS):
        start = time.process_time()
        n = run()
        rounds.append((time.process_time() - start) / n * 1e6)
    return statistics.median(rounds)


def _alone(n: int, workdir: Path) -> list[tuple[str, float]]:
    from ingest.transformers.cel_rules import CelTransformer
    from ingest.transformers.client_context import ClientContext
    from ingest.transformers.pii import PiiRedactor
    from ingest.transformers.sampler import Sampler
    from plugins.base import ClientInfo, EventDropped
    from tests.support.geoip import geoip_database_write

    mmdb = geoip_database_write(workdir / "city.mmdb")
    client = ClientInfo("198.51.100.77", UA)
    cases: list[tuple[str, Any, Callable[[int], dict[str, Any]], Callable[[int], ClientInfo]]] = [
        (
            "CelTransformer, 5 rules",
            CelTransformer(CelTransformer.Params.model_validate({"rules": CEL_RULES})),
            lambda i: _event(i),
            lambda i: client,
        ),
        (
            "PiiRedactor, paths + 4 patterns, 1 kB event",
            PiiRedactor(PiiRedactor.Params.model_validate(PII)),
            lambda i: _event_1kb(),
            lambda i: client,
        ),
        (
            "ClientContext, GeoIP + a user agent seen before",
            ClientContext(ClientContext.Params(geoip_database=str(mmdb))),
            lambda i: _event(i),
            lambda i: client,
        ),
        (
            "ClientContext, GeoIP + a user agent never seen",
            ClientContext(ClientContext.Params(geoip_database=str(mmdb))),
            lambda i: _event(i),
            lambda i: ClientInfo("198.51.100.77", f"{UA} Build/{i}"),
        ),
        (
            "Sampler, 1 in 10 by id",
            Sampler(Sampler.Params(default_rate=10)),
            lambda i: _event(i),
            lambda i: client,
        ),
    ]
    out = []
    for label, transformer, make, who in cases:
        rounds = []
        for r in range(ROUNDS):
            # The events are made first: only the transformer's time is counted.
            batch = [(make(i), who(i)) for i in range(r * n, (r + 1) * n)]
            start = time.process_time()
            for event, c in batch:
                with contextlib.suppress(EventDropped):
                    transformer.transform(event, c)
            rounds.append((time.process_time() - start) / n * 1e6)
        out.append((label, statistics.median(rounds)))
    return out


def _batch_path(
    n: int, chains: list[tuple[str, list[tuple[str, dict[str, Any]]]]]
) -> list[tuple[str, float]]:
    from django.test import RequestFactory

    from ingest import services
    from plugins import live
    from plugins.base import PluginSpec
    from plugins.chains import Chains
    from plugins.registry import get_registry
    from sources.access import write_access

    services._batch_submit = lambda wire, access, result: result  # type: ignore[assignment]  # no commit
    body = json.dumps([_event(i) for i in range(100)]).encode()
    request = RequestFactory().post(
        "/ingest/batch",
        body,
        content_type="application/json",
        headers={"User-Agent": UA},
        REMOTE_ADDR="198.51.100.77",
    )
    access = write_access(request)
    kwargs: dict[str, Any] = {"body": body, "max_events": 1000, "access": access}
    if "meta" in services.batch_ingest.__code__.co_varnames:
        kwargs["meta"] = request.META
    out = []
    for label, transformers in chains:
        specs = [
            PluginSpec("validator", "SourceIdValidator", {}),
            PluginSpec("validator", "EventTypeValidator", {}),
        ]
        specs += [PluginSpec("transformer", name, params) for name, params in transformers]  # type: ignore[arg-type]
        live.reset(Chains.build(specs, get_registry()))
        requests = max(1, n // 100)

        def run(requests: int = requests) -> int:
            for _ in range(requests):
                services.batch_ingest(**kwargs)
            return requests * 100

        for _ in range(3):
            run()
        out.append((label, _median_us(run)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events per round")
    parser.add_argument(
        "--path-only",
        action="store_true",
        help="only the batch path with no transformer (runs on a checkout without them)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-transformers-") as tmp:
        _setup(Path(tmp))
        print(
            f"python {sys.version.split()[0]}, {args.events} events per round, median of {ROUNDS}"
        )
        if args.path_only:
            for label, us in _batch_path(args.events, [("no transformer", [])]):
                print(f"batch path, {label:<48} {us:8.2f} µs/event")
            return
        for label, us in _alone(args.events, Path(tmp)):
            print(f"alone, {label:<52} {us:8.2f} µs/event")
        from tests.support.geoip import geoip_database_write

        mmdb = str(geoip_database_write(Path(tmp) / "path.mmdb"))
        every = [
            ("CelTransformer", {"rules": CEL_RULES}),
            ("PiiRedactor", PII),
            ("ClientContext", {"geoip_database": mmdb}),
            ("Sampler", {"default_rate": 10}),
        ]
        chains = [("no transformer", [])] + [(name, [(name, p)]) for name, p in every]
        chains.append(("all four", every))
        for label, us in _batch_path(args.events, chains):
            print(f"batch path, {label:<48} {us:8.2f} µs/event")


if __name__ == "__main__":
    main()
