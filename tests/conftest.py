"""Shared fixtures. In-process tests use pytest-django's test database; tests of
real processes get a ``project``: their own directory, config and fresh database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from core.config import Settings, get_config
from plugins import live
from plugins.base import PluginSpec
from plugins.chains import Chains
from plugins.registry import get_registry
from plugins.sync import plugins_sync
from sources.live import live_directory
from sources.ratelimit import rate_limiter
from tests.support.databases import TEMPLATE
from tests.support.installations import installed_project
from tests.support.procs import Project

UseChains = Callable[..., Chains]

# A quick, small installation: one web worker, two queue workers, fast retries.
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "http": {"host": "127.0.0.1", "workers": 1, "threads": 8},
    "processor": {"batch_size": 100, "batch_timeout": 200, "retry_attempts": 3, "retry_delay": 50},
    "queue": {"workers": 2, "timeout": 20, "retry": 30, "poll": 0.05},
    "ingest": {"linger_ms": 2},
    "logging": {"level": "WARNING"},
    "validation.plugins.SourceIdValidator": {"allowed": []},
    "validation.plugins.EventTypeValidator": {"allowed": []},
    "processing.plugins.StorageProcessor": {},
}


@pytest.fixture(scope="session", autouse=True)
def migrated_template() -> Iterator[None]:
    """The session's migrated database, copied for each installation, dropped at the end."""
    yield
    TEMPLATE.drop()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A migrated, empty Telemetron installation; servers started on it are
    stopped afterwards. Tests adjust ``project.config`` before starting."""
    with installed_project(tmp_path, BASE_CONFIG) as proj:
        yield proj


@pytest.fixture
def plugin_admin(admin_client: Client) -> Client:
    """pytest-django's superuser client on the admin, with every installed plugin
    listed (a row each, disabled unless config.toml enables it, as ``serve``'s
    first sync leaves them)."""
    plugins_sync(specs=[], registry=get_registry())
    return admin_client


def event(
    source_id: int = 1, type: str = "Heartbeat", ts: str = "2023-10-27T09:30:00Z", **extra: Any
) -> dict[str, Any]:
    """One valid event in the wire format."""
    return {"sourceId": source_id, "type": type, "timestamp": ts, **extra}


@pytest.fixture(autouse=True)
def live_chains() -> Iterator[None]:
    """Each test starts and ends with the chains the database / config.toml give
    (in-process tests' rows live in a rolled-back transaction), and with a fresh
    directory of sources and keys and empty rate-limit buckets."""
    live.reset()
    live_directory.reset()
    rate_limiter.reset()
    yield
    live.reset()
    live_directory.reset()
    rate_limiter.reset()


@pytest.fixture
def use_validators() -> UseChains:
    """``use_validators(("SourceIdValidator", {"allowed": [1]}), ...)``: those
    validators, in that order, with the StorageProcessor, become this process's
    live chains (through the plugin loader, as an admin edit would) until the
    test ends (``live_chains`` restores them)."""

    def use(*validators: tuple[str, dict[str, Any]]) -> Chains:
        specs = [PluginSpec("validator", name, params) for name, params in validators]
        specs.append(PluginSpec("processor", "StorageProcessor", {}))
        chains = Chains.build(specs, get_registry())
        live.reset(chains)
        return chains

    return use


@pytest.fixture
def use_processors() -> UseChains:
    """``use_processors(("Name", {params}), ...)`` makes those the live processor
    chain of this process (validators: none) until the test ends."""

    def use(*plugins: tuple[str, dict[str, Any]]) -> Chains:
        specs = [PluginSpec("processor", name, params) for name, params in plugins]
        chains = Chains.build(specs, get_registry())
        live.reset(chains)
        return chains

    return use


@pytest.fixture
def use_config() -> Iterator[Callable[..., Settings]]:
    """``use_config(ingest={"auth": "required"}, security={...})``: this process's
    configuration with those keys changed, until the test ends (what is read
    when a request runs; settings.py's values stay as they were)."""
    with ExitStack() as stack:

        def use(**sections: dict[str, Any]) -> Settings:
            cfg = get_config()
            updates = {
                name: getattr(cfg, name).model_copy(update=values)
                for name, values in sections.items()
            }
            new = cfg.model_copy(update=updates)
            stack.enter_context(get_config.override(new))
            live_directory.reset()
            rate_limiter.reset()
            return new

        yield use
