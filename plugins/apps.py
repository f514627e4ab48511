from django.apps import AppConfig


class PluginsConfig(AppConfig):
    name = "plugins"
    verbose_name = "Plugins"

    def ready(self) -> None:
        # Build config.toml's chains once so an unknown plugin name or invalid
        # parameters stop every command with one clear line (manage.py prints
        # ConfigError without a traceback). Registration never touches the
        # database: the rows are seeded by `serve` / `plugins sync`, and read by
        # plugins.live on first use.
        from plugins import checks  # noqa: F401  (registers the system check)
        from plugins.chains import config_chains

        config_chains()
