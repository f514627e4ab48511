"""Fixtures of the fault tests: the dependencies a run stops and freezes (its own
PostgreSQL and Redis, started on first use), one set per module."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.faults.configs import FaultServices

# A run makes thousands of requests: httpx's line per request would bury a failure.
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def fault_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultServices]:
    services = FaultServices(tmp_path_factory.mktemp("fault-services"))
    try:
        yield services
    finally:
        services.stop()
