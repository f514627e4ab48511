"""Built-in validator plugins, with the original service's semantics: an empty
``allowed`` list allows everything."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from plugins.base import U64_MAX, Event, EventRejected, PluginParams, Validator

__all__ = ["EventTypeValidator", "SourceIdValidator"]


class SourceIdValidator(Validator):
    """Accept only events whose ``sourceId`` is in ``allowed``."""

    name = "SourceIdValidator"

    class Params(PluginParams):
        allowed: list[Annotated[int, Field(ge=0, le=U64_MAX)]] = Field(
            default_factory=list,
            description="Source ids to accept; empty accepts every source id.",
        )

    params: SourceIdValidator.Params

    def __init__(self, params: SourceIdValidator.Params) -> None:
        super().__init__(params)
        self._allowed = frozenset(params.allowed)

    def validate(self, event: Event) -> None:
        if self._allowed and event.source_id not in self._allowed:
            raise EventRejected(f"Disallowed source_id: {event.source_id}")


class EventTypeValidator(Validator):
    """Accept only events whose ``type`` is in ``allowed``."""

    name = "EventTypeValidator"

    class Params(PluginParams):
        allowed: list[str] = Field(
            default_factory=list,
            description="Event types to accept; empty accepts every type.",
        )

    params: EventTypeValidator.Params

    def __init__(self, params: EventTypeValidator.Params) -> None:
        super().__init__(params)
        self._allowed = frozenset(params.allowed)

    def validate(self, event: Event) -> None:
        if self._allowed and event.type not in self._allowed:
            raise EventRejected(f"Disallowed event type: {event.type}")
