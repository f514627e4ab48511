"""The database and Django set-up of the in-process benchmarks (archive,
sources_admin, merge_minutes): one database kept between runs, made if missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["django_start"]

ROOT = Path(__file__).resolve().parents[1]


def _database_ensure(url: str) -> None:
    """Create ``url``'s PostgreSQL database if it is not there (SQLite: its folder)."""
    if not url.startswith("postgres"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg

    admin, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def django_start(url: str) -> None:
    """Make sure the database exists and set Django up on it with the repository's
    config.toml (unless TELEMETRON_CONFIG says otherwise); migrating is the caller's."""
    _database_ensure(url)
    os.environ["TELEMETRON_DATABASE__URL"] = url
    os.environ.setdefault("TELEMETRON_CONFIG", str(ROOT / "config.toml"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "telemetron_site.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
