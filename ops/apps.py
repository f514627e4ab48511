from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the service: metrics, readiness and the clusters' heartbeat, the
    broker accessor, logging, and ``manage.py serve``."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops.cluster import cluster_guard

        # Every django-q2 cluster of this process survives the death of any one of
        # its processes, and none outlives it (ops/cluster.py).
        cluster_guard()
