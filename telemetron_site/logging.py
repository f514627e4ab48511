"""Logging configuration from the ``[logging]`` section."""

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
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "text"},
        },
        "root": {"handlers": ["console"], "level": cfg.level},
        "loggers": loggers,
    }
