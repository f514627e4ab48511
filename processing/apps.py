import gc
import sys

from django.apps import AppConfig


def _cluster_process() -> bool:
    """``manage.py qcluster`` / ``python -m django qcluster`` (what ``serve`` runs)."""
    return len(sys.argv) > 1 and sys.argv[1] == "qcluster"


class ProcessingConfig(AppConfig):
    name = "processing"
    verbose_name = "Processing"

    def ready(self) -> None:
        if _cluster_process():
            # Import the task and every installed plugin in the cluster's first
            # process, before django-q2 forks its sentinel, workers, pusher and
            # monitor: they share these pages instead of each importing its own
            # copy (~10 MB of PSS per process), and frozen objects are left
            # alone by the collector, so the pages stay shared.
            import processing.tasks  # noqa: F401
            from plugins.registry import get_registry

            get_registry()
            gc.freeze()
