"""Fresh, empty databases for tests that run real processes (integration, e2e).

The backend follows the pass: PostgreSQL when the in-process tests run on
PostgreSQL (``make test`` runs a SQLite pass and a PostgreSQL pass), else SQLite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.support.dbread import sqlite_copy

__all__ = [
    "BROKERS",
    "TEMPLATE",
    "MigratedTemplate",
    "backend",
    "fresh_database_url",
    "postgres_pass_only",
    "sqlite_pass_only",
]

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


def _pg_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


class MigratedTemplate:
    """One database migrated once per test session (``manage.py migrate``, ~2 s
    of CPU), of which each installation gets a copy (PostgreSQL: ``CREATE
    DATABASE ... TEMPLATE``; SQLite: the file copied through SQLite's backup),
    so a test that starts real processes does not migrate its own. The copy is
    what ``migrate`` leaves on an empty database: no test's data is in it."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._url: str | None = None

    def url(self, migrate: Callable[[str, Path], None]) -> str:
        """The template's URL; ``migrate(url, workdir)`` makes it on first use."""
        if self._url is None:
            self._root = Path(tempfile.mkdtemp(prefix="telemetron-template-"))
            if backend() == "sqlite":
                url = f"sqlite:///{self._root / 'template.sqlite3'}"
            else:
                name = f"telemetron_tmpl_{uuid.uuid4().hex[:12]}"
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                url = _pg_url(name)
            self._url = url  # (dropped by drop() even if migrating it fails)
            migrate(url, self._root)
        return self._url

    def copy_to(self, path: Path, migrate: Callable[[str, Path], None]) -> None:
        """A SQLite copy of the template at ``path``."""
        sqlite_copy(self.url(migrate).removeprefix("sqlite:///"), path)

    def drop(self) -> None:
        if self._url is not None and not self._url.startswith("sqlite:"):
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{_pg_name(self._url)}" WITH (FORCE)')
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = self._url = None


TEMPLATE = MigratedTemplate()


@contextmanager
def fresh_database_url(
    tmp_path: Path, *, migrate: Callable[[str, Path], None] | None = None
) -> Iterator[str]:
    """Yield the URL of a new database, empty or, given ``migrate`` (how to
    migrate a database at a URL), a copy of the session's migrated template;
    drop it afterwards."""
    if backend() == "sqlite":
        path = tmp_path / "telemetron.sqlite3"
        if migrate is not None:
            TEMPLATE.copy_to(path, migrate)
        yield f"sqlite:///{path}"
        return
    name = f"telemetron_t_{uuid.uuid4().hex[:12]}"
    template = "" if migrate is None else f' TEMPLATE "{_pg_name(TEMPLATE.url(migrate))}"'
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
