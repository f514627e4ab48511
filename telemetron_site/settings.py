"""Django settings, derived from the typed configuration (core.config)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url

from core.config import SQLITE_EXISTING_ENV, ConfigError, config_path, get_config
from core.secret_key import secret_key_resolve

CONFIG = get_config()
BASE_DIR = Path(__file__).resolve().parent.parent

# Given by security.secret_key, else generated at first start and kept in a file.
SECRET_KEY = secret_key_resolve(CONFIG, config_path())
DEBUG = CONFIG.security.debug
ALLOWED_HOSTS = CONFIG.security.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # django-ninja's own Swagger UI files for /docs (no CDN)
    "django_jsonform",  # the admin's plugin parameter forms
    "django_q",
    "axes",  # admin login throttling
    "ops",
    "plugins",
    "sources",
    "broker",  # the queue: the brokers' tables, before the apps that use them
    "ingest",
    "processing",
    "stats",
    "archive",  # the ArchiveProcessor's tables and `manage.py archive`
    "privacy",  # the erasure audit and `manage.py privacy`
    "console",  # the admin's dashboard and sources list (after the apps it reads)
]

# Kept short on purpose: every request pays for each one (bench/RESULTS.md). The
# session/auth/message middlewares are lazy and only do work for the admin.
MIDDLEWARE = [
    # Outermost, so it times the whole request: HTTP metrics + the request log line.
    "ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, /docs' Swagger UI) before the admin's middlewares.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last (django-axes' rule); the admin's chain only, never the API's.
    "axes.middleware.AxesMiddleware",
]

# The API's paths get this chain only (telemetron_site/wsgi.py): the admin's
# middlewares do nothing for them and cost ~7 % of /ingest's CPU.
API_PATH_PREFIXES = ("/ingest", "/v1/", "/stats", "/healthz", "/readyz", "/metrics")
API_MIDDLEWARE = MIDDLEWARE[:2]  # request metrics + log line, security headers

ROOT_URLCONF = "telemetron_site.urls"
WSGI_APPLICATION = "telemetron_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin's base_site.html (its lists' CSS) over django.contrib.admin's.
        "DIRS": [BASE_DIR / "telemetron_site" / "templates"],
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
        if os.environ.get(SQLITE_EXISTING_ENV) == "1":
            # A process of the serve tree (migrated before it started) opens the file
            # read-write but never creates it: a connection opened while the file is
            # away (moved, its volume detached) would make an empty database whose
            # WAL files break every connection once the real one is back.
            path = quote(str(Path(db["NAME"]).resolve()))
            db["OPTIONS"]["database"] = f"file:{path}?mode=rw"
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
# Dates read "2026-12-07 05:42:40 UTC" everywhere (admin lists, pages, dashboard).
FORMAT_MODULE_PATH = ["telemetron_site.formats"]

# --- security (security.* keys; `manage.py check --deploy` with deploy/production) ---
_sec = CONFIG.security
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = _sec.https
# Probes and scrapers reach a node directly over HTTP: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if _sec.proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _sec.proxy_ssl_header.upper().replace("-", "_"), "https")
SECURE_HSTS_SECONDS = _sec.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = _sec.hsts_include_subdomains
SECURE_HSTS_PRELOAD = _sec.hsts_preload
CSRF_TRUSTED_ORIGINS = _sec.csrf_trusted_origins
X_FRAME_OPTIONS = "DENY"

# Admin login throttling (django-axes): failures counted per user name and
# address in the database (so across processes and nodes), reset on success.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _sec.login_failure_limit
AXES_COOLOFF_TIME = timedelta(seconds=_sec.login_cooloff)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Static files: collected into STATIC_ROOT by `manage.py serve` at start-up
# (ops/static.py: only when an installed package changed them), with hashed names,
# gzip copies; served by whitenoise with a year's immutable caching.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Files whitenoise serves at the site's root: /favicon.ico (browsers ask for it
# on every admin page; without it each page logs a 404 in the browser's console).
WHITENOISE_ROOT = BASE_DIR / "telemetron_site" / "root"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

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
    "recycle": _queue.recycle,
    "max_rss": _queue.max_rss_mb * 1024 or None,  # kB
    "catch_up": False,
    "log_level": "WARNING",
    "label": "Task queue",
}
# Our brokers (broker.interface.QueueBroker), both at-least-once with the
# clusters' leases (broker/leases.py); each keeps the clusters' heartbeats where
# every node reads them (/readyz).
if _queue.broker == "redis":
    Q_CLUSTER["redis"] = _queue.redis_url
    Q_CLUSTER["broker_class"] = "broker.redis_streams.RedisStreamsBroker"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "broker.orm.OrmBroker"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ops.logging builds the dictConfig from the [logging] section.
LOGGING_CONFIG = "ops.logging.logging_configure"
LOGGING = CONFIG.logging.model_dump()
