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

# The in-process tests render the admin without a collected STATIC_ROOT (no
# manifest of hashed names); `serve` collects for the e2e tests (ops/static.py).
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405  (whitenoise warns of a missing one)
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
