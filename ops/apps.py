from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    """Operating the service: metrics, readiness and the clusters' heartbeat, the
    broker accessor, logging, and ``manage.py serve``."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.apps import apps

        from ops.heartbeat import cache_table_create

        # The table of the cache holding the worker clusters' heartbeats, made
        # once django-q2's own tables are (post_migrate is sent only for apps with
        # models, which ops has none of).
        post_migrate.connect(cache_table_create, sender=apps.get_app_config("django_q"))
