"""System check: report plugins that are installed but failed to import."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Warning, register

from plugins.registry import get_registry


@register()
def plugin_import_failures(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(
            f"{f.kind} plugin {f.name!r} ({f.target}) failed to import: {f.error}",
            hint="Fix or uninstall the package that provides it.",
            id="telemetron.W001",
        )
        for f in get_registry().failures
    ]
