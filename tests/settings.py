"""Settings of the in-process tests (unit and API): the project's settings on
tests/config.toml, unless TELEMETRON_CONFIG names another file. Subprocesses
started by integration tests use telemetron_site.settings with their own file."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TELEMETRON_CONFIG", str(_ROOT / "config.toml"))
(_ROOT / ".work").mkdir(exist_ok=True)

from telemetron_site.settings import *  # noqa: E402, F403
