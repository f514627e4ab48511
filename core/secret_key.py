"""Django's SECRET_KEY: ``security.secret_key`` (or
``TELEMETRON_SECURITY__SECRET_KEY``) when given; else read from a file, made
at first start with 50 random characters (readable by its owner only).

The file is ``security.secret_key_file``, or beside the SQLite database
(``telemetron.sqlite3`` -> ``telemetron.secret-key``), or, on PostgreSQL, beside
config.toml. Several nodes sharing a database must share the key (admin
sessions, CSRF): give it in the configuration there.

Two processes starting at once make the file once: each writes its own
temporary file and links it into place; the loser reads the winner's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.management.utils import get_random_secret_key

from core.config import ConfigError, Settings

__all__ = ["secret_key_path", "secret_key_resolve"]

SUFFIX = ".secret-key"


def secret_key_path(cfg: Settings, config_file: Path) -> Path | None:
    """Where the generated key is kept (None: an in-memory SQLite database)."""
    if cfg.security.secret_key_file:
        return Path(cfg.security.secret_key_file)
    url = cfg.database.url
    if url.startswith("sqlite:"):
        name = url.split(":///", 1)[-1] if ":///" in url else ""
        if not name or name == ":memory:":
            return None
        return Path(name).with_suffix(SUFFIX)
    return config_file.resolve().parent / f"telemetron{SUFFIX}"


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 50:
        raise ConfigError(
            f"security.secret_key_file {path}: the key is too short ({len(key)} characters;"
            " 50 or more); delete the file to have a new one made"
        )
    return key


def _create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-key-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(get_random_secret_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process won: read its key
            os.link(tmp, path)  # atomic, and never replaces a file
    finally:
        os.unlink(tmp)
    return _read(path)


def secret_key_resolve(cfg: Settings, config_file: Path) -> str:
    if cfg.security.secret_key:
        return cfg.security.secret_key
    path = secret_key_path(cfg, config_file)
    if path is None:
        return get_random_secret_key()  # nothing outlives the process anyway
    try:
        return _read(path) if path.exists() else _create(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot keep the generated secret key in {path}: {exc.strerror};"
            " set security.secret_key_file or security.secret_key"
        ) from None
