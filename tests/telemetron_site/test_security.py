"""Safe defaults: a secret key made at first start and kept beside the database
(never a constant), given keys win; `check --deploy` clean on the production
example; admin logins throttled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from threading import Thread

import pytest
from django.contrib.auth.models import User
from django.core.management.utils import get_random_secret_key
from django.test import Client

from core.config import Settings
from core.secret_key import secret_key_path, secret_key_resolve
from tests.support.procs import ROOT


@pytest.fixture(autouse=True)
def no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built here read only what the test gives (not the pass's
    TELEMETRON_DATABASE__URL or the test settings' key file)."""
    for name in list(os.environ):
        if name.startswith("TELEMETRON_") and name != "TELEMETRON_CONFIG":
            monkeypatch.delenv(name)


def _cfg(**security: str) -> Settings:
    return Settings(database={"url": "sqlite:///var/data/telemetron.sqlite3"}, security=security)


def test_the_key_file_is_beside_the_sqlite_database_or_the_config() -> None:
    config = Path("/etc/telemetron/config.toml")
    assert secret_key_path(_cfg(), config) == Path("var/data/telemetron.secret-key")
    pg = Settings(database={"url": "postgresql://db/telemetron"})
    assert secret_key_path(pg, config) == Path("/etc/telemetron/telemetron.secret-key")
    assert secret_key_path(_cfg(secret_key_file="/k"), config) == Path("/k")
    memory = Settings(database={"url": "sqlite:///:memory:"})
    assert secret_key_path(memory, config) is None


def test_a_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    cfg = _cfg(secret_key_file=str(tmp_path / "k"))
    keys: list[str] = []
    threads = [
        Thread(target=lambda: keys.append(secret_key_resolve(cfg, tmp_path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 50  # every starter got the same key
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert secret_key_resolve(cfg, tmp_path) == keys[0]
    assert "insecure" not in keys[0]


def test_a_given_key_wins(tmp_path: Path) -> None:
    given = get_random_secret_key()
    assert secret_key_resolve(_cfg(secret_key=given), tmp_path) == given
    assert not list(tmp_path.iterdir())


def test_the_running_settings_have_a_generated_key() -> None:
    from django.conf import settings

    assert len(settings.SECRET_KEY) >= 50
    assert (ROOT / "tests" / ".work" / "unit.secret-key").read_text().strip() == settings.SECRET_KEY


def test_check_deploy_is_clean_with_the_production_example(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRON_")}
    env.update(
        DJANGO_SETTINGS_MODULE="telemetron_site.settings",
        TELEMETRON_CONFIG=str(ROOT / "deploy" / "production" / "config.toml"),
        TELEMETRON_SECURITY__SECRET_KEY=get_random_secret_key(),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout
    # the embedded default is not a production set-up, and check --deploy says so
    env["TELEMETRON_CONFIG"] = str(ROOT / "config.toml")
    env["TELEMETRON_DATABASE__URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "SECURE_SSL_REDIRECT" in proc.stderr + proc.stdout


@pytest.mark.django_db
def test_admin_logins_are_throttled_after_repeated_failures() -> None:
    User.objects.create_superuser("ops", "ops@example.com", "right-password")
    client = Client()
    for _ in range(5):
        wrong = client.post("/admin/login/", {"username": "ops", "password": "wrong"})
        assert wrong.status_code in (200, 429)
    locked = client.post(
        "/admin/login/?next=/admin/", {"username": "ops", "password": "right-password"}
    )
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # another user from the same address is not locked out
    User.objects.create_superuser("other", "o@example.com", "pw-of-other")
    ok = Client().post(
        "/admin/login/?next=/admin/", {"username": "other", "password": "pw-of-other"}
    )
    assert ok.status_code == 302
