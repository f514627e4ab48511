"""Fresh, empty databases for tests that run real processes (integration, e2e).

The backend follows the pass: PostgreSQL when the in-process tests run on
PostgreSQL (``make test`` runs a SQLite pass and a PostgreSQL pass), else SQLite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings

__all__ = ["backend", "fresh_database_url"]

PG_ADMIN = os.environ.get(
    "TELEMETRON_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def backend() -> str:
    return (
        "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    )


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


@contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new empty database; drop it afterwards."""
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_path / 'telemetron.sqlite3'}"
        return
    name = f"telemetron_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
