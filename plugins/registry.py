"""Plugin discovery: Python entry points, groups ``telemetron.validators``,
``telemetron.transformers`` and ``telemetron.processors`` (built-ins are registered there too, in
``pyproject.toml``). Registration never touches the database.

A plugin that fails to import is kept as a :class:`LoadFailure` with its name,
so the operator sees which one and why instead of a bare traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from core.process_wide import process_wide
from plugins.base import Kind, Plugin, Processor, Transformer, Validator

__all__ = [
    "GROUPS",
    "KINDS",
    "Kind",
    "LoadFailure",
    "Registry",
    "RegistryError",
    "discover",
    "get_registry",
    "kind_of",
]

GROUPS: dict[Kind, str] = {
    "validator": "telemetron.validators",
    "transformer": "telemetron.transformers",
    "processor": "telemetron.processors",
}
_BASES: dict[Kind, type[Plugin]] = {
    "validator": Validator,
    "transformer": Transformer,
    "processor": Processor,
}


KINDS: tuple[Kind, ...] = ("validator", "transformer", "processor")  # in the order they run


def kind_of(value: str) -> Kind:
    """A stored kind (a ``PluginConfig.kind``) as a :data:`Kind`; anything else is
    a processor, as before transformers were a kind."""
    return value if value in ("validator", "transformer") else "processor"  # type: ignore[return-value]


class RegistryError(Exception):
    """Two plugins with one name, or a plugin of the wrong kind."""


@dataclass(frozen=True)
class LoadFailure:
    kind: Kind
    name: str
    target: str
    error: str
    package: str = ""
    version: str = ""


@dataclass
class Registry:
    plugins: dict[Kind, dict[str, type[Plugin]]] = field(
        default_factory=lambda: {"validator": {}, "transformer": {}, "processor": {}}
    )
    origins: dict[tuple[Kind, str], str] = field(default_factory=dict)
    # (distribution name, version) that registered each plugin, when known.
    packages: dict[tuple[Kind, str], tuple[str, str]] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)

    def register(self, kind: Kind, cls: type[Plugin], origin: str = "") -> None:
        if not (isinstance(cls, type) and issubclass(cls, _BASES[kind])):
            raise RegistryError(f"{cls!r} is not a {_BASES[kind].__name__} subclass")
        name = cls.name
        existing = self.plugins[kind].get(name)
        if existing is not None and existing is not cls:
            raise RegistryError(
                f"two {kind} plugins are named {name!r}: "
                f"{existing.__module__}.{existing.__qualname__} and "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        self.plugins[kind][name] = cls
        self.origins[(kind, name)] = origin

    def get(self, kind: Kind, name: str) -> type[Plugin] | None:
        return self.plugins[kind].get(name)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.plugins[kind])


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _package(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else ("", "")


def discover(*, strict: bool = False) -> Registry:
    """Load every plugin from the entry-point groups.

    With ``strict`` an import failure is raised (tests); otherwise it is recorded.
    """
    registry = Registry()
    for kind, group in GROUPS.items():
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                cls = ep.load()
                if getattr(cls, "name", None) != ep.name:
                    raise RegistryError(
                        f"entry point {ep.name!r} loads a plugin named "
                        f"{getattr(cls, 'name', None)!r}; the two must match"
                    )
                registry.register(kind, cls, _origin(ep))
                registry.packages[(kind, ep.name)] = _package(ep)
            except Exception as exc:
                if strict:
                    raise
                registry.failures.append(
                    LoadFailure(
                        kind, ep.name, ep.value, f"{type(exc).__name__}: {exc}", *_package(ep)
                    )
                )
    return registry


@process_wide
def get_registry() -> Registry:
    """Every installed plugin, discovered once per process (new entry points are
    seen by new processes only)."""
    return discover()
