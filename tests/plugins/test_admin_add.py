"""The "Add plugin" page offers only the plugins the registry knows and that have no row
yet; the chosen one's form starts from its defaults, its kind and name fixed,
never typed in."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from plugins.editor import params_to_editor
from plugins.models import PluginConfig
from plugins.params import params_initial
from plugins.registry import get_registry
from tests.support.jsonform import editor_config

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/plugins/pluginconfig/add/"


@pytest.fixture
def editor(seeded: object) -> Client:
    """Staff who may add; the rows of tests/config.toml only (three plugins: the
    others installed since the last sync)."""
    PluginConfig.objects.filter(source=PluginConfig.Source.DISCOVERED).delete()
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    codenames = ("view_pluginconfig", "add_pluginconfig", "change_pluginconfig")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def _add_url(kind: str, name: str) -> str:
    return f"{ADD_URL}?kind={kind}&name={name}"


def test_add_lists_the_installed_plugins_without_a_row_to_choose_from(editor: Client) -> None:
    page = editor.get(ADD_URL).content.decode()
    choices = page.split('id="plugin-choices"', 1)[1].split("</table>", 1)[0]
    registry = get_registry()
    listed = {(r.kind, r.name) for r in PluginConfig.objects.all()}
    for kind in registry.plugins:
        for name in registry.names(kind):
            link = f'href="?kind={kind}&amp;name={name}"'
            assert (link in choices) == ((kind, name) not in listed), name
    assert "Accept only events whose sourceId" not in choices  # listed already
    assert "Forward each batch as one JSON POST" in choices  # the plugin's own summary
    assert 'name="name"' not in page and 'name="kind"' not in page  # nothing to type


def test_the_chosen_plugins_form_starts_from_its_defaults(editor: Client) -> None:
    page = editor.get(_add_url("processor", "WebhookProcessor")).content.decode()
    webhook = get_registry().get("processor", "WebhookProcessor")
    assert webhook is not None
    data = editor_config(page)["data"]
    assert data == params_to_editor(webhook.Params, params_initial(webhook.Params))
    assert data["timeout"] == 5.0 and data["headers"] == {}  # not null, not {}
    assert 'name="name"' not in page and "WebhookProcessor" in page
    assert page.count(" field-kind") == page.count(" field-name") == 1  # shown once
    position = PluginConfig.objects.filter(kind="processor").order_by("-position")[0].position
    assert f'name="position" value="{position + 10}"' in page  # last in its chain


def test_adding_the_chosen_plugin_writes_its_row(editor: Client) -> None:
    params = {"url": "https://hooks.example.com/t", "secret": "a-secret-0123456789"}
    data = {"enabled": "on", "position": "30", "params": json.dumps(params)}
    # kind and name come from the address the form was chosen by, nothing else
    response = editor.post(_add_url("processor", "WebhookProcessor"), {**data, "name": "Other"})
    assert response.status_code == 302, response.content.decode()[:3000]
    row = PluginConfig.objects.get(name="WebhookProcessor")
    assert (row.kind, row.enabled, row.position, row.source) == ("processor", True, 30, "admin")
    assert row.params["secret"] == params["secret"] and row.params["timeout"] == 5.0
    assert not PluginConfig.objects.filter(name="Other").exists()

    # Listed now: its address leads to its page, and it is no longer offered.
    again = editor.get(_add_url("processor", "WebhookProcessor"))
    assert again.status_code == 302
    assert again["Location"] == f"/admin/plugins/pluginconfig/{row.pk}/change/"
    assert "?kind=processor&amp;name=WebhookProcessor" not in editor.get(ADD_URL).content.decode()


@pytest.mark.parametrize(
    "query", ["?kind=processor&name=NoSuchPlugin", "?kind=gadget&name=WebhookProcessor", ""]
)
def test_a_plugin_the_registry_does_not_know_cannot_be_added(editor: Client, query: str) -> None:
    rows = PluginConfig.objects.count()
    data = {"enabled": "on", "position": "1", "params": "{}", "kind": "processor", "name": "X"}
    response = editor.post(ADD_URL + query, data)
    assert response.status_code == 200  # the list to choose from again, nothing written
    assert 'id="plugin-choices"' in response.content.decode()
    assert PluginConfig.objects.count() == rows


def test_add_says_so_when_every_installed_plugin_is_listed(editor: Client) -> None:
    from plugins.sync import plugins_sync

    plugins_sync(specs=[], registry=get_registry())
    page = editor.get(ADD_URL).content.decode()
    assert 'id="plugin-choices-none"' in page and "already" in page


def test_staff_without_the_add_permission_get_no_list(seeded: object) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_pluginconfig"))
    client = Client()
    client.force_login(user)
    assert client.get(ADD_URL).status_code == 403
