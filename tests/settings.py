"""Settings of the in-process tests (unit and API): the project's settings on
tests/config.toml, unless TELEMETRON_CONFIG names another file. Subprocesses
started by integration tests use telemetron_site.settings with their own file."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TELEMETRON_CONFIG", str(_ROOT / "config.toml"))
# The generated secret key stays in tests/.work on every pass (on PostgreSQL it
# would go beside tests/config.toml).
os.environ.setdefault(
    "TELEMETRON_SECURITY__SECRET_KEY_FILE", str(_ROOT / ".work" / "unit.secret-key")
)
(_ROOT / ".work").mkdir(exist_ok=True)

from telemetron_site.settings import *  # noqa: E402, F403
