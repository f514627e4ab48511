"""Each built-in plugin is usable from the admin alone: enabled with its
parameters in the plugin's form, it is in the live chains and does its work on
the next request (batches are processed inline in these tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from plugins import live
from plugins.models import PluginConfig
from tests.conftest import event
from tests.support.client import post
from tests.support.receiver import Receiver, receiver_running

pytestmark = pytest.mark.django_db

SECRET = "admin-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_running(SECRET) as r:
        yield r


def _enable(client: Client, name: str, params: dict[str, Any]) -> None:
    row = PluginConfig.objects.get(name=name)
    data = {"enabled": "on", "position": str(row.position), "params": json.dumps(params)}
    response = client.post(f"/admin/plugins/pluginconfig/{row.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    live.reset()  # what plugins.reload_interval does in a running process


def test_the_three_built_ins_enabled_in_the_admin_do_their_work(
    plugin_admin: Client, receiver: Receiver
) -> None:
    from archive.selectors import ArchiveFilter, archived_events

    schema = {"type": "object", "properties": {"price": {"minimum": 0}}}
    _enable(plugin_admin, "JsonSchemaValidator", {"schemas": {"purchase": json.dumps(schema)}})
    _enable(plugin_admin, "ArchiveProcessor", {})
    _enable(
        plugin_admin,
        "WebhookProcessor",
        {"url": receiver.url, "secret": SECRET, "timeout": 5, "event_types": ["purchase"]},
    )
    chains = live.get_chains()
    assert [v.name for v in chains.validators] == ["JsonSchemaValidator"]
    assert [p.name for p in chains.processors] == ["ArchiveProcessor", "WebhookProcessor"]

    refused = post(plugin_admin, "/ingest", event(5, "purchase", data={"price": -1}))
    assert refused.json()["error"] == "data.price: -1 is less than the minimum of 0"
    assert post(plugin_admin, "/ingest", event(5, "purchase", data={"price": 2})).status_code == 202
    assert post(plugin_admin, "/ingest", event(5, "Heartbeat")).status_code == 202

    archived = list(archived_events(filters=ArchiveFilter(source_id=5)))
    data = [(r[1], json.loads(r[3]) if r[3] else None) for r in archived]
    assert data == [("purchase", {"price": 2}), ("Heartbeat", None)]
    (delivery,) = receiver.deliveries
    assert delivery.signed and [e["type"] for e in delivery.body["events"]] == ["purchase"]
