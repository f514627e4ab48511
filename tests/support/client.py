"""Django's test client, the way the in-process API tests use it."""

from __future__ import annotations

import gzip
import json
from typing import Any

from django.test import Client
from prometheus_client import REGISTRY

__all__ = ["body", "delta", "post", "rejected_metric", "stats"]


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def post(
    client: Client,
    path: str,
    data: Any,
    *,
    content_type: str = "application/json",
    gzipped: bool = False,
    **headers: str,
) -> Any:
    """POST ``data`` (bytes as they are, anything else as JSON), optionally gzipped."""
    raw = data if isinstance(data, bytes) else body(data)
    if gzipped:
        raw = gzip.compress(raw)
        headers.setdefault("Content-Encoding", "gzip")
    return client.generic("POST", path, raw, content_type=content_type, headers=headers)


def stats(client: Client, source_id: int | str | None = None) -> Any:
    response = client.get("/stats" if source_id is None else f"/stats/{source_id}")
    return response.status_code, response.json()


def rejected_metric() -> dict[str, float]:
    """This process's ``telemetron_events_rejected_total``, by reason."""
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "telemetron_events_rejected":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["reason"]] = sample.value
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What changed between two readings of :func:`rejected_metric`."""
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
