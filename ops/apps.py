from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the service: metrics, readiness and the clusters' heartbeat, the
    broker accessor, logging, and ``manage.py serve``."""

    name = "ops"
    verbose_name = "Operations"
