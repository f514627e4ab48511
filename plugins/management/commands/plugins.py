"""``manage.py plugins list`` and ``manage.py plugins sync [--force] [--dry-run]``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from core import commands
from core.config import get_config
from plugins.catalog import CatalogEntry, plugin_catalog
from plugins.chains import PluginConfigError, specs_from_config
from plugins.models import PluginConfig
from plugins.registry import get_registry
from plugins.sync import plugins_sync

COLUMNS = ("NAME", "KIND", "ENABLED", "POSITION", "PACKAGE", "VERSION", "ERROR")


def _row(e: CatalogEntry) -> tuple[str, ...]:
    enabled = ("yes" if e.enabled else "no") if e.configured else "no row"
    position = "" if e.position is None else str(e.position)
    return (e.name, e.kind, enabled, position, e.package or "-", e.version or "-", e.error or "-")


class Command(commands.Command):
    help = commands.describe(
        """Show or seed the live plugin configuration. `list`: every installed plugin
        with its state; `sync`: write config.toml's plugins that have no row yet into
        the database (serve does this at start).""",
        "manage.py plugins list",
        "manage.py plugins sync --dry-run --force",
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = self.subcommands(parser, ("list", "sync"))
        about = "List every plugin: name, kind, enabled, position, package, version, error."
        ls = self.subcommand(sub, "list", help=about, description=commands.describe(about))
        ls.add_argument("--json", action="store_true", help="Print a JSON array instead.")
        about = (
            "Write each plugin named in config.toml that has no row yet (the admin owns "
            "the others), and list every installed plugin in the admin."
        )
        sync = self.subcommand(sub, "sync", help=about, description=commands.describe(about))
        sync.add_argument(
            "--force",
            action="store_true",
            help="Re-apply config.toml over the admin's changes: its plugins as the file says, "
            "every other plugin disabled.",
        )
        sync.add_argument(
            "--dry-run", action="store_true", help="Print what would change; write nothing."
        )
        for p in (ls, sync):
            commands.verbosity_option(p, "0 quiet, 1 summary (default), 2 every change.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "list":
            self._list(as_json=opts["json"])
        else:
            self._sync(force=opts["force"], dry_run=opts["dry_run"], verbosity=opts["verbosity"])

    def _list(self, *, as_json: bool) -> None:
        entries = plugin_catalog(registry=get_registry(), rows=list(PluginConfig.objects.all()))
        if as_json:
            self.stdout.write(json.dumps([e.as_dict() for e in entries], indent=2))
            return
        self.stdout.write(commands.table([COLUMNS, *(_row(e) for e in entries)]))
        broken = sum(1 for e in entries if e.error)
        enabled = sum(1 for e in entries if e.enabled)
        errors = f", {broken} with errors" if broken else ""
        self.stdout.write(f"{len(entries)} plugins, {enabled} enabled{errors}")

    def _sync(self, *, force: bool, dry_run: bool, verbosity: int) -> None:
        try:
            report = plugins_sync(
                specs=specs_from_config(get_config()),
                registry=get_registry(),
                force=force,
                dry_run=dry_run,
            )
        except PluginConfigError as exc:
            raise CommandError(f"config.toml: {exc}; fix it and run again") from None
        for action in report.actions:
            if action.verb == "differs":
                self.stderr.write(action.describe())
            elif dry_run or verbosity >= 2:
                self.stdout.write(action.describe(dry_run=dry_run))
        self.stdout.write(report.summary())
