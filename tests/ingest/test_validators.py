"""The built-in validators, with the original service's semantics: an empty
``allowed`` list allows everything; a rejection names the reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ingest.validators import EventTypeValidator, SourceIdValidator
from plugins.base import U64_MAX, Event, EventRejected, PluginParams, PluginSpec, Validator
from plugins.chains import build_plugin
from plugins.registry import get_registry
from tests.conftest import event


def parsed(source_id: int = 1, type: str = "Heartbeat") -> Event:
    return Event.model_validate(event(source_id, type))


def source_ids(**params: Any) -> SourceIdValidator:
    return SourceIdValidator(SourceIdValidator.Params(**params))


def event_types(**params: Any) -> EventTypeValidator:
    return EventTypeValidator(EventTypeValidator.Params(**params))


# --- SourceIdValidator --------------------------------------------------------------


@pytest.mark.parametrize("source_id", [0, 1, 4, U64_MAX])
def test_source_id_empty_allowed_accepts_every_source(source_id: int) -> None:
    source_ids(allowed=[]).validate(parsed(source_id))
    source_ids().validate(parsed(source_id))  # the default is empty too


@pytest.mark.parametrize("source_id", [1, 2, 3, U64_MAX])
def test_source_id_in_allowed_is_accepted(source_id: int) -> None:
    source_ids(allowed=[1, 2, 3, U64_MAX]).validate(parsed(source_id))


@pytest.mark.parametrize("source_id", [0, 4, U64_MAX - 1])
def test_source_id_not_in_allowed_is_rejected_with_the_original_message(source_id: int) -> None:
    with pytest.raises(EventRejected) as info:
        source_ids(allowed=[1, 2, 3, U64_MAX]).validate(parsed(source_id))
    assert info.value.reason == f"Disallowed source_id: {source_id}"
    assert str(info.value) == info.value.reason


@pytest.mark.parametrize("allowed", [[-1], [U64_MAX + 1], ["one"], [1.5]])
def test_source_id_params_are_u64(allowed: list[Any]) -> None:
    with pytest.raises(ValidationError):
        SourceIdValidator.Params(allowed=allowed)


# --- EventTypeValidator ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["Heartbeat", "Click", "anything"])
def test_event_type_empty_allowed_accepts_every_type(event_type: str) -> None:
    event_types(allowed=[]).validate(parsed(type=event_type))
    event_types().validate(parsed(type=event_type))


def test_event_type_in_allowed_is_accepted() -> None:
    validator = event_types(allowed=["Heartbeat", "Click"])
    validator.validate(parsed(type="Heartbeat"))
    validator.validate(parsed(type="Click"))


@pytest.mark.parametrize("event_type", ["Purchase", "heartbeat", "Heartbeat "])
def test_event_type_not_in_allowed_is_rejected_exactly(event_type: str) -> None:
    with pytest.raises(EventRejected) as info:
        event_types(allowed=["Heartbeat", "Click"]).validate(parsed(type=event_type))
    assert info.value.reason == f"Disallowed event type: {event_type}"


# --- as plugins ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("SourceIdValidator", SourceIdValidator), ("EventTypeValidator", EventTypeValidator)],
)
def test_builtins_are_registered_validators(name: str, cls: type) -> None:
    assert get_registry().get("validator", name) is cls
    assert cls.name == name


def test_built_from_a_spec_with_params() -> None:
    spec = PluginSpec("validator", "SourceIdValidator", {"allowed": [4]})
    plugin = build_plugin(spec, get_registry())
    assert isinstance(plugin, SourceIdValidator)
    plugin.validate(parsed(4))
    with pytest.raises(EventRejected, match="Disallowed source_id: 5"):
        plugin.validate(parsed(5))


def test_unknown_params_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SourceIdValidator.Params(allowed=[1], allow=[2])  # type: ignore[call-arg]


# --- validate_batch: the same outcome as validate, event by event -------------------------


def one_by_one(validator: Any, events: list[Event]) -> dict[int, str]:
    out = {}
    for index, e in enumerate(events):
        try:
            validator.validate(e)
        except EventRejected as exc:
            out[index] = exc.reason
    return out


BATCH = [parsed(1), parsed(5, "Click"), parsed(2, "Spam"), parsed(5)]


@pytest.mark.parametrize(
    "validator",
    [
        source_ids(),
        source_ids(allowed=[1, 2]),
        source_ids(allowed=[9]),
        event_types(),
        event_types(allowed=["Heartbeat"]),
        event_types(allowed=["Nope"]),
    ],
    ids=["ids-empty", "ids-some", "ids-none", "types-empty", "types-some", "types-none"],
)
def test_validate_batch_rejects_what_validate_rejects(validator: Any) -> None:
    got = {i: exc.reason for i, exc in validator.validate_batch(BATCH).items()}
    assert got == one_by_one(validator, BATCH)


def test_the_default_validate_batch_calls_validate_on_each_event() -> None:
    seen: list[int] = []

    class OddOnly(Validator):
        name = "OddOnly"

        def validate(self, event: Event) -> None:
            seen.append(event.source_id)
            if event.source_id % 2 == 0:
                raise EventRejected(f"even: {event.source_id}")

    rejected = OddOnly(PluginParams()).validate_batch(BATCH)
    assert seen == [1, 5, 2, 5]
    assert {i: exc.reason for i, exc in rejected.items()} == {2: "even: 2"}
