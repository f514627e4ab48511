"""Fixtures of the processing tests: the live processor chain a test needs
(built from the installed plugins through the registry, as the loader does), and
a small factory of dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugins import loader
from plugins.loader import Chains, PluginSpec, get_registry
from processing.models import DeadLetter
from tests.conftest import event

UseProcessors = Callable[..., Chains]


@pytest.fixture
def use_processors() -> Iterator[UseProcessors]:
    """``use_processors(("Name", {params}), ...)`` makes those the live processor
    chain of this process (validators: none) until the test ends."""

    def use(*plugins: tuple[str, dict[str, Any]]) -> Chains:
        specs = [PluginSpec("processor", name, params) for name, params in plugins]
        chains = Chains.build(specs, get_registry())
        loader.reset(chains)
        return chains

    yield use
    loader.reset()


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
