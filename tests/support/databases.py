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
import pytest
from django.conf import settings

__all__ = ["BROKERS", "backend", "fresh_database_url", "postgres_pass_only", "sqlite_pass_only"]

PG_ADMIN = os.environ.get(
    "TELEMETRON_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def backend() -> str:
    return (
        "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    )


def sqlite_pass_only(why: str) -> pytest.MarkDecorator:
    """Run in the SQLite pass only: what the test holds does not depend on the
    database (the browser, the OpenAPI document), and the suite must stay short."""
    return pytest.mark.skipif(backend() != "sqlite", reason=f"{why}: SQLite pass only")


def postgres_pass_only(why: str) -> pytest.MarkDecorator:
    """Run in the PostgreSQL pass only (a configuration that goes with PostgreSQL)."""
    return pytest.mark.skipif(backend() != "postgresql", reason=f"{why}: PostgreSQL pass only")


# Broker parameters of fault tests: the Redis broker goes with PostgreSQL (README,
# Which broker), so its variant runs in the PostgreSQL pass; the ORM broker's
# in both (SQLite + ORM is the embedded default).
BROKERS = [
    pytest.param("orm"),
    pytest.param("redis", marks=postgres_pass_only("the Redis broker goes with PostgreSQL")),
]


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
