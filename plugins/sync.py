"""The start-up rule of README, "Plugins: config.toml and the admin":
config.toml seeds the ``PluginConfig`` rows, then the admin owns them.

* A plugin named in config.toml with no row yet (or only a "discovered" row that
  nobody configured) is written: enabled, its parameters, its place in the file.
* Every other installed plugin with no row gets a disabled "discovered" row, so
  the admin lists every plugin.
* A row someone configured is left alone; where config.toml says otherwise, that
  is reported. ``force`` re-applies config.toml: its plugins as the file says,
  every other row disabled.

Run by ``serve`` at start and by ``manage.py plugins sync``; never at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import IntegrityError, transaction

from plugins.base import PluginSpec
from plugins.chains import Chains, build_plugin, plugin_class
from plugins.models import PluginConfig
from plugins.params import params_defaults, params_redacted, params_secret_keys
from plugins.registry import KINDS, Kind, Registry

__all__ = ["SyncAction", "SyncReport", "plugins_sync", "startup_sync", "sync_plan"]

POSITION_STEP = 10
Verb = Literal["create", "configure", "update", "disable", "discover", "differs"]


@dataclass(frozen=True)
class SyncAction:
    verb: Verb
    kind: Kind
    name: str
    enabled: bool = False
    position: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def writes(self) -> bool:
        return self.verb != "differs"

    def describe(self, *, dry_run: bool = False) -> str:
        label = f"{self.kind} {self.name}"
        state = f"{'enabled' if self.enabled else 'disabled'}, position {self.position}"
        would = "would " if dry_run else ""
        match self.verb:
            case "create" | "configure":
                return f"{label}: {would}{self.verb} from config.toml ({state})"
            case "update":
                return f"{label}: {would}update from config.toml ({self.detail})"
            case "disable":
                return f"{label}: {would}disable (not in config.toml)"
            case "discover":
                return f"{label}: {would}list in the admin (installed, not configured; disabled)"
            case "differs":
                return (
                    f"{label}: config.toml differs from the live configuration ({self.detail}); "
                    "the database wins (`manage.py plugins sync --force` applies config.toml)"
                )


@dataclass
class SyncReport:
    actions: list[SyncAction]
    dry_run: bool

    def count(self, verb: Verb) -> int:
        return sum(1 for a in self.actions if a.verb == verb)

    def summary(self) -> str:
        labels: tuple[tuple[Verb, str], ...] = (
            ("create", "created"),
            ("configure", "configured"),
            ("update", "updated"),
            ("disable", "disabled"),
            ("discover", "discovered"),
        )
        parts = [f"{self.count(v)} {label}" for v, label in labels]
        head = "plugins sync (dry run, nothing written)" if self.dry_run else "plugins sync"
        kept = self.count("differs")
        tail = f"; {kept} kept as the admin set them although config.toml differs" if kept else ""
        return f"{head}: {', '.join(parts)}{tail}"


def _config_params(spec: PluginSpec, registry: Registry) -> dict[str, Any]:
    """config.toml's parameters, validated and completed with the defaults."""
    plugin = build_plugin(spec, registry)  # raises PluginConfigError with the key's name
    return plugin.params.model_dump(mode="json")


def _differences(
    row: PluginConfig,
    enabled: bool,
    position: int,
    params: dict[str, Any],
    secrets: frozenset[str] = frozenset(),
) -> str:
    diffs = []
    if row.enabled != enabled:
        diffs.append(f"enabled {row.enabled} -> {enabled}")
    if row.position != position:
        diffs.append(f"position {row.position} -> {position}")
    if row.params != params:
        before, after = params_redacted(row.params, secrets), params_redacted(params, secrets)
        diffs.append(f"params {before} -> {after}")
    return "; ".join(diffs)


def sync_plan(
    *,
    specs: Sequence[PluginSpec],
    registry: Registry,
    rows: Sequence[PluginConfig],
    force: bool = False,
) -> list[SyncAction]:
    """What a sync does to ``rows`` for config.toml's ``specs`` (pure: no writes)."""
    by_key = {(r.kind, r.name): r for r in rows}
    actions: list[SyncAction] = []
    in_config: set[tuple[str, str]] = set()
    last_position: dict[str, int] = dict.fromkeys(KINDS, 0)
    for r in rows:
        last_position[r.kind] = max(last_position.get(r.kind, 0), r.position)

    index: dict[str, int] = dict.fromkeys(KINDS, 0)
    for spec in specs:
        index[spec.kind] += 1
        position = index[spec.kind] * POSITION_STEP
        params = _config_params(spec, registry)
        in_config.add((spec.kind, spec.name))
        row = by_key.get((spec.kind, spec.name))
        last_position[spec.kind] = max(last_position[spec.kind], position)
        if row is None:
            actions.append(SyncAction("create", spec.kind, spec.name, True, position, params))
            continue
        secrets = params_secret_keys(plugin_class(spec.kind, spec.name, registry).Params)
        diff = _differences(row, True, position, params, secrets)
        if row.source == PluginConfig.Source.DISCOVERED:
            actions.append(SyncAction("configure", spec.kind, spec.name, True, position, params))
        elif diff:
            verb: Verb = "update" if force else "differs"
            actions.append(SyncAction(verb, spec.kind, spec.name, True, position, params, diff))

    if force:
        for kind in KINDS:
            for r in rows:
                if r.kind == kind and (kind, r.name) not in in_config and r.enabled:
                    actions.append(SyncAction("disable", kind, r.name, False, r.position, r.params))

    for kind in KINDS:
        for name in registry.names(kind):
            if (kind, name) in by_key or (kind, name) in in_config:
                continue
            last_position[kind] += POSITION_STEP
            defaults = params_defaults(plugin_class(kind, name, registry).Params) or {}
            actions.append(SyncAction("discover", kind, name, False, last_position[kind], defaults))
    return actions


def _apply(actions: Sequence[SyncAction]) -> None:
    source_of = {
        "create": PluginConfig.Source.CONFIG,
        "configure": PluginConfig.Source.CONFIG,
        "update": PluginConfig.Source.CONFIG,
        "disable": PluginConfig.Source.CONFIG,
        "discover": PluginConfig.Source.DISCOVERED,
    }
    with transaction.atomic():
        for a in actions:
            if not a.writes:
                continue
            row = PluginConfig.objects.filter(kind=a.kind, name=a.name).first()
            if row is None:
                row = PluginConfig(kind=a.kind, name=a.name)
            row.enabled = a.enabled
            row.position = a.position
            row.params = a.params
            row.source = source_of[a.verb]
            row.updated_by = None
            row.save()


def plugins_sync(
    *,
    specs: Sequence[PluginSpec],
    registry: Registry,
    force: bool = False,
    dry_run: bool = False,
) -> SyncReport:
    """Plan and (unless ``dry_run``) apply a sync, in one transaction. Raises
    PluginConfigError when config.toml names an unknown plugin or bad params."""
    for attempt in (1, 2):
        rows = list(PluginConfig.objects.all())
        actions = sync_plan(specs=specs, registry=registry, rows=rows, force=force)
        if dry_run:
            break
        try:
            _apply(actions)
            break
        except IntegrityError:
            if attempt == 2:  # another process keeps seeding the same rows; it wins
                raise
    return SyncReport(actions, dry_run)


def startup_sync(*, specs: Sequence[PluginSpec], registry: Registry) -> list[str]:
    """What ``serve`` does before starting its processes: seed the rows from
    config.toml, then check the live configuration builds. Returns the lines to
    show the operator (the summary, then any warning)."""
    from plugins.selectors import plugin_specs_enabled

    report = plugins_sync(specs=specs, registry=registry)
    lines = [f"telemetron: {report.summary()}"]
    lines += [f"telemetron: warning: {a.describe()}" for a in report.actions if not a.writes]
    try:
        chains = Chains.build(plugin_specs_enabled(), registry)
    except Exception as exc:
        lines.append(
            f"telemetron: warning: the live plugin configuration does not build ({exc}); "
            "config.toml's chains are used until it is fixed in the admin"
        )
    else:
        lines.append(f"telemetron: plugins: {chains.describe()}")
    return lines
