"""The admin's landing page: the dashboard, for admin_client only, with the figures
of the events just ingested (equal to GET /stats), the per-minute chart, the
pending dead letters by plugin with their link, the plugin chains and the top
sources; a panel whose read fails shows its error and the rest is drawn."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_q.conf import Conf

from broker.interface import queue_broker
from broker.redis_streams import RedisStreamsBroker
from plugins.models import PluginConfig
from processing.dead_letters import dead_letter_create
from sources.services import source_create
from tests.conftest import event
from tests.support.client import post, stats
from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

HOME = "/admin/"


def _text(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, f"no #{element_id}"
    return found.group(1).strip()


def _send(client: Client, *events: dict[str, Any]) -> None:
    assert post(client, "/ingest/batch", list(events)).status_code == 202


def test_the_landing_page_is_for_staff_only(client: Client) -> None:
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(User.objects.create_user("someone", password="pw", is_staff=False))
    assert client.get(HOME).status_code == 302


def test_the_dashboard_shows_the_events_just_ingested(admin_client: Client, client: Client) -> None:
    source_create(source_id=7, name="shop")
    _send(client, event(7), event(7, "Click"), event(8), event(7, "Click"))
    _, summary = stats(client)
    html = admin_client.get(HOME).content.decode()
    assert int(_text(html, "events-count")) == summary["events_count"] == 4
    assert int(_text(html, "sources-count")) == summary["sources_count"] == 2
    assert int(_text(html, "counted-hour")) == 4
    # The chart: two lines over the last hour's 60 minutes, their totals the events.
    chart = re.search(r'<svg id="chart-hour".*?</svg>', html, re.S)
    assert chart is not None
    lines = re.findall(r'data-label="(\w+)" data-total="(\d+)"', chart.group(0))
    assert lines == [("counted", "4"), ("received", "4")]
    assert '<svg id="chart-day"' in html
    # Top sources: 7 (named) before 8.
    top = re.search(r'<table id="top-sources">.*?</table>', html, re.S)
    assert top is not None
    rows = re.findall(
        r"<tr><td><a [^>]*>(\d+)</a></td><td>([^<]*)</td><td>(\d+)</td><td>([^<]*)</td>",
        top.group(0),
    )
    assert rows == [
        ("7", "shop", "3", "2023-10-27 09:30:00 UTC"),  # the one date format (settings)
        ("8", "— (not registered)", "1", "2023-10-27 09:30:00 UTC"),
    ]
    # The app list is still there below.
    assert "/admin/sources/source/" in html and "/admin/plugins/pluginconfig/" in html


def test_the_figures_say_what_they_count(admin_client: Client, client: Client) -> None:
    """The issue's "processed 490" beside telemetron_events_processed_total 478,
    and "7 sources" beside a sources list of 2: each figure is labelled with what
    it counts, and the help says how it differs from /metrics and the list."""
    source_create(source_id=7, name="shop")
    _send(client, event(7), event(8), event(9))
    html = admin_client.get(HOME).content.decode()
    assert "events counted in the stats (GET /stats)" in html
    assert "source ids with events (GET /stats)" in html
    assert "events counted in the stats, last hour (3 of them received in it)" in html
    assert "events processed" not in html and "accepted)" not in html  # the old labels
    help_text = re.search(r'<details class="help" id="figures-help">.*?</details>', html, re.S)
    assert help_text is not None
    said = " ".join(help_text.group(0).split())
    assert "<code>telemetron_events_processed_total</code> the events every enabled" in said
    assert "not those one of them dead-lettered, nor replays of dead letters" in said
    assert "counts the registered sources" in said
    # The sources list says what it counts too (2 registered here, 3 ids with events).
    listed = admin_client.get("/admin/sources/source/").content.decode()
    assert 'id="sources-help"' in listed and "1 source" in listed
    assert int(_text(html, "sources-count")) == 3


def test_pending_dead_letters_by_plugin_link_to_their_list(admin_client: Client) -> None:
    for batch in ("b1", "b2"):
        dead_letter_create(
            batch_id=batch, plugin="Webhook", events=[event(1)], error=RuntimeError("x"), attempts=3
        )
    html = admin_client.get(HOME).content.decode()
    table = re.search(r'<table id="dead-letters">.*?</table>', html, re.S)
    assert table is not None
    link, plugin, count = re.findall(
        r'<a href="([^"]+)">([^<]+)</a></td><td>(\d+)</td>', table.group(0)
    )[0]
    assert (plugin, count) == ("Webhook", "2")
    listed = admin_client.get(link.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert "2 dead letters" in listed.content.decode()


def test_the_enabled_chains_in_order(admin_client: Client) -> None:
    rows = [
        ("validator", "EventTypeValidator", True, 2),
        ("validator", "SourceIdValidator", True, 1),
        ("validator", "JsonSchemaValidator", False, 3),
        ("transformer", "Sampler", True, 2),
        ("transformer", "CelTransformer", True, 1),
        ("processor", "StorageProcessor", True, 1),
    ]
    for kind, name, enabled, position in rows:
        PluginConfig.objects.create(kind=kind, name=name, enabled=enabled, position=position)
    html = admin_client.get(HOME).content.decode()
    chains = re.search(r'<table id="chains">.*?</table>', html, re.S)
    assert chains is not None
    cells = re.findall(r"<td>([^<]*)</td>", chains.group(0))
    assert cells == [
        "SourceIdValidator → EventTypeValidator",
        "CelTransformer → Sampler",
        "StorageProcessor",
    ]


def test_no_cluster_is_said_plainly(admin_client: Client) -> None:
    # The in-process tests run batches inline: no cluster reports a heartbeat.
    assert 'id="clusters-none"' in admin_client.get(HOME).content.decode()


def test_a_panel_that_fails_shows_its_error_and_the_rest_is_drawn(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue's Redis is unreachable (a loopback port nothing listens on)."""
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{free_port()}/0")
    with queue_broker.override(RedisStreamsBroker(list_key="telemetron-down")):
        response = admin_client.get(HOME)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Queue unavailable: ConnectionError: Error 111 connecting to 127.0.0.1" in html
    assert 'id="events-count"' in html
