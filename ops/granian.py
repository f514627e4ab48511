"""``python -m ops.granian [granian's options] TARGET``: granian's command line, with
Django loaded before granian forks its workers.

Run as ``python -m granian``, granian's main process imports nothing of the
application and each worker imports its own copy of Django, the URLconf, the API
and the plugins (~90 MB of PSS per worker, none of it shared; bench/RESULTS.md,
issue 23). Here the main process sets Django up, imports the URLconf (the views,
the API, the ingest path) and freezes what it holds out of the garbage
collector's reach (``gc.freeze``: a collection writing to every object's header
would copy each page back), so the workers granian forks share those pages, as
the queue workers share the cluster's (``processing.apps``).

The main process opens no database connection and starts no thread: the WSGI
module (``telemetron_site.wsgi``: the handlers, the die-with-parent signal) is
imported by each worker, as before. The command line reads as granian's own (the
module's name ends in ``granian``), so what tells the tree's processes apart by it
still does.
"""

from __future__ import annotations

import gc
import os

__all__ = ["main", "preload"]


def preload() -> None:
    """Set Django up and import what every web worker's first request imports."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetron_site.settings")
    import django

    django.setup()
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URLconf: views, API, routers)
    connections.close_all()  # (none is expected; none may be shared with a worker)
    gc.collect()
    gc.freeze()


def main() -> None:
    preload()
    from granian.cli import entrypoint

    entrypoint()  # what ``python -m granian`` runs


if __name__ == "__main__":
    main()
