"""The live plugin chains: which validators and processors run, in which order,
with which parameters.

Today ``config.toml`` alone decides (``[validation.plugins.*]`` and
``[processing.plugins.*]`` tables, in file order). :func:`build_chain` is the one
place where a list of :class:`PluginSpec` becomes plugin instances, so another
source of specs (the admin's ``PluginConfig`` rows) plugs in here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from plugins.base import Plugin, Processor, Validator
from plugins.registry import Kind, Registry, discover
from telemetron_site.config import ConfigError, Settings, get_config

__all__ = [
    "Chains",
    "PluginConfigError",
    "PluginSpec",
    "build_chain",
    "get_chains",
    "get_registry",
    "reset",
    "specs_from_config",
]


class PluginConfigError(ConfigError):
    """An unknown plugin name or invalid plugin parameters."""


@dataclass(frozen=True)
class PluginSpec:
    kind: Kind
    name: str
    params: dict[str, Any] = field(default_factory=dict)


def specs_from_config(cfg: Settings) -> list[PluginSpec]:
    specs = [PluginSpec("validator", n, dict(p)) for n, p in cfg.validation.plugins.items()]
    specs += [PluginSpec("processor", n, dict(p)) for n, p in cfg.processing.plugins.items()]
    return specs


def _params_error(spec: PluginSpec, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    msg = "unknown parameter" if first["type"] == "extra_forbidden" else first["msg"]
    section = "validation" if spec.kind == "validator" else "processing"
    return f"[{section}.plugins.{spec.name}] {key}: {msg}"


def build_plugin(spec: PluginSpec, registry: Registry) -> Plugin:
    cls = registry.get(spec.kind, spec.name)
    if cls is None:
        known = ", ".join(registry.names(spec.kind)) or "none"
        failed = [f.name for f in registry.failures if f.kind == spec.kind and f.name == spec.name]
        why = " (it is installed but failed to import; see `manage.py check`)" if failed else ""
        raise PluginConfigError(f"unknown {spec.kind} plugin {spec.name!r}{why}; known: {known}")
    try:
        params = cls.Params.model_validate(spec.params)
    except ValidationError as exc:
        raise PluginConfigError(_params_error(spec, exc)) from None
    return cls(params)


def build_chain(kind: Kind, specs: Iterable[PluginSpec], registry: Registry) -> list[Plugin]:
    return [build_plugin(s, registry) for s in specs if s.kind == kind]


@dataclass(frozen=True)
class Chains:
    validators: Sequence[Validator]
    processors: Sequence[Processor]

    @classmethod
    def build(cls, specs: Sequence[PluginSpec], registry: Registry) -> Chains:
        return cls(
            validators=tuple(cast(list[Validator], build_chain("validator", specs, registry))),
            processors=tuple(cast(list[Processor], build_chain("processor", specs, registry))),
        )


_lock = threading.RLock()
_registry: Registry | None = None
_chains: Chains | None = None


def get_registry() -> Registry:
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = discover()
    return _registry


def get_chains() -> Chains:
    """The chains every request and batch uses (built once per process)."""
    global _chains
    chains = _chains
    if chains is None:
        with _lock:
            if _chains is None:
                _chains = Chains.build(specs_from_config(get_config()), get_registry())
            chains = _chains
    return chains


def reset(chains: Chains | None = None) -> None:
    """Drop (or replace) the cached chains; used by tests and configuration reloads."""
    global _chains
    with _lock:
        _chains = chains
