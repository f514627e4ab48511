"""Django settings, derived from the typed configuration (telemetron_site.config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from telemetron_site.config import ConfigError, get_config

CONFIG = get_config()
BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = CONFIG.security.secret_key
DEBUG = CONFIG.security.debug
ALLOWED_HOSTS = CONFIG.security.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_jsonform",  # the admin's plugin parameter forms
    "django_q",
    "ops",
    "plugins",
    "ingest",
    "processing",
    "stats",
    "archive",  # the ArchiveProcessor's tables and `manage.py archive`
]

# Kept short on purpose: every request pays for each one (DESIGN §10). The
# session/auth/message middlewares are lazy and only do work for the admin.
MIDDLEWARE = [
    # Outermost, so it times the whole request: HTTP metrics + the request log line.
    "ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The API's paths get this chain only (telemetron_site/wsgi.py): the admin's
# middlewares do nothing for them and cost ~7 % of /ingest's CPU.
API_PATH_PREFIXES = ("/ingest", "/stats", "/healthz", "/readyz", "/metrics")
API_MIDDLEWARE = MIDDLEWARE[:2]  # request metrics + log line, security headers

ROOT_URLCONF = "telemetron_site.urls"
WSGI_APPLICATION = "telemetron_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


_PROMETHEUS_ENGINES = {
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
}


def _database(url: str) -> dict[str, Any]:
    if not url.startswith(("sqlite:", "postgres:", "postgresql:")):
        raise ConfigError(
            f"database.url: unsupported scheme in {url!r} (use sqlite:/// or postgresql://)"
        )
    try:
        db: dict[str, Any] = dict(dj_database_url.parse(url))
    except ValueError as exc:
        raise ConfigError(f"database.url: {exc}") from None
    db["CONN_MAX_AGE"] = CONFIG.database.conn_max_age
    db["CONN_HEALTH_CHECKS"] = True
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock
        # at BEGIN so two writers queue on the busy timeout instead of failing
        # with "database is locked" when one upgrades a read to a write.
        db["OPTIONS"] = {
            "timeout": CONFIG.database.sqlite_busy_timeout,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        db["TEST"] = {"NAME": str(Path(db["NAME"]).with_suffix(".test.sqlite3"))}
    if CONFIG.database.query_metrics:
        # django-prometheus' wrappers of the same backends: query and connection
        # counters (django_db_*), ~20 % of a worker's CPU (bench/RESULTS.md).
        db["ENGINE"] = _PROMETHEUS_ENGINES.get(db["ENGINE"], db["ENGINE"])
    return db


DATABASES = {"default": _database(CONFIG.database.url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

_queue = CONFIG.queue
Q_CLUSTER: dict[str, Any] = {
    "name": _queue.name,
    "workers": max(_queue.workers, 1),
    "sync": _queue.workers == 0,
    "timeout": _queue.timeout,
    "retry": _queue.retry,
    "max_attempts": _queue.max_attempts,
    "ack_failures": False,
    "save_limit": -1,  # keep failures only; storing every success halves throughput
    "bulk": _queue.bulk,
    "queue_limit": _queue.queue_limit,
    "poll": _queue.poll,
    "catch_up": False,
    "log_level": "WARNING",
    "label": "Task queue",
}
# Our brokers, both at-least-once with the clusters' leases (processing/leases.py);
# each keeps the clusters' heartbeats where every node reads them (/readyz).
if _queue.broker == "redis":
    Q_CLUSTER["redis"] = _queue.redis_url
    Q_CLUSTER["broker_class"] = "processing.redis_broker.RedisStreamsBroker"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "processing.broker.OrmBroker"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ops.logging builds the dictConfig from the [logging] section.
LOGGING_CONFIG = "ops.logging.logging_configure"
LOGGING = CONFIG.logging.model_dump()
