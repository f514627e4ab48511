"""``manage.py serve``'s one warning line: auth off on an address others reach."""

from __future__ import annotations

import pytest

from core.config import Settings
from ops.management.commands.serve import is_loopback, open_ingest_warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_warning(host: str) -> None:
    assert is_loopback(host)
    assert open_ingest_warning(Settings(), host=host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "telemetry.example.com"])
def test_auth_off_on_other_addresses_is_one_warning_line(host: str) -> None:
    line = open_ingest_warning(Settings(), host=host)
    assert line is not None and "\n" not in line
    assert 'ingest.auth = "off"' in line and host in line
    assert open_ingest_warning(Settings(ingest={"auth": "required"}), host=host) is None
