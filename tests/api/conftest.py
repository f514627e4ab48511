"""Fixtures of the API tests (Django's test client, in-process; tests/config.toml
processes each batch inline, so a 202 is followed by its stats at once)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from plugins import loader
from plugins.loader import Chains, PluginSpec, get_registry

UseValidators = Callable[..., Chains]


@pytest.fixture(autouse=True)
def live_chains() -> Iterator[None]:
    """Each test starts and ends with the chains the database / config.toml give."""
    loader.reset()
    yield
    loader.reset()


@pytest.fixture
def use_validators() -> UseValidators:
    """``use_validators(("SourceIdValidator", {"allowed": [1]}), ...)``: those
    validators, in that order, with the StorageProcessor, become this process's
    live chains (through the plugin loader, as an admin edit would) until the
    test ends (``live_chains`` restores them)."""

    def use(*validators: tuple[str, dict[str, Any]]) -> Chains:
        specs = [PluginSpec("validator", name, params) for name, params in validators]
        specs.append(PluginSpec("processor", "StorageProcessor", {}))
        chains = Chains.build(specs, get_registry())
        loader.reset(chains)
        return chains

    return use


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
