"""Built-in validator plugins, with the original service's semantics: an empty
``allowed`` list allows everything."""

from __future__ import annotations

from collections.abc import Sequence
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

    def validate_batch(self, events: Sequence[Event]) -> dict[int, EventRejected]:
        if not self._allowed:
            return {}  # an empty allow-list accepts every event: nothing to look at
        allowed = self._allowed
        return {
            i: EventRejected(f"Disallowed source_id: {e.source_id}")
            for i, e in enumerate(events)
            if e.source_id not in allowed
        }


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

    def validate_batch(self, events: Sequence[Event]) -> dict[int, EventRejected]:
        if not self._allowed:
            return {}
        allowed = self._allowed
        return {
            i: EventRejected(f"Disallowed event type: {e.type}")
            for i, e in enumerate(events)
            if e.type not in allowed
        }
