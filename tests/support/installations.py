"""A Telemetron installation with a fresh migrated database, as a context
manager, so fixtures of any scope (a test, a module) can build one."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.databases import fresh_database_url
from tests.support.procs import Project

__all__ = ["installed_project"]


@contextmanager
def installed_project(workdir: Path, config: dict[str, dict[str, Any]]) -> Iterator[Project]:
    """Yield a migrated, empty installation in ``workdir`` with a copy of
    ``config``; servers started on it are stopped and its database dropped after.
    Its database is a copy of the session's migrated template."""

    def migrate(url: str, where: Path) -> None:
        Project(workdir=where, database_url=url, config=copy.deepcopy(config)).migrate()

    with fresh_database_url(workdir, migrate=migrate) as url:
        proj = Project(workdir=workdir, database_url=url, config=copy.deepcopy(config))
        try:
            yield proj
        finally:
            proj.stop_all()
