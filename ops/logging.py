"""Logging from the ``[logging]`` section: ``level`` (root), ``levels`` (per
logger, e.g. ``telemetron.request = "WARNING"`` silences the per-request line)
and ``format``: ``text``, or ``json`` lines (:class:`JsonFormatter`).

The settings name :func:`logging_configure` as Django's ``LOGGING_CONFIG`` and
pass the section as ``LOGGING``; Django calls it once, at set-up.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from core.config import LoggingConfig

__all__ = ["JsonFormatter", "logging_configure", "logging_dict"]


def logging_dict(cfg: LoggingConfig) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the section."""
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
            "json": {"()": f"{__name__}.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": cfg.format},
        },
        "root": {"handlers": ["console"], "level": cfg.level},
        "loggers": loggers,
    }


def logging_configure(section: dict[str, Any]) -> None:
    """Django's ``LOGGING_CONFIG`` hook: ``section`` is ``settings.LOGGING``, the
    ``[logging]`` section as plain data.

    Neither format shows where a record was made (file, function, line) nor its
    thread or multiprocessing process name, so records do not collect them (the
    logging HOWTO's "Optimization"): a record costs ~15 % less, which is ~5 % of a
    single event's CPU with the request log line on (bench/RESULTS.md)."""
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller lookup
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(logging_dict(LoggingConfig.model_validate(section)))


# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One object per record with ``timestamp`` (RFC 3339, UTC), ``level``,
    ``logger``, ``message``, ``pid``, the structured fields passed with
    ``extra=`` (``batch_id``, ``plugin``, ``source_id``, ...) and ``exception``
    when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
