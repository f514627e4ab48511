"""Reads of the live plugin configuration (``PluginConfig`` rows)."""

from __future__ import annotations

from typing import Any, cast

from plugins.base import Kind, PluginSpec
from plugins.models import PluginConfig

__all__ = ["plugin_config_fingerprint", "plugin_specs_enabled"]


def plugin_config_fingerprint() -> tuple[object, ...]:
    """One small query that changes whenever a row is added, removed or saved
    (``updated_at`` is set on every save): the reload check."""
    return tuple(PluginConfig.objects.order_by("pk").values_list("pk", "updated_at"))


def plugin_specs_enabled() -> list[PluginSpec]:
    """The enabled plugins in chain order (position, then name)."""
    rows = (
        PluginConfig.objects.filter(enabled=True)
        .order_by("kind", "position", "name")
        .values_list("kind", "name", "params")
    )
    return [
        PluginSpec(cast(Kind, kind), name, cast(dict[str, Any], params))
        for kind, name, params in rows
    ]
