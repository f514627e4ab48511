"""The start-up rule (README, "Plugins: config.toml and the admin"):
config.toml seeds the rows, then the admin owns them; `plugins sync --force`
re-applies config.toml; `--dry-run` writes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from plugins.base import PluginSpec
from plugins.chains import PluginConfigError
from plugins.models import PluginConfig
from plugins.registry import get_registry
from plugins.sync import plugins_sync
from tests.plugins.conftest import CONFIG_SPECS

pytestmark = pytest.mark.django_db


def _rows() -> dict[str, tuple[str, bool, int, dict[str, object], str]]:
    return {
        r.name: (r.kind, r.enabled, r.position, r.params, r.source)
        for r in PluginConfig.objects.all()
    }


def test_first_sync_writes_config_plugins_enabled_in_file_order_and_lists_the_others() -> None:
    report = plugins_sync(specs=CONFIG_SPECS, registry=get_registry())

    rows = _rows()
    assert rows["SourceIdValidator"] == ("validator", True, 10, {"allowed": []}, "config.toml")
    assert rows["EventTypeValidator"] == ("validator", True, 20, {"allowed": []}, "config.toml")
    assert rows["StorageProcessor"] == ("processor", True, 10, {}, "config.toml")
    # Every other installed plugin gets a disabled row so the admin lists it,
    # with its defaults as parameters (none when one is required).
    # ... after the configured ones, in name order.
    others = [n for n in get_registry().names("processor") if n != "StorageProcessor"]
    flaky_position = 10 + 10 * (others.index("FlakyProcessor") + 1)
    assert rows["FlakyProcessor"][1:] == (False, flaky_position, {"fail_times": 2}, "discovered")
    assert rows["RecordingProcessor"][1] is False and rows["RecordingProcessor"][3] == {}
    assert set(rows) >= set(get_registry().names("processor")) | set(
        get_registry().names("validator")
    )
    assert report.count("create") == 3
    assert report.count("discover") == len(rows) - 3


def test_sync_leaves_rows_the_admin_owns_and_reports_where_config_differs() -> None:
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    row = PluginConfig.objects.get(name="SourceIdValidator")
    row.params, row.source = {"allowed": [7]}, PluginConfig.Source.ADMIN
    row.save()

    report = plugins_sync(specs=CONFIG_SPECS, registry=get_registry())

    assert PluginConfig.objects.get(name="SourceIdValidator").params == {"allowed": [7]}
    (differs,) = [a for a in report.actions if a.verb == "differs"]
    assert differs.name == "SourceIdValidator"
    assert "params {'allowed': [7]} -> {'allowed': []}" in differs.describe()
    assert "plugins sync --force" in differs.describe()
    assert report.count("create") == report.count("discover") == 0


def test_plugin_added_to_config_later_is_configured_over_its_discovered_row() -> None:
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    assert _rows()["FlakyProcessor"][1] is False

    specs = [*CONFIG_SPECS, PluginSpec("processor", "FlakyProcessor", {"fail_times": 1})]
    report = plugins_sync(specs=specs, registry=get_registry())

    assert _rows()["FlakyProcessor"] == ("processor", True, 20, {"fail_times": 1}, "config.toml")
    assert [a.name for a in report.actions if a.verb == "configure"] == ["FlakyProcessor"]


def test_force_reapplies_config_and_disables_what_it_does_not_name() -> None:
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    PluginConfig.objects.filter(name="SourceIdValidator").update(params={"allowed": [7]})
    poison = PluginConfig.objects.get(name="PoisonProcessor")
    poison.enabled, poison.source = True, PluginConfig.Source.ADMIN
    poison.save()

    report = plugins_sync(specs=CONFIG_SPECS, registry=get_registry(), force=True)

    rows = _rows()
    assert rows["SourceIdValidator"][1:4] == (True, 10, {"allowed": []})
    assert rows["PoisonProcessor"][1] is False
    assert {(a.verb, a.name) for a in report.actions} == {
        ("update", "SourceIdValidator"),
        ("disable", "PoisonProcessor"),
    }


def test_dry_run_describes_and_writes_nothing() -> None:
    out = io.StringIO()
    call_command("plugins", "sync", "--dry-run", stdout=out)

    assert PluginConfig.objects.count() == 0
    text = out.getvalue()
    assert (
        "validator SourceIdValidator: would create from config.toml (enabled, position 10)" in text
    )
    assert "plugins sync (dry run, nothing written): 3 created" in text


def test_config_params_are_validated_by_the_plugin_model_with_the_keys_name() -> None:
    bad = [PluginSpec("validator", "SourceIdValidator", {"allowed": ["x"]})]
    with pytest.raises(PluginConfigError, match=r"allowed\.0: Input should be a valid integer"):
        plugins_sync(specs=bad, registry=get_registry())
    unknown = [PluginSpec("validator", "SourceIdValidator", {"alowed": [1]})]
    with pytest.raises(PluginConfigError, match="alowed: unknown parameter"):
        plugins_sync(specs=unknown, registry=get_registry())
    assert PluginConfig.objects.count() == 0  # nothing half-written


def test_unknown_plugin_stops_the_sync_command_with_the_known_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "plugins.management.commands.plugins.specs_from_config",
        lambda cfg: [PluginSpec("validator", "NoSuchValidator", {})],
    )
    with pytest.raises(CommandError, match=r"unknown validator plugin 'NoSuchValidator'.*known: "):
        call_command("plugins", "sync")


def test_list_shows_name_kind_enabled_position_package_version_and_errors() -> None:
    plugins_sync(specs=CONFIG_SPECS, registry=get_registry())
    out = io.StringIO()
    call_command("plugins", "list", stdout=out)
    lines = out.getvalue().splitlines()

    assert lines[0].split() == [
        "NAME", "KIND", "ENABLED", "POSITION", "PACKAGE", "VERSION", "ERROR"
    ]  # fmt: skip
    by_name = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert by_name["SourceIdValidator"][:6] == [
        "SourceIdValidator", "validator", "yes", "10", "telemetron", "0.1.0"
    ]  # fmt: skip
    flaky = PluginConfig.objects.get(name="FlakyProcessor")
    assert by_name["FlakyProcessor"][2:5] == ["no", str(flaky.position), "telemetron-testplugins"]
    assert "set parameters before enabling: path: Field required" in " ".join(
        by_name["RecordingProcessor"]
    )
    assert lines[-1].startswith(f"{len(by_name)} plugins, 3 enabled")


def test_every_subcommand_and_option_has_help() -> None:
    from plugins.management.commands.plugins import Command

    parser = Command().create_parser("manage.py", "plugins")
    [action] = [a for a in parser._actions if a.dest == "action"]
    subs = dict(action.choices)  # type: ignore[arg-type]
    assert set(subs) == {"list", "sync"}
    for name, sub in subs.items():
        for option in sub._actions:
            assert option.help, f"plugins {name} {option.option_strings} has no help"
    assert "--force" in subs["sync"].format_help() and "--dry-run" in subs["sync"].format_help()
