"""The static files' collection at serve's start-up (ops/static.py): once, then
only when the installed apps' files change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.test import override_settings

from ops.static import STAMP_NAME, static_collect_if_stale, static_fingerprint

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_collects_once_with_hashed_names_and_gzip_copies(tmp_path: Path) -> None:
    root = tmp_path / "static"
    with override_settings(STATIC_ROOT=root, STORAGES=MANIFEST_STORAGES):
        assert static_collect_if_stale() is True
        manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
        hashed = manifest["ninja/swagger-ui-bundle.js"]
        assert hashed != "ninja/swagger-ui-bundle.js"
        assert (root / hashed).exists()
        assert (root / f"{hashed}.gz").exists()
        assert (root / manifest["admin/css/base.css"]).exists()
        assert (root / STAMP_NAME).read_text().strip() == static_fingerprint()

        assert static_collect_if_stale() is False  # nothing changed: nothing done


def test_collects_again_when_a_source_file_changed(tmp_path: Path) -> None:
    source = tmp_path / "extra"
    source.mkdir()
    (source / "extra.css").write_text("body { color: black }\n")
    root = tmp_path / "static"
    settings = {
        "STATIC_ROOT": root,
        "STORAGES": MANIFEST_STORAGES,
        "STATICFILES_DIRS": [source],
    }
    with override_settings(**settings):
        assert static_collect_if_stale() is True
        assert static_collect_if_stale() is False
        (source / "extra.css").write_text("body { color: navy }\n")
        os.utime(source / "extra.css", ns=(1, 1))  # a different mtime for sure
        assert static_collect_if_stale() is True
        manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
        assert "navy" in (root / manifest["extra.css"]).read_text()


def test_serve_collects_in_a_forked_child(tmp_path: Path) -> None:
    """``serve`` (the tree's long-lived supervisor) leaves collectstatic's
    allocations to a child; what it collected is there all the same."""
    from ops.management.commands.serve import static_collect_forked

    root = tmp_path / "static"
    with override_settings(STATIC_ROOT=root, STORAGES=MANIFEST_STORAGES):
        assert static_collect_forked() is True
        manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
        assert (root / manifest["admin/css/base.css"]).exists()
        assert (root / STAMP_NAME).read_text().strip() == static_fingerprint()
        assert static_collect_forked() is False


def test_serve_raises_the_childs_error(tmp_path: Path) -> None:
    from ops.management.commands.serve import static_collect_forked

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with override_settings(STATIC_ROOT=blocked / "static"), pytest.raises(OSError):
        static_collect_forked()
