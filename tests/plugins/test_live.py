"""The live chains: built from the rows, re-checked at most once per
``plugins.reload_interval`` with one small query (nothing per call in between),
rebuilt only when the rows changed, and never replaced by a change that fails
to build."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.config import get_config
from plugins import live
from plugins.chains import Chains
from plugins.live import get_chains
from plugins.models import PluginConfig
from plugins.registry import get_registry
from tests.support.clock import Clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    with live.clock_override(c):
        yield c


def _names(chains: Chains) -> tuple[list[str], list[str]]:
    return [v.name for v in chains.validators], [p.name for p in chains.processors]


def test_empty_table_means_config_toml(clock: Clock) -> None:
    assert _names(get_chains()) == (
        ["SourceIdValidator", "EventTypeValidator"],
        ["StorageProcessor"],
    )


def test_chains_come_from_enabled_rows_in_position_order(seeded: object, clock: Clock) -> None:
    PluginConfig.objects.filter(name="SourceIdValidator").update(position=99)
    PluginConfig.objects.filter(name="PoisonProcessor").update(enabled=True, position=1)
    assert _names(get_chains()) == (
        ["EventTypeValidator", "SourceIdValidator"],
        ["PoisonProcessor", "StorageProcessor"],
    )


def test_between_checks_a_call_costs_no_query_and_a_check_costs_one(
    seeded: object, clock: Clock
) -> None:
    interval = get_config().plugins.reload_interval
    first = get_chains()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            assert get_chains() is first
    assert len(queries) == 0

    clock.now += interval
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            assert get_chains() is first  # nothing changed: same chains
    assert len(queries) == 1


def test_a_saved_change_is_picked_up_at_the_next_check(seeded: object, clock: Clock) -> None:
    get_chains()
    row = PluginConfig.objects.get(name="SourceIdValidator")
    row.params = {"allowed": [1, 2]}
    row.save()
    assert get_chains().validators[0].params.allowed == []  # type: ignore[attr-defined]

    clock.now += get_config().plugins.reload_interval
    assert get_chains().validators[0].params.allowed == [1, 2]  # type: ignore[attr-defined]


def test_a_change_that_fails_to_build_never_replaces_the_working_chain(
    seeded: object, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    working = get_chains()
    row = PluginConfig.objects.get(name="SourceIdValidator")
    row.params = {"allowed": ["not a number"]}
    row.save()
    clock.now += get_config().plugins.reload_interval
    with caplog.at_level(logging.ERROR, logger="telemetron.plugins"):
        assert get_chains() is working
        clock.now += get_config().plugins.reload_interval
        assert get_chains() is working
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors  # said once, not at every check
    assert "plugin configuration change not applied" in errors[0]
    assert (
        "[validation.plugins.SourceIdValidator] allowed.0: Input should be a valid integer"
        in (errors[0])
    )

    row.params = {"allowed": [5]}
    row.save()
    clock.now += get_config().plugins.reload_interval
    assert get_chains().validators[0].params.allowed == [5]  # type: ignore[attr-defined]


def test_uninstalled_plugin_row_keeps_the_working_chain(seeded: object, clock: Clock) -> None:
    working = get_chains()
    PluginConfig.objects.create(kind="validator", name="GoneValidator", enabled=True)
    clock.now += get_config().plugins.reload_interval
    assert get_chains() is working


def test_reset_with_chains_pins_them(seeded: object, clock: Clock) -> None:
    pinned = Chains(validators=(), processors=())
    live.reset(pinned)
    clock.now += 10 * get_config().plugins.reload_interval
    assert get_chains() is pinned


def test_registry_lists_where_each_plugin_comes_from() -> None:
    registry = get_registry()
    assert registry.packages[("validator", "SourceIdValidator")] == ("telemetron", "0.1.0")
    assert registry.packages[("processor", "FlakyProcessor")][0] == "telemetron-testplugins"


def test_plugins_in_use_asks_no_database_and_builds_nothing() -> None:
    live.reset()  # nothing read yet: config.toml's names (tests/config.toml)
    with CaptureQueriesContext(connection) as queries:
        validators, transformers, processors = live.plugins_in_use()
    assert len(queries) == 0
    assert transformers == []
    assert validators == ["SourceIdValidator", "EventTypeValidator"]
    assert processors == ["StorageProcessor"]
    chains = Chains.build([], get_registry())
    live.reset(chains)
    assert live.plugins_in_use() == ([], [], [])
