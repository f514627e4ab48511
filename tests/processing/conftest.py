"""Fixtures of the processing tests: wire events and a small factory of dead
letters (``use_processors`` is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from processing.models import DeadLetter
from tests.conftest import UseChains, event

UseProcessors = UseChains


def wire_events(n: int, *, source_id: int = 1, type: str = "Click") -> list[dict[str, Any]]:
    """``n`` wire events with distinct timestamps, normalised like the broker's."""
    return [
        {**event(source_id, type, f"2023-10-27T09:{i // 60:02d}:{i % 60:02d}Z"), "data": None}
        for i in range(n)
    ]


MakeLetter = Callable[..., DeadLetter]


@pytest.fixture
def make_letter(db: None) -> MakeLetter:
    counter = iter(range(1, 10_000))

    def make(plugin: str = "FailingProcessor", events: int = 3, **fields: Any) -> DeadLetter:
        fields.setdefault("batch_id", f"batch{next(counter):04d}")
        fields.setdefault("error_class", "ProcessingError")
        fields.setdefault("error_message", "always fails")
        fields.setdefault("attempts", 3)
        return DeadLetter.objects.create(plugin=plugin, events=wire_events(events), **fields)

    return make
