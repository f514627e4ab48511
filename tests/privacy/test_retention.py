"""Retention of every store of raw events: the archive by each source's own
retention (the Source field, set in the admin) and archive.retention for the
others; dead letters by dlq.retention (pending ones with --include-pending); the
erasure audit listed read-only in the admin."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from archive.models import ArchivedEvent
from archive.services import batch_archive
from core.config import ArchiveConfig, DlqConfig, get_config
from plugins.base import Event
from privacy.models import ErasureAudit
from processing.models import DeadLetter
from sources.models import Source
from tests.conftest import event

pytestmark = pytest.mark.django_db


def call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def archive_at(source_id: int, days: int) -> None:
    batch_archive(
        batch_id=f"s{source_id}d{days}",
        events=(Event.model_validate(event(source_id, "Page")),),
        received_at=timezone.now() - timedelta(days=days),
    )


def test_archive_purge_honours_a_sources_own_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    Source.objects.create(source_id=1, name="short", archive_retention=timedelta(days=1))
    Source.objects.create(source_id=2, name="long", archive_retention=timedelta(days=60))
    Source.objects.create(source_id=3, name="default")
    for source_id in (1, 2, 3, 4):
        for days in (0, 2, 40, 90):
            archive_at(source_id, days)
    config = get_config().model_copy(
        update={"archive": ArchiveConfig(retention=timedelta(days=30))}
    )
    monkeypatch.setattr("archive.management.commands.archive.get_config", lambda: config)

    dry = call("archive", "purge", "--dry-run")
    assert dry.startswith("Would delete 8 archived events received more than 30 days ago")
    assert "sources with their own retention: 1: 1 day, 2: 60 days" in dry
    call("archive", "purge", "--noinput")
    kept = sorted(ArchivedEvent.objects.values_list("source_id", "batch_id"))
    assert [b for _, b in kept] == ["s1d0", "s2d0", "s2d2", "s2d40", "s3d0", "s3d2", "s4d0", "s4d2"]


def test_a_sources_retention_alone_is_enough_to_purge() -> None:
    Source.objects.create(source_id=1, name="short", archive_retention=timedelta(days=1))
    archive_at(1, 2)
    archive_at(2, 400)  # no retention for source 2: kept
    assert call("archive", "purge", "--noinput").startswith("purged 1 archived event (kept")
    assert list(ArchivedEvent.objects.values_list("source_id", flat=True)) == [2]


def test_an_explicit_age_applies_to_every_source_alike() -> None:
    Source.objects.create(source_id=1, name="short", archive_retention=timedelta(days=1))
    archive_at(1, 2)
    archive_at(2, 2)
    call("archive", "purge", "--older-than", "10d", "--noinput")
    assert ArchivedEvent.objects.count() == 2


def test_dlq_purge_defaults_to_dlq_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    old = timezone.now() - timedelta(days=40)
    common = {"plugin": "P", "events": [event()], "error_class": "E", "attempts": 1}
    replayed = DeadLetter.objects.create(batch_id="r", status="replayed", resolved_at=old, **common)
    recent = DeadLetter.objects.create(
        batch_id="n", status="discarded", resolved_at=timezone.now(), **common
    )
    pending = DeadLetter.objects.create(batch_id="p", **common)
    DeadLetter.objects.filter(pk=pending.pk).update(created_at=old)
    with pytest.raises(CommandError, match=r"dlq\.retention") as caught:
        call("dlq", "purge", "--noinput")
    assert caught.value.returncode == 2

    config = get_config().model_copy(update={"dlq": DlqConfig(retention=timedelta(days=30))})
    monkeypatch.setattr("processing.management.commands.dlq.get_config", lambda: config)
    assert call("dlq", "purge", "--noinput").strip() == (
        "purged 1 (replayed or discarded more than 30 days ago)"
    )
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
    assert replayed.pk not in set(DeadLetter.objects.values_list("pk", flat=True))
    out = call("dlq", "purge", "--include-pending", "--noinput")
    assert out.strip() == "purged 1 (replayed or discarded (or pending) more than 30 days ago)"
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [recent.pk]


def test_retention_settings_are_positive_durations() -> None:
    assert DlqConfig(retention="30d").retention == timedelta(days=30)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a positive duration"):
        DlqConfig(retention="0d")  # type: ignore[arg-type]


def test_a_sources_retention_is_edited_in_the_admin(admin_client: Client) -> None:
    source = Source.objects.create(source_id=5, name="shop")
    page = f"/admin/sources/source/{source.pk}/change/"
    form = {"source_id": "5", "name": "shop", "enabled": "on", "origins": ""}
    form |= {"keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"}
    response = admin_client.post(page, {**form, "archive_retention": "soon"})
    assert "is not a duration" in response.content.decode()
    admin_client.post(page, {**form, "archive_retention": "2w"})
    source.refresh_from_db()
    assert source.archive_retention == timedelta(weeks=2)
    assert 'value="2w"' in admin_client.get(page).content.decode()


def test_the_erasure_audit_is_listed_read_only_in_the_admin(admin_client: Client) -> None:
    audit = ErasureAudit.objects.create(
        started_at=timezone.now(), by="dpo", source_id=7, user_digest="ab" * 32, paths=["userId"]
    )
    listing = admin_client.get("/admin/privacy/erasureaudit/").content.decode()
    assert "dpo" in listing and "abababababab…" in listing
    detail = admin_client.get(f"/admin/privacy/erasureaudit/{audit.pk}/change/")
    assert detail.status_code == 200 and 'name="by"' not in detail.content.decode()
    assert admin_client.get("/admin/privacy/erasureaudit/add/").status_code == 403
    admin_client.post(f"/admin/privacy/erasureaudit/{audit.pk}/delete/", {"post": "yes"})
    assert ErasureAudit.objects.filter(pk=audit.pk).exists()
    assert User.objects.filter(is_superuser=True).exists()
