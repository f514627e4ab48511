"""Every plugin an operator should know about, in one list: the installed ones
(built-in or from a package), the ones that failed to import, and rows whose
plugin is gone; each with its live configuration and what is wrong, if anything.
Read by ``manage.py plugins list`` and the admin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from plugins.models import PluginConfig
from plugins.params import params_messages, params_problems_text
from plugins.registry import KINDS, Kind, Registry, kind_of

__all__ = ["CatalogEntry", "params_summary", "plugin_catalog", "row_problem"]


@dataclass(frozen=True)
class CatalogEntry:
    kind: Kind
    name: str
    package: str
    version: str
    configured: bool  # has a PluginConfig row
    enabled: bool
    position: int | None
    source: str
    error: str  # import failure, not installed, or parameters that do not validate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_problem(row: PluginConfig, registry: Registry) -> str:
    """Why this row cannot build its plugin in this process ("" when it can)."""
    kind = kind_of(row.kind)
    failure = next((f for f in registry.failures if (f.kind, f.name) == (kind, row.name)), None)
    if failure is not None:
        return f"failed to import: {failure.error}"
    cls = registry.get(kind, row.name)
    if cls is None:
        return "not installed"
    try:
        cls.Params.model_validate(row.params)
    except ValidationError as exc:
        what = "invalid parameters" if row.enabled else "set parameters before enabling"
        return f"{what}: {params_summary(exc)}"
    return ""


def params_summary(exc: ValidationError) -> str:
    """Every message of a Params validation error on one line."""
    return params_problems_text(params_messages(exc))


def plugin_catalog(*, registry: Registry, rows: Sequence[PluginConfig]) -> list[CatalogEntry]:
    """Validators first, then transformers, then processors; each in chain order,
    unconfigured last."""
    by_key = {(r.kind, r.name): r for r in rows}
    keys: set[tuple[Kind, str]] = set()
    for kind in KINDS:
        keys.update((kind, n) for n in registry.names(kind))  # type: ignore[arg-type]
    keys.update((f.kind, f.name) for f in registry.failures)
    keys.update((kind_of(r.kind), r.name) for r in rows)

    entries = []
    for kind, name in keys:
        row = by_key.get((kind, name))
        package, version = registry.packages.get((kind, name), ("", ""))
        failure = next((f for f in registry.failures if (f.kind, f.name) == (kind, name)), None)
        if failure is not None:
            package, version = failure.package, failure.version
        if row is not None:
            error = row_problem(row, registry)
        else:
            error = f"failed to import: {failure.error}" if failure is not None else ""
        entries.append(
            CatalogEntry(
                kind=kind,
                name=name,
                package=package,
                version=version,
                configured=row is not None,
                enabled=bool(row and row.enabled),
                position=row.position if row is not None else None,
                source=row.source if row is not None else "",
                error=error,
            )
        )
    order = {kind: i for i, kind in enumerate(KINDS)}
    entries.sort(
        key=lambda e: (order[e.kind], e.position is None, e.position or 0, e.name),
    )
    return entries
