"""Fixtures of the plugin tests: the rows config.toml seeds, and a loader that
forgets its chains after each test (rows live in a rolled-back transaction)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plugins import loader
from plugins.loader import PluginSpec, get_registry
from plugins.models import PluginConfig
from plugins.sync import plugins_sync

# What tests/config.toml names, in file order.
CONFIG_SPECS = [
    PluginSpec("validator", "SourceIdValidator", {"allowed": []}),
    PluginSpec("validator", "EventTypeValidator", {"allowed": []}),
    PluginSpec("processor", "StorageProcessor", {}),
]


@pytest.fixture(autouse=True)
def fresh_loader() -> Iterator[None]:
    loader.reset()
    yield
    loader.reset()


@pytest.fixture
def seeded(db: None) -> dict[tuple[str, str], PluginConfig]:
    """The rows after the first sync of tests/config.toml."""
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    return {(r.kind, r.name): r for r in PluginConfig.objects.all()}
