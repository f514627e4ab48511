"""Fixtures of the plugin tests: the rows config.toml seeds."""

from __future__ import annotations

import pytest

from plugins.base import PluginSpec
from plugins.models import PluginConfig
from plugins.registry import get_registry
from plugins.sync import plugins_sync

# What tests/config.toml names, in file order.
CONFIG_SPECS = [
    PluginSpec("validator", "SourceIdValidator", {"allowed": []}),
    PluginSpec("validator", "EventTypeValidator", {"allowed": []}),
    PluginSpec("processor", "StorageProcessor", {}),
]


@pytest.fixture
def seeded(db: None) -> dict[tuple[str, str], PluginConfig]:
    """The rows after the first sync of tests/config.toml."""
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    return {(r.kind, r.name): r for r in PluginConfig.objects.all()}
