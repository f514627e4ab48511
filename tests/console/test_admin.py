"""The admin's sources list: every source with its statistics, searchable by an
exact id or a part of the name, sorted by id or name through an index (the id as
the tie breaker, in the same direction), read a page at a time (no aggregate or
COUNT over the table per page); a source's page with its counts by type drawn.
The admin's frame: its titles, no django-q2 tables, one date format."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console import paginator
from console.admin import SourcesPaginator as admin_paginator
from plugins.models import PluginConfig
from processing.dead_letters import dead_letter_create
from sources.models import Source
from sources.services import source_create, write_key_create
from tests.conftest import event
from tests.support.client import post
from tests.support.databases import backend

pytestmark = pytest.mark.django_db

LIST = "/admin/sources/source/"


@pytest.fixture
def shops(client: Client) -> None:
    for sid, name in ((3, "shop-b"), (1, "shop-a"), (2, "blog"), (4, "shop-a")):
        source_create(source_id=sid, name=name)
    events = [event(1), event(1, "Click"), event(1, "Click"), event(2, "View")]
    assert post(client, "/ingest/batch", events).status_code == 202


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<th class="field-source_id"><a [^>]*>(\d+)</a>', html)]


def test_every_source_with_its_statistics(admin_client: Client, shops: None) -> None:
    html = admin_client.get(LIST).content.decode()
    assert _ids(html) == [1, 2, 3, 4]
    row = re.search(r"<tr>.*?>1</a>.*?</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="field-(\w+)[^"]*">([^<]*)<', row.group(0))
    assert dict(cells)["total_events"] == "3"
    assert dict(cells)["event_types"] == "Click: 2, Heartbeat: 1"
    assert "field-first_event" in row.group(0) and "field-last_event" in row.group(0)
    assert re.search(r'field-total_events">0<', html)  # source 3: no events yet


def test_search_by_exact_id_or_part_of_the_name(admin_client: Client, shops: None) -> None:
    assert _ids(admin_client.get(LIST, {"q": "3"}).content.decode()) == [3]
    assert _ids(admin_client.get(LIST, {"q": "shop-a"}).content.decode()) == [1, 4]
    assert _ids(admin_client.get(LIST, {"q": "blo"}).content.decode()) == [2]


@pytest.mark.parametrize(
    ("column", "ids", "order_by"),
    [
        ("2", [2, 1, 4, 3], '"name" ASC, "sources_source"."source_id" ASC'),
        ("-2", [3, 4, 1, 2], '"name" DESC, "sources_source"."source_id" DESC'),
        ("-1", [4, 3, 2, 1], '"source_id" DESC'),
    ],
)
def test_sorted_by_name_or_id_with_the_id_as_tie_breaker(
    admin_client: Client, shops: None, column: str, ids: list[int], order_by: str
) -> None:
    with CaptureQueriesContext(connection) as queries:
        html = admin_client.get(LIST, {"o": column}).content.decode()
    assert _ids(html) == ids
    page = next(q["sql"] for q in queries if q["sql"].startswith('SELECT "sources_source"."id"'))
    assert page.split("ORDER BY ")[1].startswith(f'"sources_source".{order_by}')


def test_a_page_reads_no_aggregate_over_the_table(admin_client: Client, shops: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(LIST).status_code == 200
    page = [q["sql"] for q in queries if 'FROM "sources_source"' in q["sql"]]
    listing = next(sql for sql in page if sql.startswith('SELECT "sources_source"."id"'))
    assert "GROUP BY" not in listing
    # The statistics and the live keys: of the page's sources only.
    stats = [q["sql"] for q in queries if "stats_source" in q["sql"]]
    assert len(stats) == 2 and all(" IN (" in sql for sql in stats)


@pytest.mark.skipif(backend() != "postgresql", reason="planner estimates: PostgreSQL pass")
def test_past_the_exact_count_the_planner_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    Source.objects.bulk_create([Source(source_id=i, name=f"s{i}") for i in range(50)])
    monkeypatch.setattr(paginator, "EXACT_UP_TO", 10)
    with connection.cursor() as cur:
        cur.execute("ANALYZE sources_source")
    with CaptureQueriesContext(connection) as queries:
        count = paginator.LargeTablePaginator(Source.objects.order_by("source_id"), 10).count
    assert count == 50  # the planner's estimate after ANALYZE
    assert not any(q["sql"].startswith("SELECT COUNT(*) AS") for q in queries)  # no full count
    assert any("LIMIT 11" in q["sql"] for q in queries)
    small = paginator.LargeTablePaginator(Source.objects.filter(source_id__lt=5), 10)
    assert small.count == 5  # exact below the threshold


def test_a_sources_page_draws_its_counts_by_type_and_lists_its_keys(
    admin_client: Client, shops: None
) -> None:
    source = Source.objects.get(source_id=1)
    second = write_key_create(source=source)  # a key besides the one made with it
    html = admin_client.get(f"{LIST}{source.pk}/change/").content.decode()
    chart = re.search(r'<svg id="chart-types".*?</svg>', html, re.S)
    assert chart is not None
    bars = re.findall(r'class="bar" data-label="(\w+)" data-value="(\d+)"', chart.group(0))
    assert bars == [("Click", "2"), ("Heartbeat", "1")]
    assert "3 events, first" in html
    assert "write key" in html.lower()
    assert source.keys.count() == 2 and all(k.prefix in html for k in source.keys.all())
    assert second.value not in html  # the secret is never shown again


def test_a_source_without_events_says_so(admin_client: Client, shops: None) -> Any:
    source = Source.objects.get(source_id=3)
    assert (
        "No events counted yet." in admin_client.get(f"{LIST}{source.pk}/change/").content.decode()
    )


@pytest.mark.parametrize("deferred_from", [0, 10_000], ids=["keys-first", "plain-offset"])
def test_a_far_page_is_the_same_read_by_its_keys_first(
    monkeypatch: pytest.MonkeyPatch, deferred_from: int
) -> None:
    Source.objects.bulk_create(
        [Source(source_id=i, name=f"n{(i * 7) % 25:02d}") for i in range(25)]
    )
    monkeypatch.setattr(paginator, "DEFERRED_FROM", deferred_from)
    pages = admin_paginator(Source.objects.order_by("-name", "-source_id"), 10)
    got = [s.source_id for n in pages.page_range for s in pages.page(n).object_list]
    expected = list(
        Source.objects.order_by("-name", "-source_id").values_list("source_id", flat=True)
    )
    assert got == expected and len(got) == 25


# --- the admin's frame --------------------------------------------------------------


def test_the_admin_is_titled_telemetron(admin_client: Client, client: Client) -> None:
    login = client.get("/admin/login/").content.decode()
    assert "<title>Log in | Telemetron admin</title>" in login
    page = admin_client.get("/admin/processing/").content.decode()
    assert '<div id="site-name"><a href="/admin/">Telemetron</a></div>' in page
    assert "Django administration" not in page and "Django site admin" not in page
    assert 'id="nav-sidebar"' not in page  # the lists get the window's width


def test_django_q2s_own_tables_are_not_in_the_admin(admin_client: Client) -> None:
    html = admin_client.get("/admin/").content.decode()
    for model in ("success", "failure", "schedule", "ormq"):
        assert f"/admin/django_q/{model}/" not in html
        assert admin_client.get(f"/admin/django_q/{model}/").status_code == 404
    assert admin_client.get("/admin/django_q/").status_code == 404


def test_dates_read_one_way_in_every_list_and_page(admin_client: Client, shops: None) -> None:
    """ISO-like UTC (settings' FORMAT_MODULE_PATH), not "Oct. 27, 2023, 9:30 a.m."."""
    PluginConfig.objects.create(kind="processor", name="StorageProcessor", position=1)
    dead_letter_create(
        batch_id="b1", plugin="Webhook", events=[event(1)], error=RuntimeError("x"), attempts=3
    )
    when = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    for path, column in (
        (LIST, "first_event"),
        ("/admin/plugins/pluginconfig/", "last_change"),
        ("/admin/processing/deadletter/", "created_at"),
    ):
        html = admin_client.get(path).content.decode()
        cell = re.search(rf'class="field-{column}[^"]*">(.*?)</t[dh]>', html, re.S)
        assert cell is not None, column
        text = " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).split())
        assert when.match(text), (column, text)
        assert not re.search(r"\b[ap]\.m\.|\b[A-Z][a-z]{2}\. \d", html), "a locale's date"
    page = admin_client.get(f"{LIST}{Source.objects.get(source_id=1).pk}/change/").content.decode()
    assert "first 2023-10-27 09:30:00 UTC, last 2023-10-27 09:30:00 UTC" in page
