"""Logging configuration from the ``[logging]`` section: ``level`` (root),
``levels`` (per logger, e.g. ``telemetron.request = "WARNING"`` silences the
per-request line) and ``format`` (``text`` or ``json`` lines, see log_json)."""

from __future__ import annotations

from typing import Any

from telemetron_site.config import LoggingConfig

__all__ = ["logging_dict"]


def logging_dict(cfg: LoggingConfig) -> dict[str, Any]:
    loggers: dict[str, Any] = {
        "django_q": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        **{name: {"level": level.upper()} for name, level in cfg.levels.items()},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s"},
            "json": {"()": "telemetron_site.log_json.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": cfg.format},
        },
        "root": {"handlers": ["console"], "level": cfg.level},
        "loggers": loggers,
    }
