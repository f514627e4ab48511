"""The typed configuration (README, "Configuration"): config.toml, TELEMETRON_* environment
overrides, and one clear line for each problem."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.config import (
    ConfigError,
    Settings,
    config_path,
    load_config,
)
from plugins.chains import Chains, PluginConfigError, specs_from_config
from plugins.registry import get_registry
from telemetron_site.settings import _database

WriteConfig = Callable[[str], Path]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No TELEMETRON_* variable of the test run (e.g. its database URL) leaks in."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("TELEMETRON_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(text: str) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(text)
        return path

    return write


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, "a config error is one line"
    return message


# --- the file ------------------------------------------------------------------


def test_empty_file_gives_the_original_services_defaults(write_config: WriteConfig) -> None:
    cfg = load_config(write_config(""))
    assert cfg.processor.channel_capacity == 10000
    assert cfg.processor.batch_size == 100
    assert cfg.processor.batch_timeout == 1000
    assert cfg.processor.retry_attempts == 3
    assert cfg.processor.retry_delay == 1000
    assert (cfg.http.host, cfg.http.port) == ("127.0.0.1", 8080)
    assert cfg.ingest.ack == "durable"
    assert cfg.ingest.max_body_bytes == 1024 * 1024
    assert cfg.ingest.max_batch_events == 1000
    assert cfg.stats.store == "database"
    assert cfg.database.url.startswith("sqlite:///")


def test_file_values_are_read(write_config: WriteConfig) -> None:
    path = write_config(
        """
[http]
host = "0.0.0.0"
port = 9000

[processor]
batch_size = 25
retry_delay = 10

[database]
url = "sqlite:///data/t.sqlite3"

[ingest]
ack = "buffered"
"""
    )
    cfg = load_config(path)
    assert (cfg.http.host, cfg.http.port) == ("0.0.0.0", 9000)
    assert (cfg.processor.batch_size, cfg.processor.retry_delay) == (25, 10)
    assert cfg.processor.retry_attempts == 3  # untouched keys keep their defaults
    assert cfg.database.url == "sqlite:///data/t.sqlite3"
    assert cfg.ingest.ack == "buffered"


def test_plugin_tables_keep_file_order_as_chain_order(write_config: WriteConfig) -> None:
    path = write_config(
        """
[validation.plugins.EventTypeValidator]
allowed = ["Heartbeat"]

[validation.plugins.SourceIdValidator]
allowed = [1, 2]

[processing.plugins.StorageProcessor]
"""
    )
    specs = specs_from_config(load_config(path))
    assert [(s.kind, s.name, s.params) for s in specs] == [
        ("validator", "EventTypeValidator", {"allowed": ["Heartbeat"]}),
        ("validator", "SourceIdValidator", {"allowed": [1, 2]}),
        ("processor", "StorageProcessor", {}),
    ]
    chains = Chains.build(specs, get_registry())
    assert [v.name for v in chains.validators] == ["EventTypeValidator", "SourceIdValidator"]
    assert [p.name for p in chains.processors] == ["StorageProcessor"]


def test_config_path_is_telemetron_config_or_config_toml_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert config_path() == Path("config.toml")
    monkeypatch.setenv("TELEMETRON_CONFIG", str(tmp_path / "other.toml"))
    assert config_path() == tmp_path / "other.toml"


def test_load_config_reads_the_file_named_by_telemetron_config(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    monkeypatch.setenv("TELEMETRON_CONFIG", str(write_config("[http]\nport = 8123\n")))
    assert load_config().http.port == 8123


# --- environment overrides -------------------------------------------------------


def test_env_overrides_http_port_and_batch_size(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    path = write_config("[http]\nport = 9000\n\n[processor]\nbatch_size = 25\nretry_attempts = 5\n")
    monkeypatch.setenv("TELEMETRON_HTTP__PORT", "8081")
    monkeypatch.setenv("TELEMETRON_PROCESSOR__BATCH_SIZE", "50")
    cfg = load_config(path)
    assert cfg.http.port == 8081
    assert cfg.processor.batch_size == 50
    assert cfg.processor.retry_attempts == 5  # the file's other keys of the section stay


def test_env_override_without_the_section_in_the_file(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    monkeypatch.setenv("TELEMETRON_HTTP__PORT", "8082")
    assert load_config(write_config("")).http.port == 8082


@pytest.mark.parametrize(
    ("url", "engine", "name"),
    [
        ("sqlite:////var/lib/telemetron/t.sqlite3", "sqlite3", "/var/lib/telemetron/t.sqlite3"),
        ("postgresql://tele:secret@db.example:5433/telemetron", "postgresql", "telemetron"),
    ],
)
def test_env_overrides_database_url(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig, url: str, engine: str, name: str
) -> None:
    path = write_config('[database]\nurl = "sqlite:///from-file.sqlite3"\n')
    monkeypatch.setenv("TELEMETRON_DATABASE__URL", url)
    cfg = load_config(path)
    assert cfg.database.url == url
    db = _database(cfg.database.url)  # what Django's DATABASES gets
    assert db["ENGINE"].endswith(f".{engine}")
    assert db["NAME"] == name


def test_postgresql_url_gives_host_port_and_credentials() -> None:
    db = _database("postgresql://tele:secret@db.example:5433/telemetron")
    assert (db["HOST"], db["PORT"], db["USER"], db["PASSWORD"]) == (
        "db.example",
        5433,
        "tele",
        "secret",
    )


def test_sqlite_url_turns_on_wal_busy_timeout_and_immediate_transactions() -> None:
    db = _database("sqlite:////tmp/t.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert db["OPTIONS"]["timeout"] > 0


def test_query_metrics_wrap_the_backend_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    import telemetron_site.settings as settings

    assert _database("sqlite:////tmp/t.sqlite3")["ENGINE"] == "django.db.backends.sqlite3"
    monkeypatch.setattr(
        settings, "CONFIG", load_config(write_config("[database]\nquery_metrics = true\n"))
    )
    assert _database("sqlite:////tmp/t.sqlite3")["ENGINE"] == (
        "django_prometheus.db.backends.sqlite3"
    )
    assert _database("postgresql://db/t")["ENGINE"] == "django_prometheus.db.backends.postgresql"


def test_unsupported_database_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"database\.url: unsupported scheme"):
        _database("mysql://db/telemetron")


def test_env_value_of_the_wrong_type_names_the_key(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    monkeypatch.setenv("TELEMETRON_HTTP__PORT", "eighty")
    message = config_error(write_config(""))
    assert "http.port" in message
    assert "integer" in message


def test_unknown_env_key_in_a_section_is_refused(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    monkeypatch.setenv("TELEMETRON_HTTP__COLOUR", "blue")
    assert "http.colour: unknown key" in config_error(write_config(""))


# --- each error: one line naming the problem -------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nowhere" / "config.toml")
    assert message.startswith("config file not found:")
    assert "nowhere/config.toml" in message
    assert "TELEMETRON_CONFIG" in message


def test_bad_toml(write_config: WriteConfig) -> None:
    path = write_config("[http\nport = 1\n")
    message = config_error(path)
    assert message.startswith(f"{path}: invalid TOML:")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[http]\ncolour = 'blue'\n", "http.colour"),
        ("[nonsense]\na = 1\n", "nonsense"),
        ("[processor]\nbatchsize = 10\n", "processor.batchsize"),
    ],
)
def test_unknown_key(write_config: WriteConfig, text: str, key: str) -> None:
    path = write_config(text)
    assert config_error(path) == f"{path}: {key}: unknown key"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[processor]\nbatch_size = 'lots'\n", "processor.batch_size", "integer"),
        ("[http]\nport = 70000\n", "http.port", "less than or equal to 65535"),
        ("[processor]\nbatch_size = 0\n", "processor.batch_size", "greater than or equal to 1"),
        ("[ingest]\nack = 'sometimes'\n", "ingest.ack", "'durable' or 'buffered'"),
        ("[queue]\nworkers = 1.5\n", "queue.workers", "integer"),
        ("http = 5\n", "http", "valid dictionary"),
    ],
)
def test_wrong_type_or_value(write_config: WriteConfig, text: str, key: str, words: str) -> None:
    path = write_config(text)
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: ")
    assert words in message


def test_several_errors_report_the_first_and_count_the_others(write_config: WriteConfig) -> None:
    message = config_error(write_config("[http]\nport = 'x'\nworkers = 'y'\n"))
    assert "(and 1 more)" in message


def test_memory_store_with_queue_workers_is_refused(write_config: WriteConfig) -> None:
    path = write_config("[stats]\nstore = 'memory'\n")
    message = config_error(path)
    assert message.startswith(f'{path}: stats.store = "memory" keeps stats inside one process')
    assert "queue.workers = 0 and http.workers = 1" in message
    assert "got queue.workers = 2" in message


def test_memory_store_with_several_http_workers_is_refused(write_config: WriteConfig) -> None:
    text = "[stats]\nstore = 'memory'\n[queue]\nworkers = 0\n[http]\nworkers = 2\n"
    assert "http.workers = 2" in config_error(write_config(text))


def test_memory_store_inline_with_one_http_worker_is_accepted(write_config: WriteConfig) -> None:
    text = "[stats]\nstore = 'memory'\n[queue]\nworkers = 0\n[http]\nworkers = 1\n"
    assert load_config(write_config(text)).stats.store == "memory"


def test_queue_retry_must_exceed_timeout(write_config: WriteConfig) -> None:
    message = config_error(write_config("[queue]\ntimeout = 60\nretry = 60\n"))
    assert "queue.retry (60) must be greater than queue.timeout (60)" in message


def build_config_chains(path: Path) -> Chains:
    return Chains.build(specs_from_config(load_config(path)), get_registry())


@pytest.mark.parametrize(
    ("table", "kind", "known"),
    [
        ("validation", "validator", ["EventTypeValidator", "SourceIdValidator"]),
        ("processing", "processor", ["StorageProcessor"]),
    ],
)
def test_unknown_plugin_name_lists_the_known_names(
    write_config: WriteConfig, table: str, kind: str, known: list[str]
) -> None:
    path = write_config(f"[{table}.plugins.NoSuchPlugin]\n")
    with pytest.raises(PluginConfigError) as info:
        build_config_chains(path)
    message = str(info.value)
    assert isinstance(info.value, ConfigError)  # manage.py prints it as one line
    assert "\n" not in message
    assert message.startswith(f"unknown {kind} plugin 'NoSuchPlugin'; known: ")
    listed = message.split("known: ", 1)[1].split(", ")
    assert set(known) <= set(listed)
    assert listed == sorted(listed)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            "allowed = ['four']",
            "[validation.plugins.SourceIdValidator] allowed.0: Input should be a valid integer",
        ),
        (
            "allowed = [-1]",
            "[validation.plugins.SourceIdValidator] allowed.0: "
            "Input should be greater than or equal to 0",
        ),
        (
            "allowed = [18446744073709551616]",
            "[validation.plugins.SourceIdValidator] allowed.0: "
            "Input should be less than or equal to 18446744073709551615",
        ),
        ("allowed = 4", "[validation.plugins.SourceIdValidator] allowed: Input should be"),
        ("allow = [4]", "[validation.plugins.SourceIdValidator] allow: unknown parameter"),
    ],
)
def test_bad_plugin_params_name_the_plugin_and_the_parameter(
    write_config: WriteConfig, params: str, expected: str
) -> None:
    path = write_config(f"[validation.plugins.SourceIdValidator]\n{params}\n")
    with pytest.raises(PluginConfigError) as info:
        build_config_chains(path)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_settings_are_frozen(write_config: WriteConfig) -> None:
    cfg: Settings = load_config(write_config(""))
    with pytest.raises(ValueError, match="frozen"):
        cfg.http.port = 1  # type: ignore[misc]
