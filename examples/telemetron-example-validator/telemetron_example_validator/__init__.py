"""An example third-party Telemetron plugin: a validator with parameters.

The entry point's name (in pyproject.toml) must equal the class's ``name``.
"""

from __future__ import annotations

from pydantic import Field

from plugins.base import Event, EventRejected, PluginParams, Validator

__all__ = ["TypePrefixValidator"]


class TypePrefixValidator(Validator):
    """Accept only events whose type starts with one of ``prefixes``."""

    name = "TypePrefixValidator"

    class Params(PluginParams):
        prefixes: list[str] = Field(
            default_factory=list,
            description="Accepted event type prefixes; empty accepts every type.",
        )
        ignore_case: bool = Field(False, description="Compare without regard to case.")

    params: TypePrefixValidator.Params

    def __init__(self, params: TypePrefixValidator.Params) -> None:
        super().__init__(params)
        fold = str.casefold if params.ignore_case else str
        self._fold = fold
        self._prefixes = tuple(fold(p) for p in params.prefixes)

    def validate(self, event: Event) -> None:
        if self._prefixes and not self._fold(event.type).startswith(self._prefixes):
            raise EventRejected(f"Event type {event.type!r} has none of the allowed prefixes")
