"""The live plugin configuration: one row per plugin, edited in the admin.

``config.toml`` seeds it (see :mod:`plugins.sync`); after that the rows are the
truth every process follows (see :mod:`plugins.live`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

__all__ = ["PluginConfig"]


def _empty_params() -> dict[str, Any]:
    return {}


class PluginConfig(models.Model):
    class Kind(models.TextChoices):
        VALIDATOR = "validator", "validator"
        TRANSFORMER = "transformer", "transformer"
        PROCESSOR = "processor", "processor"

    class Source(models.TextChoices):
        # Who set the row's values last. A "discovered" row was written only so the
        # admin lists the plugin; nobody configured it, so config.toml may still do so.
        DISCOVERED = "discovered", "discovered (not configured)"
        CONFIG = "config.toml", "config.toml"
        ADMIN = "admin", "admin"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=False)
    position = models.PositiveIntegerField(
        default=0, help_text="Order in its chain: lower runs first (ties by name)."
    )
    params = models.JSONField(
        default=_empty_params, blank=True, help_text="The plugin's parameters (its Params model)."
    )
    source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.ADMIN, editable=False
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = "plugin"
        verbose_name_plural = "plugins"
        ordering = ("kind", "position", "name")
        constraints = [
            models.UniqueConstraint(fields=("kind", "name"), name="plugins_pluginconfig_kind_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"
