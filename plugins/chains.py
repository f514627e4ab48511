"""Building plugin chains: which validators and processors run, in which order,
with which parameters. :func:`build_chain` is the one place where a list of
:class:`~plugins.base.PluginSpec` becomes plugin instances; an unknown name or
invalid parameters are a :class:`PluginConfigError` naming the key.

Which specs are live (the ``PluginConfig`` rows, or config.toml while the table
is empty) and the hot reload of them are :mod:`plugins.live`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError

from core.config import ConfigError, Settings, get_config
from core.errors import loc_text
from plugins.base import Kind, Plugin, PluginSpec, Processor, Transformer, Validator
from plugins.params import params_messages
from plugins.registry import Registry, get_registry

__all__ = [
    "SECTIONS",
    "Chains",
    "PluginConfigError",
    "build_chain",
    "build_plugin",
    "config_chains",
    "plugin_class",
    "specs_from_config",
]


# The config.toml table of each kind's plugins: [<section>.plugins.<Name>].
SECTIONS: dict[Kind, str] = {
    "validator": "validation",
    "transformer": "transformation",
    "processor": "processing",
}


class PluginConfigError(ConfigError):
    """An unknown plugin name or invalid plugin parameters."""


def specs_from_config(cfg: Settings) -> list[PluginSpec]:
    specs = [PluginSpec("validator", n, dict(p)) for n, p in cfg.validation.plugins.items()]
    specs += [PluginSpec("transformer", n, dict(p)) for n, p in cfg.transformation.plugins.items()]
    specs += [PluginSpec("processor", n, dict(p)) for n, p in cfg.processing.plugins.items()]
    return specs


def _params_error(spec: PluginSpec, exc: ValidationError) -> str:
    loc, msg = params_messages(exc)[0]
    key = loc_text(loc)
    section = SECTIONS[spec.kind]
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
    transformers: Sequence[Transformer] = ()

    @classmethod
    def build(cls, specs: Sequence[PluginSpec], registry: Registry) -> Chains:
        return cls(
            validators=tuple(cast(list[Validator], build_chain("validator", specs, registry))),
            processors=tuple(cast(list[Processor], build_chain("processor", specs, registry))),
            transformers=tuple(
                cast(list[Transformer], build_chain("transformer", specs, registry))
            ),
        )

    def describe(self) -> str:
        names = lambda chain: ", ".join(p.name for p in chain) or "none"  # noqa: E731
        return (
            f"validators [{names(self.validators)}], transformers [{names(self.transformers)}],"
            f" processors [{names(self.processors)}]"
        )


def config_chains() -> Chains:
    """The chains config.toml alone describes (no database): checked at start-up,
    and used while the database has no plugin rows."""
    return Chains.build(specs_from_config(get_config()), get_registry())
