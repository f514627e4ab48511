"""The live plugin chains: which validators and processors run, in which order,
with which parameters.

The database (``PluginConfig`` rows, edited in the admin) is the live state;
``config.toml`` seeds it at start (:mod:`plugins.sync`) and stands in while the
table is still empty. :func:`build_chain` is the one place where a list of
:class:`PluginSpec` becomes plugin instances.

Hot reload, with the ingest hot path in mind: :func:`get_chains` costs one
clock reading and one comparison per call. Once per ``plugins.reload_interval``
seconds one caller (the others keep going with the chains in hand) runs one
small query, the rows' ids and ``updated_at``; only when that changed are the
rows read and the chains rebuilt. A change that fails to build is logged and
never replaces the chains in use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from plugins.base import Plugin, Processor, Validator
from plugins.params import params_messages
from plugins.registry import Kind, Registry, discover
from telemetron_site.config import ConfigError, Settings, get_config

__all__ = [
    "Chains",
    "PluginConfigError",
    "PluginSpec",
    "build_chain",
    "build_plugin",
    "config_chains",
    "get_chains",
    "get_registry",
    "reset",
    "specs_from_config",
]

log = logging.getLogger("telemetron.plugins")


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
    loc, msg = params_messages(exc)[0]
    key = ".".join(str(p) for p in loc)
    section = "validation" if spec.kind == "validator" else "processing"
    return f"[{section}.plugins.{spec.name}] {key}: {msg}"


def plugin_class(kind: Kind, name: str, registry: Registry) -> type[Plugin]:
    """The installed plugin class, or PluginConfigError naming the known ones."""
    cls = registry.get(kind, name)
    if cls is None:
        known = ", ".join(registry.names(kind)) or "none"
        failed = [f.name for f in registry.failures if f.kind == kind and f.name == name]
        why = " (it is installed but failed to import; see `manage.py check`)" if failed else ""
        raise PluginConfigError(f"unknown {kind} plugin {name!r}{why}; known: {known}")
    return cls


def build_plugin(spec: PluginSpec, registry: Registry) -> Plugin:
    cls = plugin_class(spec.kind, spec.name, registry)
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

    def describe(self) -> str:
        names = lambda chain: ", ".join(p.name for p in chain) or "none"  # noqa: E731
        return f"validators [{names(self.validators)}], processors [{names(self.processors)}]"


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """Every installed plugin, discovered once per process (new entry points are
    seen by new processes only)."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = discover()
    return _registry


def config_chains() -> Chains:
    """The chains config.toml alone describes (no database): checked at start-up,
    and used while the database has no plugin rows."""
    return Chains.build(specs_from_config(get_config()), get_registry())


@dataclass(frozen=True, slots=True)
class _Live:
    chains: Chains
    next_check: float  # clock() value after which the database is asked again
    fingerprint: tuple[object, ...] | None  # what the last check read (None: nothing)
    read_failed: bool = False


_live: _Live | None = None
_refresh_lock = threading.Lock()
_clock: Callable[[], float] = time.monotonic


def get_chains() -> Chains:
    """The chains every request and batch uses."""
    live = _live
    if live is not None and _clock() < live.next_check:
        return live.chains
    return _refresh(live)


def _refresh(seen: _Live | None) -> Chains:
    if seen is not None:
        if not _refresh_lock.acquire(blocking=False):
            return seen.chains  # another thread is checking; keep going meanwhile
    else:
        _refresh_lock.acquire()
    try:
        live = _live
        if live is not None and _clock() < live.next_check:
            return live.chains
        new = _check(live)
        _install(new)
        return new.chains
    finally:
        _refresh_lock.release()


def _install(new: _Live | None) -> None:
    global _live
    _live = new


def _specs(fingerprint: tuple[object, ...]) -> list[PluginSpec]:
    """The enabled rows, in chain order; config.toml while the table is empty
    (a database no ``serve`` or ``plugins sync`` has seeded yet)."""
    from plugins import selectors

    return selectors.plugin_specs_enabled() if fingerprint else specs_from_config(get_config())


def _check(live: _Live | None) -> _Live:
    from plugins import selectors  # the models are importable once Django is set up

    next_check = _clock() + get_config().plugins.reload_interval
    try:
        fingerprint = selectors.plugin_config_fingerprint()
        changed = live is None or fingerprint != live.fingerprint
        specs = _specs(fingerprint) if changed else []
    except Exception as exc:
        if live is None or not live.read_failed:
            log.warning(
                "cannot read the plugin configuration from the database (%s); %s",
                exc,
                "using config.toml" if live is None else "keeping the chains in use",
            )
        if live is None:
            return _Live(config_chains(), next_check, None, read_failed=True)
        return _Live(live.chains, next_check, live.fingerprint, read_failed=True)
    if not changed:
        assert live is not None
        return _Live(live.chains, next_check, fingerprint)
    try:
        chains = Chains.build(specs, get_registry())
    except Exception as exc:
        # A row that fails to build: keep what works and say why, once (the same
        # fingerprint is not rebuilt, so this is not repeated every interval).
        if live is None:
            log.error(
                "the plugin configuration in the database does not build (%s); "
                "using config.toml until it is fixed in the admin",
                exc,
            )
            return _Live(config_chains(), next_check, fingerprint)
        log.error(
            "plugin configuration change not applied (%s); keeping %s", exc, live.chains.describe()
        )
        return _Live(live.chains, next_check, fingerprint)
    if live is not None:
        log.info("plugin configuration reloaded: %s", chains.describe())
    return _Live(chains, next_check, fingerprint)


def reset(chains: Chains | None = None) -> None:
    """Forget the chains in use, so the next call reads the database again; or,
    given ``chains``, use exactly those (no reloading) until the next reset (tests)."""
    with _refresh_lock:
        _install(_Live(chains, math.inf, None) if chains is not None else None)
