"""The static files (the admin's, django-ninja's Swagger UI for ``/docs``) in
``STATIC_ROOT``, where whitenoise serves them: hashed names, gzip copies, a
year's immutable caching (``STORAGES`` in telemetron_site/settings.py).

``manage.py serve`` calls :func:`static_collect_if_stale` at start-up, so
``make run`` stays the only set-up step: Django's ``collectstatic`` runs when
the files the installed apps ship differ from the last collection (a fingerprint
of their names, sizes and modification times, kept beside them), else nothing
is done (a listing of ~150 files). Several ``serve`` processes starting at once
from one installation take turns on a lock file and collect once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command

__all__ = ["STAMP_NAME", "static_collect_if_stale", "static_fingerprint"]

STAMP_NAME = ".telemetron-collected"
_LOCK_NAME = ".telemetron-collect.lock"


def static_fingerprint() -> str:
    """A digest of every file the static finders see (name, size, mtime) and
    of the storage that post-processes them."""
    digest = hashlib.sha256(settings.STORAGES["staticfiles"]["BACKEND"].encode())
    entries: list[str] = []
    for finder in get_finders():
        for name, storage in finder.list(["CVS", ".*", "*~"]):
            st = os.stat(storage.path(name))
            entries.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def static_collect_if_stale() -> bool:
    """Run ``collectstatic`` into ``STATIC_ROOT`` unless the last run collected
    the same files; True when it ran."""
    root = Path(settings.STATIC_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / STAMP_NAME
    with (root / _LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        wanted = static_fingerprint()
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return False
        call_command("collectstatic", interactive=False, verbosity=0)
        stamp.write_text(wanted + "\n")
        return True
