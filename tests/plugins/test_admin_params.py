"""A plugin's page gives back the parameters it showed: for every built-in plugin,
a save that only toggles *Enabled* (the editor's data sent back as the page drew
it, or no data at all when the editor did not load) leaves the parameters as
they were; an edit of each kind of parameter is saved as the plugin reads it.

Issue 19 found the JsonSchemaValidator's schemas wiped and the webhook refused
with "url: Field required" by such a save."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from plugins.editor import params_to_editor
from plugins.models import PluginConfig
from plugins.registry import get_registry
from tests.support.jsonform import editor_config

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "webhook-secret-0123456789"
# Parameters of each built-in plugin, every one set away from its default.
BUILT_INS: dict[str, dict[str, Any]] = {
    "SourceIdValidator": {"allowed": [1, 2]},
    "EventTypeValidator": {"allowed": ["purchase", "signup"]},
    "JsonSchemaValidator": {
        "schemas": {"purchase": {"type": "object", "required": ["price"]}, "signup": True},
        "unknown_types": "reject",
        "check_formats": False,
    },
    "CelTransformer": {
        "rules": [
            {"name": "debug", "when": 'event.type == "debug"', "action": "drop"},
            {"action": "set", "field": "data.tier", "value": '"pro"', "when": "true"},
            {"action": "rename", "field": "data.old", "to": "data.new"},
            {"action": "delete", "field": "data.secret"},
        ]
    },
    "PiiRedactor": {
        "drop_paths": ["data.phone"],
        "hash_paths": ["data.userId"],
        "secret": WEBHOOK_SECRET,
        "patterns": ["email", "card"],
        "custom": {"ssn": "[0-9]{3}-[0-9]{2}-[0-9]{4}"},
        "replacement": "<{name}>",
    },
    "ClientContext": {
        "ip": "drop",
        "ipv4_prefix": 16,
        "ipv6_prefix": 32,
        "user_agent": False,
        "bots": "crawlerdetect",
    },
    "Sampler": {"by": "source", "rates": {"1": 10, "7": 2}, "default_rate": 3, "salt": "s1"},
    "StorageProcessor": {},
    "ArchiveProcessor": {},
    "WebhookProcessor": {
        "url": "https://hooks.example.com/t",
        "secret": WEBHOOK_SECRET,
        "timeout": 2.5,
        "headers": {"Authorization": "Bearer abc", "X-Team": "ops"},
        "event_types": ["purchase"],
        "sources": [1, 7],
    },
}


def _configured(name: str, params: dict[str, Any]) -> PluginConfig:
    """The row as config.toml would leave it: enabled, its parameters validated."""
    row = PluginConfig.objects.get(name=name)
    cls = get_registry().get(row.kind, name)  # type: ignore[arg-type]
    assert cls is not None
    row.params = cls.Params.model_validate(params).model_dump(mode="json")
    row.enabled = True
    row.save()
    return row


def _url(row: PluginConfig) -> str:
    return f"/admin/plugins/pluginconfig/{row.pk}/change/"


def _post(client: Client, row: PluginConfig, *, enabled: bool, params: str) -> Any:
    data = {"position": str(row.position), "params": params}
    if enabled:
        data["enabled"] = "on"
    return client.post(_url(row), data)


def test_every_built_in_plugin_is_covered_here() -> None:
    registry = get_registry()
    built_in = {name for (_, name), (pkg, _) in registry.packages.items() if pkg == "telemetron"}
    assert built_in == set(BUILT_INS)


@pytest.mark.parametrize("name", BUILT_INS)
def test_a_save_that_only_toggles_enabled_keeps_the_parameters(
    plugin_admin: Client, name: str
) -> None:
    """Also when the editor did not load (no JavaScript, an error): its field
    then comes empty."""
    row = _configured(name, BUILT_INS[name])
    stored = row.params
    for enabled, editor_loaded in ((False, True), (True, True), (False, False)):
        page = plugin_admin.get(_url(row)).content.decode()
        assert WEBHOOK_SECRET not in page
        shown = json.dumps(editor_config(page)["data"]) if editor_loaded else ""
        response = _post(plugin_admin, row, enabled=enabled, params=shown)
        assert response.status_code == 302, response.content.decode()[:3000]
        row.refresh_from_db()
        assert (row.enabled, row.params) == (enabled, stored)
    history = [e.get_change_message() for e in LogEntry.objects.order_by("pk")]
    off, on = "enabled: True -> False", "enabled: False -> True"
    assert history == [off, on, off]


def test_an_edit_of_each_kind_is_saved_as_the_plugin_reads_it(plugin_admin: Client) -> None:
    row = _configured(
        "EveryKindValidator",
        {"labels": {"team": "ops"}, "secret": "first-secret", "extra": {"n": 1}},
    )
    shown = editor_config(plugin_admin.get(_url(row)).content.decode())["data"]
    assert shown["secret"] == "" and shown["extra"] == {"n": "1"}
    shown["labels"]["env"] = "prod"  # a free key added
    shown["rules"].append({"field": "plan", "equals": "pro"})  # an object in a list
    shown["secret"] = "second-secret"
    shown["limits"]["max_items"] = 3  # a nested model's field
    shown["limits"]["note"] = ""  # an optional field left empty
    shown["severity"] = "high"
    shown["threshold"] = 1.25
    shown["strict"] = True
    shown["extra"]["o"] = '{"k": [true]}'  # any JSON, typed as text
    response = _post(plugin_admin, row, enabled=True, params=json.dumps(shown))
    assert response.status_code == 302, response.content.decode()[:3000]

    row.refresh_from_db()
    assert row.params == {
        "echo_type": "Echo",
        "labels": {"team": "ops", "env": "prod"},
        "rules": [{"field": "plan", "equals": "pro"}],
        "secret": "second-secret",
        "limits": {"max_items": 3, "note": None},
        "severity": "high",
        "threshold": 1.25,
        "strict": True,
        "extra": {"n": 1, "o": {"k": [True]}},
    }
    cls = get_registry().get("validator", "EveryKindValidator")
    assert cls is not None
    again = editor_config(plugin_admin.get(_url(row)).content.decode())["data"]
    assert again == params_to_editor(cls.Params, {**row.params, "secret": ""})
    (entry,) = LogEntry.objects.all()
    assert "second-secret" not in entry.get_change_message()
    assert entry.get_change_message().endswith("(secret changed)")


def test_json_text_that_does_not_parse_is_refused_beside_its_field(plugin_admin: Client) -> None:
    row = _configured("EveryKindValidator", {"secret": "first-secret"})
    shown = editor_config(plugin_admin.get(_url(row)).content.decode())["data"]
    shown["extra"]["bad"] = "{oops"
    response = _post(plugin_admin, row, enabled=True, params=json.dumps(shown))
    assert response.status_code == 200
    config = editor_config(response.content.decode())
    assert config["errorMap"]["extra§bad"][0].startswith("not valid JSON: ")
    row.refresh_from_db()
    assert row.params["extra"] == {}


def test_view_only_staff_see_the_parameters_with_the_secret_masked(plugin_admin: Client) -> None:
    row = _configured("WebhookProcessor", BUILT_INS["WebhookProcessor"])
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_pluginconfig"))
    client = Client()
    client.force_login(viewer)
    page = client.get(_url(row)).content.decode()
    assert page.count(" field-kind") == page.count(" field-params_masked") == 1
    assert "hooks.example.com" in page and "X-Team" in page
    assert WEBHOOK_SECRET not in page and "********" in page


def test_the_plugins_summary_under_its_parameters_is_text(plugin_admin: Client) -> None:
    row = PluginConfig.objects.get(name="SlowProcessor")
    page = plugin_admin.get(_url(row)).content.decode()
    assert "named &lt;batch id&gt;.&lt;time ns&gt;.&lt;pid of the process" in page
