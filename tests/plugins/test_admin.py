"""The plugins page in the admin: every discovered plugin, the parameters form
generated from the plugin's schema and validated by its pydantic model (the
field's message on error, nothing saved), import failures, the history, and
who may change what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from plugins.base import PluginSpec
from plugins.chains import PluginConfigError, build_plugin
from plugins.models import PluginConfig
from plugins.registry import LoadFailure, get_registry
from tests.support.jsonform import editor_config

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/plugins/pluginconfig/"


def _change_url(name: str) -> str:
    return f"{LIST_URL}{PluginConfig.objects.get(name=name).pk}/change/"


def _staff(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


@pytest.fixture
def editor(seeded: object) -> Client:
    client = Client()
    client.force_login(_staff("editor", "view_pluginconfig", "change_pluginconfig"))
    return client


@pytest.fixture
def viewer(seeded: object) -> Client:
    client = Client()
    client.force_login(_staff("viewer", "view_pluginconfig"))
    return client


def _post_change(client: Client, name: str, **fields: object) -> object:
    row = PluginConfig.objects.get(name=name)
    data = {
        "enabled": "on" if fields.get("enabled", row.enabled) else "",
        "position": str(fields.get("position", row.position)),
        "params": json.dumps(fields.get("params", row.params)),
    }
    if not data["enabled"]:
        del data["enabled"]
    return client.post(_change_url(name), data)


def test_page_lists_every_discovered_plugin_with_its_package(editor: Client) -> None:
    html = editor.get(LIST_URL).content.decode()
    registry = get_registry()
    for kind in ("validator", "processor"):
        for name in registry.names(kind):  # type: ignore[arg-type]
            assert f">{name}</a>" in html, name
    assert "telemetron-testplugins 0.1.0" in html
    assert 'name="form-0-enabled"' in html  # enable/disable and order, on the page


def test_change_form_is_generated_from_the_params_schema(editor: Client) -> None:
    html = editor.get(_change_url("SourceIdValidator")).content.decode()
    config = editor_config(html)
    allowed = config["schema"]["properties"]["allowed"]
    assert allowed["type"] == "array"
    assert allowed["items"]["type"] == "integer"
    assert allowed["items"]["minimum"] == 0


def test_valid_change_is_saved_and_recorded_with_who_and_what(editor: Client) -> None:
    response = _post_change(editor, "SourceIdValidator", params={"allowed": [1, 2]})
    assert response.status_code == 302, response.content.decode()[:2000]

    row = PluginConfig.objects.get(name="SourceIdValidator")
    assert row.params == {"allowed": [1, 2]}
    assert row.updated_by is not None and row.updated_by.username == "editor"
    assert row.source == "admin"
    entry = LogEntry.objects.get(object_id=str(row.pk))
    assert entry.user.username == "editor"
    assert entry.get_change_message() == 'params: {"allowed": []} -> {"allowed": [1, 2]}'


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"allowed": ["x"]}, "allowed.0: Input should be a valid integer"),
        ({"allowed": [-1]}, "allowed.0: Input should be greater than or equal to 0"),
        ({"allowed": [1], "extra": 1}, "extra: unknown parameter"),
    ],
)
def test_invalid_params_are_refused_with_the_fields_message_and_nothing_changes(
    editor: Client, params: dict[str, object], message: str
) -> None:
    response = _post_change(editor, "SourceIdValidator", enabled=True, params=params)

    assert response.status_code == 200
    assert message in response.content.decode()
    row = PluginConfig.objects.get(name="SourceIdValidator")
    assert row.params == {"allowed": []} and row.source == "config.toml"
    assert not LogEntry.objects.exists()
    # The same model, the same message as config.toml gets at start-up:
    with pytest.raises(PluginConfigError, match=message.replace(".", r"\.")):
        build_plugin(PluginSpec("validator", "SourceIdValidator", params), get_registry())


def test_changelist_enables_and_reorders_and_refuses_plugins_missing_params(
    editor: Client,
) -> None:
    rows = list(PluginConfig.objects.order_by("-kind", "position", "name"))
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": str(len(rows)), "_save": "1"}
    for i, row in enumerate(rows):
        data[f"form-{i}-id"] = str(row.pk)
        data[f"form-{i}-position"] = str(row.position)
        if row.enabled or row.name == "RecordingProcessor":
            data[f"form-{i}-enabled"] = "on"
    response = editor.post(LIST_URL, data)
    assert response.status_code == 200
    assert "cannot enable RecordingProcessor: path: Field required" in response.content.decode()
    assert not PluginConfig.objects.get(name="RecordingProcessor").enabled

    del data[f"form-{[r.name for r in rows].index('RecordingProcessor')}-enabled"]
    i = [r.name for r in rows].index("PoisonProcessor")
    data[f"form-{i}-enabled"] = "on"
    data[f"form-{i}-position"] = "5"
    assert editor.post(LIST_URL, data).status_code == 302
    poison = PluginConfig.objects.get(name="PoisonProcessor")
    assert (poison.enabled, poison.position) == (True, 5)
    entry = LogEntry.objects.get(object_id=str(poison.pk))
    before = rows[i].position
    assert entry.get_change_message() == f"enabled: False -> True; position: {before} -> 5"


def test_view_only_staff_sees_the_page_but_cannot_change(viewer: Client) -> None:
    page = viewer.get(LIST_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert ">SourceIdValidator</a>" in html
    assert 'name="form-0-enabled"' not in html

    assert viewer.get(_change_url("SourceIdValidator")).status_code == 200
    response = _post_change(viewer, "SourceIdValidator", params={"allowed": [1]})
    assert response.status_code == 403
    assert PluginConfig.objects.get(name="SourceIdValidator").params == {"allowed": []}


def test_staff_without_the_permission_and_anonymous_users_are_kept_out(seeded: object) -> None:
    client = Client()
    assert client.get(LIST_URL).status_code == 302  # to the login page
    client.force_login(_staff("nobody"))
    assert client.get(LIST_URL).status_code == 403


@pytest.fixture
def broken_registry() -> Iterator[None]:
    real = get_registry()
    failure = LoadFailure(
        "validator",
        "BrokenValidator",
        "broken_pkg:Broken",
        "ImportError: no module",
        package="broken-pkg",
        version="2.0",
    )
    with get_registry.override(replace(real, failures=[*real.failures, failure])):
        yield


def test_plugins_that_failed_to_import_are_listed_with_their_error(
    editor: Client, broken_registry: None
) -> None:
    html = editor.get(LIST_URL).content.decode()
    section = html.split('id="plugin-failures"', 1)[1].split("</div>", 1)[0]
    assert "BrokenValidator" in section
    assert "broken-pkg 2.0" in section
    assert "ImportError: no module" in section


def test_a_system_check_reports_plugins_that_failed_to_import(broken_registry: None) -> None:
    from django.core.checks import run_checks

    messages = [m for m in run_checks() if m.id == "telemetron.W001"]
    assert [m.msg for m in messages] == [
        "validator plugin 'BrokenValidator' (broken_pkg:Broken) failed to import: "
        "ImportError: no module"
    ]
