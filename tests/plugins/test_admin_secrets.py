"""A plugin's secret parameters (``plugins.base.Secret``, e.g. the
WebhookProcessor's ``secret``) stay out of the admin's plain view: a password
field left empty, never sent to the browser, masked in the list, the history and
``plugins sync``'s warnings; an empty one keeps the stored value. The URL and the
secret are checked by the form, with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from plugins.base import PluginSpec
from plugins.models import PluginConfig
from plugins.registry import get_registry
from plugins.sync import plugins_sync
from tests.support.jsonform import editor_config

pytestmark = pytest.mark.django_db

SECRET = "first-secret-0123456789"
LIST_URL = "/admin/plugins/pluginconfig/"


def _row() -> PluginConfig:
    return PluginConfig.objects.get(name="WebhookProcessor")


def _change_url() -> str:
    return f"{LIST_URL}{_row().pk}/change/"


def _save(client: Client, **params: Any) -> Any:
    values = {"url": "https://hooks.example.com/t", "secret": "", "timeout": 5.0, **params}
    data = {"position": str(_row().position), "params": json.dumps(values), "enabled": "on"}
    return client.post(_change_url(), data)


def test_the_secret_is_saved_but_never_shown(plugin_admin: Client) -> None:
    response = _save(plugin_admin, secret=SECRET)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert _row().params["secret"] == SECRET and _row().enabled

    form = plugin_admin.get(_change_url()).content.decode()
    assert SECRET not in form
    config = editor_config(form)
    secret_field = config["schema"]["properties"]["secret"]
    assert secret_field["format"] == "password"  # drawn as a password input
    assert "leave empty to keep the one stored" in secret_field["help_text"]
    assert config["data"]["secret"] == ""

    listing = plugin_admin.get(LIST_URL).content.decode()
    assert SECRET not in listing and "&quot;secret&quot;: &quot;********&quot;" in listing
    (entry,) = LogEntry.objects.all()
    assert SECRET not in entry.get_change_message()
    assert entry.get_change_message().endswith("(secret changed)")


def test_an_empty_secret_keeps_the_stored_one_and_a_new_one_replaces_it(
    plugin_admin: Client,
) -> None:
    _save(plugin_admin, secret=SECRET)
    assert _save(plugin_admin, secret="", timeout=2.0).status_code == 302
    assert _row().params["secret"] == SECRET and _row().params["timeout"] == 2.0
    last = LogEntry.objects.order_by("-pk").first()
    assert last is not None and "secret changed" not in last.get_change_message()

    assert _save(plugin_admin, secret="second-secret-0123456789").status_code == 302
    assert _row().params["secret"] == "second-secret-0123456789"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"secret": "short"}, "secret: must be at least 16 characters long"),
        ({"secret": SECRET, "url": "hooks.example.com"}, "url: must start with https://"),
        ({"secret": SECRET, "url": "https://me:pw@hooks.example.com"}, "url: must not hold"),
        ({"secret": ""}, "secret: Field required"),  # nothing stored yet to keep
    ],
)
def test_the_form_refuses_a_bad_url_or_secret_with_the_reason(
    plugin_admin: Client, params: dict[str, Any], message: str
) -> None:
    if params["secret"] == "":
        del params["secret"]
    response = _save(plugin_admin, **params)
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not _row().enabled


def test_plugins_sync_masks_the_secret_where_config_toml_differs(plugin_admin: Client) -> None:
    _save(plugin_admin, secret=SECRET)
    spec = PluginSpec(
        "processor",
        "WebhookProcessor",
        {"url": "https://other.example.com/t", "secret": "config-secret-0123456789"},
    )
    report = plugins_sync(specs=[spec], registry=get_registry())
    (warning,) = [a.describe() for a in report.actions if a.verb == "differs"]
    assert "other.example.com" in warning
    assert SECRET not in warning and "config-secret" not in warning and "********" in warning
