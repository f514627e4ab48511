from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ProcessingConfig(AppConfig):
    name = "processing"
    verbose_name = "Processing"

    def ready(self) -> None:
        from telemetron_site.cluster_status import cache_table_create

        # The table of the cache holding the worker clusters' heartbeats.
        post_migrate.connect(cache_table_create, sender=self)
