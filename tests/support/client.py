"""Django's test client, the way the in-process API tests use it."""

from __future__ import annotations

import gzip
import json
from typing import Any

from django.test import Client

__all__ = ["body", "post", "stats"]


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
