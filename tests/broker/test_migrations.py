"""The queue's models moved from processing to the broker app in Django's state
only: the migrations describe the models exactly (nothing left for
makemigrations), and the moved models' content types follow them. (A database
of before the move, served after it: tests/integration/test_queue_migration.py.)"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from broker.models import ClusterLease, QueuedTask, SeenMessage

pytestmark = pytest.mark.django_db

MOVE = importlib.import_module("processing.migrations.0005_queue_moved_to_broker")


def test_the_migrations_describe_the_models() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_tables_kept_their_names() -> None:
    tables = [m._meta.db_table for m in (QueuedTask, ClusterLease, SeenMessage)]
    assert tables == ["processing_queuedtask", "processing_clusterlease", "processing_seenmessage"]
    assert set(tables) <= set(connection.introspection.table_names())


@pytest.fixture
def content_types_cache_cleared() -> Iterator[None]:
    """The rows change here and roll back after: no cached content type outlives them."""
    ContentType.objects.clear_cache()
    yield
    ContentType.objects.clear_cache()


@pytest.mark.usefixtures("content_types_cache_cleared")
def test_the_moved_models_content_types_follow_them() -> None:
    ContentType.objects.filter(app_label="broker").delete()
    before = {ContentType.objects.create(app_label="processing", model=m).pk for m in MOVE.MOVED}
    editor = SimpleNamespace(connection=connection)
    MOVE.content_types_to_broker(apps, editor)
    moved = ContentType.objects.filter(app_label="broker", model__in=MOVE.MOVED)
    assert {ct.pk for ct in moved} == before  # the same rows: their permissions follow
    MOVE.content_types_to_processing(apps, editor)
    assert not ContentType.objects.filter(app_label="broker", model__in=MOVE.MOVED).exists()
