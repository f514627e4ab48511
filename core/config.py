# Long: every section of config.toml, typed, in one place (the README lists its keys).
"""The typed configuration: ``config.toml`` (or ``$TELEMETRON_CONFIG``) plus
``TELEMETRON_<SECTION>__<KEY>`` environment overrides, loaded once into a frozen
pydantic-settings object.

Every problem (missing file, bad TOML, unknown key, wrong type, impossible
combination) becomes a :class:`ConfigError` whose message is one line naming
the key, so ``manage.py`` can print it and exit without a traceback.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import loc_text, validation_messages
from core.process_wide import process_wide
from core.timespans import parse_duration

__all__ = [
    "SQLITE_EXISTING_ENV",
    "ConfigError",
    "Settings",
    "config_path",
    "get_config",
    "load_config",
]

CONFIG_ENV = "TELEMETRON_CONFIG"
DEFAULT_CONFIG = "config.toml"
# Set by `manage.py serve` for its children (migrated before they start): SQLite
# connections open the database file read-write and never create it.
SQLITE_EXISTING_ENV = "TELEMETRON_SQLITE_EXISTING"


class ConfigError(Exception):
    """A configuration problem, reported as one line to the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(2, ge=1, le=64)
    threads: int = Field(16, ge=1, le=256)


class ProcessorConfig(_Section):
    channel_capacity: int = Field(10000, ge=1)
    batch_size: int = Field(100, ge=1, le=10000)
    batch_timeout: int = Field(1000, ge=1, description="ms")
    retry_attempts: int = Field(3, ge=1, le=100)
    retry_delay: int = Field(1000, ge=0, description="ms")


class PluginTables(_Section):
    # Insertion order of the TOML tables is the chain order.
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)


class DatabaseConfig(_Section):
    url: str = "sqlite:///telemetron.sqlite3"
    conn_max_age: int | None = None  # seconds; None = persistent (bench/RESULTS.md)
    sqlite_busy_timeout: float = Field(30.0, gt=0, description="seconds")
    # django-prometheus' query/connection counters (django_db_*): measured at ~20 %
    # of the workers' CPU and ~4 % of the web's, so off unless asked for.
    query_metrics: bool = False


class QueueConfig(_Section):
    broker: Literal["orm", "redis"] = "orm"
    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: int = Field(2, ge=0, le=64)
    name: str = "telemetron"
    timeout: int = Field(300, ge=1, description="seconds a batch task may run")
    retry: int = Field(
        360, ge=2, description="seconds before a batch no queue worker holds is redelivered"
    )
    max_attempts: int = Field(10, ge=1, description="deliveries of a batch whose task crashes")
    bulk: int = Field(40, ge=1)
    queue_limit: int = Field(40, ge=1)
    poll: float = Field(0.05, gt=0)
    coalesce: bool = Field(True, description="a claim's batches run as one task")
    recycle: int = Field(10000, ge=1, description="tasks a queue worker runs, then replaced")
    max_rss_mb: int = Field(512, ge=0, description="queue worker replaced above it; 0 = never")
    dead_after: float = Field(
        5.0,
        ge=2,
        description="seconds without a heartbeat after which a cluster on another host"
        " counts as dead and its batches are handed out again",
    )
    host_id: str = Field(
        "",
        max_length=200,
        description="this machine's identity for crash detection (empty: host name, boot"
        " id and PID namespace); clusters with the same host id check each other's"
        " processes",
    )

    @model_validator(mode="after")
    def _retry_after_timeout(self) -> QueueConfig:
        if self.retry <= self.timeout:
            raise ValueError(
                f"queue.retry ({self.retry}) must be greater than queue.timeout ({self.timeout}),"
                " or running batches would be delivered twice"
            )
        return self


def _duration_text(cls: type, value: object) -> object:
    """A duration as text ("90d", "24h") for pydantic's timedelta."""
    return parse_duration(value) if isinstance(value, str) else value


class IngestConfig(_Section):
    ack: Literal["durable", "buffered"] = "durable"
    linger_ms: float = Field(5, ge=0, le=1000)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_batch_events: int = Field(1000, ge=1)
    commit_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds a request waits for its commit, the resolution of a commit"
        " whose answer was lost included",
    )
    store_timeout: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds one round trip of the request path to Redis may take (connect,"
        " send, answer) before the connection is given up",
    )
    retry_after: int = Field(1, ge=1, description="Retry-After seconds on 503")
    # Backpressure: batches waiting for a worker before ingest answers 503; 0 = no limit.
    max_queue_batches: int = Field(10000, ge=0)
    # Write keys (sources app): "required" refuses /ingest* without a source's key.
    auth: Literal["off", "required"] = "off"
    # Browser origins allowed for every source (CORS), besides each source's own.
    allowed_origins: list[str] = Field(default_factory=list)
    # Where the per-source rate-limit buckets live: "node" (shared by this node's
    # web processes) or "redis" (queue.redis_url, shared by every node).
    rate_limit: Literal["node", "redis"] = "node"
    # Exactly-once by event id: how long a (source, id) is remembered ("24h").
    dedup_window: timedelta = Field(timedelta(hours=24), gt=timedelta(0))
    _window = field_validator("dedup_window", mode="before")(classmethod(_duration_text))  # type: ignore[var-annotated]

    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks):
    # the client's IP (ClientContext) is the first hop from the right that is not one
    # of them; empty: the socket's address, X-Forwarded-For ignored.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [origin_check(o) for o in origins]


class StatsConfig(_Section):
    store: Literal["database", "memory"] = "database"


def _positive_duration(cls: type, value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("must be a positive duration, e.g. 30d")
    return value


class ArchiveConfig(_Section):
    # How long the ArchiveProcessor's events are kept: the age `manage.py archive
    # purge` deletes when given no --older-than (e.g. "30d"); None: kept forever.
    # A source's own "archive retention" (the admin) wins over it for its events.
    retention: timedelta | None = None

    _duration = field_validator("retention", mode="before")(classmethod(_duration_text))  # type: ignore[var-annotated]
    _positive = field_validator("retention")(classmethod(_positive_duration))  # type: ignore[var-annotated]


class DlqConfig(_Section):
    # How long dead letters are kept once replayed or discarded: the age `manage.py
    # dlq purge` deletes when given no --older-than; None: kept until purged.
    retention: timedelta | None = None

    _duration = field_validator("retention", mode="before")(classmethod(_duration_text))  # type: ignore[var-annotated]
    _positive = field_validator("retention")(classmethod(_positive_duration))  # type: ignore[var-annotated]


class PrivacyConfig(_Section):
    # The paths in an event's `data` that hold a person's id, matched by `manage.py
    # privacy erase --user` (dots for nested keys: "context.traits.userId").
    user_paths: list[str] = Field(default_factory=lambda: ["userId", "anonymousId"], min_length=1)
    # How long the erasure audit is kept: the age `manage.py privacy purge` deletes
    # when given no --older-than; None: kept until purged.
    audit_retention: timedelta | None = None

    _duration = field_validator("audit_retention", mode="before")(classmethod(_duration_text))  # type: ignore[var-annotated]
    _positive = field_validator("audit_retention")(classmethod(_positive_duration))  # type: ignore[var-annotated]

    @field_validator("user_paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{path!r} is not a path: keys joined by dots, e.g. userId")
        return paths


class PluginsConfig(_Section):
    reload_interval: float = Field(2.0, gt=0)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    levels: dict[str, str] = Field(default_factory=dict)
    format: Literal["text", "json"] = "text"

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, levels: dict[str, str]) -> dict[str, str]:
        known = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        for name, level in levels.items():
            if level.upper() not in known:
                raise ValueError(f"level of logger {name!r} must be one of {', '.join(known)}")
        return {name: level.upper() for name, level in levels.items()}


def origin_check(origin: str) -> str:
    """A browser origin as browsers send it: ``scheme://host[:port]``, or ``*``."""
    if origin == "*":
        return origin
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ValueError(
            f"{origin!r} is not an origin: give scheme://host[:port] with no path "
            '(e.g. "https://shop.example.com"), or "*"'
        )
    return origin.lower()


class SecurityConfig(_Section):
    # Empty: generated at first start and kept in secret_key_file (settings.py).
    secret_key: str = ""
    # Empty: beside the SQLite database (<name>.secret-key), or beside config.toml.
    secret_key_file: str = ""
    debug: bool = False
    allowed_hosts: list[str] = Field(default_factory=lambda: ["*"])
    # /stats* and /metrics: "token" needs a read token of the right scope.
    read_auth: Literal["off", "token"] = "off"
    # Served over HTTPS (directly or behind a proxy): secure cookies, redirects, HSTS.
    https: bool = False
    # The header a TLS-terminating proxy sets, e.g. "X-Forwarded-Proto" (value https).
    proxy_ssl_header: str = ""
    hsts_seconds: int = Field(0, ge=0)
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False
    csrf_trusted_origins: list[str] = Field(default_factory=list)
    # Admin logins: this many failures per user name and address lock it out.
    login_failure_limit: int = Field(5, ge=1)
    login_cooloff: int = Field(900, ge=1, description="seconds a lock-out lasts")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELEMETRON_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    http: HttpConfig = HttpConfig()
    processor: ProcessorConfig = ProcessorConfig()
    validation: PluginTables = PluginTables()
    transformation: PluginTables = PluginTables()
    processing: PluginTables = PluginTables()
    database: DatabaseConfig = DatabaseConfig()
    queue: QueueConfig = QueueConfig()
    ingest: IngestConfig = IngestConfig()
    stats: StatsConfig = StatsConfig()
    archive: ArchiveConfig = ArchiveConfig()
    dlq: DlqConfig = DlqConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    plugins: PluginsConfig = PluginsConfig()
    logging: LoggingConfig = LoggingConfig()
    security: SecurityConfig = SecurityConfig()

    @model_validator(mode="after")
    def _memory_store_only_inline(self) -> Settings:
        if self.stats.store == "memory" and (self.queue.workers != 0 or self.http.workers != 1):
            raise ValueError(
                'stats.store = "memory" keeps stats inside one process, so it needs'
                " queue.workers = 0 and http.workers = 1"
                f" (got queue.workers = {self.queue.workers}, http.workers = {self.http.workers});"
                ' use stats.store = "database"'
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the TOML file; the environment wins over it.
        return (env_settings, init_settings)


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _format_error(err: ValidationError, source: Path) -> str:
    loc, msg = validation_messages(err, unknown="unknown key")[0]
    # A check across sections (a model validator) has no key of its own: its
    # message names the keys.
    key = loc_text(loc)
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {key + ': ' if key else ''}{msg}{more}"


def load_config(path: Path | None = None) -> Settings:
    """Read, validate and return the configuration; raise ConfigError on any problem."""
    source = path or config_path()
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {source} (set {CONFIG_ENV} or run from the project directory)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {source}: {exc.strerror}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None
    except ValueError as exc:  # e.g. an environment value that is not valid JSON
        raise ConfigError(f"{source}: {str(exc).splitlines()[0]}") from None


@process_wide
def get_config() -> Settings:
    """The process's configuration, read once (tests: ``get_config.override``)."""
    return load_config()
