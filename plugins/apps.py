from django.apps import AppConfig


class PluginsConfig(AppConfig):
    name = "plugins"
    verbose_name = "Plugins"

    def ready(self) -> None:
        # Build the configured chains once at start-up so an unknown plugin name or
        # invalid parameters stop every command with one clear line (manage.py
        # prints ConfigError without a traceback). No database access here.
        from plugins import checks  # noqa: F401  (registers the system check)
        from plugins.loader import get_chains

        get_chains()
