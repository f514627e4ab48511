"""What the JsonSchemaValidator costs per event: CPU time of ``validate()`` on one
process, a typical 10-property schema (strings with patterns and lengths, numbers
with bounds, an enum, a nullable field, an array, a nested object, a date-time
format, no additional properties), valid and invalid events; and, when installed
(``pip install -e '.[bench]'``), the same schema checked by the pure-Python
``jsonschema`` and by ``fastjsonschema`` (draft-07 at most, so not a candidate
for draft 2020-12; shown for scale).

    .venv/bin/python -m bench.json_schema [--events 50000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ord_[0-9a-f]{8}$"},
        "price": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
        "sku": {"type": "string", "minLength": 1, "maxLength": 64},
        "coupon": {"type": ["string", "null"]},
        "gift": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "customer": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "country": {"type": "string", "minLength": 2, "maxLength": 2},
            },
            "required": ["id"],
        },
        "created": {"type": "string", "format": "date-time"},
    },
    "required": ["order_id", "price", "currency", "quantity"],
    "additionalProperties": False,
}
GOOD = {
    "order_id": "ord_1a2b3c4d",
    "price": 12.5,
    "currency": "EUR",
    "quantity": 2,
    "sku": "ABC-1",
    "coupon": None,
    "gift": False,
    "tags": ["a", "b"],
    "customer": {"id": 7, "country": "FR"},
    "created": "2026-11-20T10:00:00Z",
}
BAD = {**GOOD, "price": -1}


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 1000)):
        fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def _ours(n: int) -> list[tuple[str, float]]:
    import django

    django.setup()
    from ingest.json_schema import JsonSchemaValidator
    from plugins.base import Event, EventRejected

    v = JsonSchemaValidator(JsonSchemaValidator.Params(schemas={"purchase": SCHEMA}))
    good = Event.model_validate(
        {"sourceId": 1, "type": "purchase", "timestamp": "2026-11-20T10:00:00Z", "data": GOOD}
    )
    bad = good.model_copy(update={"data": BAD})
    other = good.model_copy(update={"type": "Heartbeat"})

    def reject() -> None:
        with contextlib.suppress(EventRejected):
            v.validate(bad)

    start = time.process_time()
    JsonSchemaValidator(JsonSchemaValidator.Params(schemas={"purchase": SCHEMA}))
    build_us = (time.process_time() - start) * 1e6
    return [
        ("JsonSchemaValidator.validate, valid event", per_call_us(lambda: v.validate(good), n)),
        ("JsonSchemaValidator.validate, invalid (reason built)", per_call_us(reject, n)),
        (
            "JsonSchemaValidator.validate, type without schema",
            per_call_us(lambda: v.validate(other), n),
        ),
        ("building the plugin (params checked, schema compiled twice)", build_us),
    ]


def _others(n: int) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    try:
        import jsonschema

        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        py = jsonschema.Draft202012Validator(SCHEMA, format_checker=checker)
        out.append(
            (
                "jsonschema (pure Python) is_valid, valid",
                per_call_us(lambda: py.is_valid(GOOD), n // 20),
            )
        )
    except ImportError:
        pass
    try:
        import fastjsonschema

        fast = fastjsonschema.compile(
            {**SCHEMA, "$schema": "http://json-schema.org/draft-07/schema#"}
        )
        out.append(
            ("fastjsonschema (draft-07) validate, valid", per_call_us(lambda: fast(GOOD), n))
        )
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50000, help="calls per figure")
    args = parser.parse_args()
    for label, us in _ours(args.events) + _others(args.events):
        print(f"{label:62s} {us:9.2f} µs")


if __name__ == "__main__":
    main()
