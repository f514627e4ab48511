"""The dead-letter queue in the admin, through Django's test client: the list
with its filters and search, the read-only detail with the events, and the
actions, which run the same services as ``manage.py dlq``."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from processing.models import Bisection, DeadLetter
from stats.store import get_store
from tests.processing.conftest import MakeLetter, UseProcessors

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:processing_deadletter_changelist")


def _ids(response: object) -> list[int]:
    return [x.pk for x in response.context["cl"].result_list]  # type: ignore[attr-defined]


def test_list_filters_and_search(admin_client: Client, make_letter: MakeLetter) -> None:
    a = make_letter("FailingProcessor", error_message="webhook returned 502")
    b = make_letter("StorageProcessor", error_message="database is locked")
    c = make_letter("StorageProcessor", status="replayed")
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    assert set(_ids(page)) == {a.pk, b.pk, c.pk}
    html = page.content.decode()
    assert "ProcessingError: webhook returned 502" in html
    assert "Replay selected dead letters" in html and "Discard selected dead letters" in html
    assert _ids(admin_client.get(CHANGELIST, {"status__exact": "pending"})) == [b.pk, a.pk]
    assert _ids(admin_client.get(CHANGELIST, {"plugin": "StorageProcessor"})) == [c.pk, b.pk]
    assert _ids(admin_client.get(CHANGELIST, {"q": "locked"})) == [b.pk]


def test_detail_is_read_only_with_the_events_pretty_printed(
    admin_client: Client, make_letter: MakeLetter
) -> None:
    letter = make_letter("FailingProcessor", events=2)
    url = reverse("admin:processing_deadletter_change", args=[letter.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    # Pretty-printed, keys in the wire order whatever the database keeps.
    assert "\n    &quot;sourceId&quot;: 1,\n    &quot;type&quot;: &quot;Click&quot;," in html
    assert 'name="_save"' not in html  # nothing to save: entries are read-only
    assert admin_client.get(reverse("admin:processing_deadletter_add")).status_code == 403
    # A POST to the change page changes nothing.
    admin_client.post(url, {"status": "discarded", "plugin": "X"})
    letter.refresh_from_db()
    assert (letter.status, letter.plugin) == ("pending", "FailingProcessor")


def test_replay_selected_action(
    admin_client: Client,
    make_letter: MakeLetter,
    use_processors: UseProcessors,
    tmp_path: Path,
) -> None:
    use_processors(("StorageProcessor", {}), ("FailingProcessor", {}))
    good = make_letter("StorageProcessor", events=4)
    bad = make_letter("FailingProcessor")
    response = admin_client.post(
        CHANGELIST,
        {"action": "replay_selected", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert "replayed 1, failed 1, skipped 0" in messages
    assert f"#{bad.pk} failed: ProcessingError: always fails" in messages
    assert DeadLetter.objects.get(pk=good.pk).status == "replayed"
    assert get_store().totals() == (1, 4)
    failed = DeadLetter.objects.get(pk=bad.pk)
    assert (failed.status, failed.attempts, failed.replay_count) == ("pending", 4, 1)


def test_discard_selected_action(admin_client: Client, make_letter: MakeLetter) -> None:
    a, b = make_letter(), make_letter()
    response = admin_client.post(
        CHANGELIST, {"action": "discard_selected", "_selected_action": [a.pk]}, follow=True
    )
    assert "discarded 1, skipped 0" in [str(m) for m in response.context["messages"]]
    assert DeadLetter.objects.get(pk=a.pk).status == "discarded"
    assert DeadLetter.objects.get(pk=b.pk).status == "pending"


def test_view_only_staff_sees_entries_but_has_no_actions(make_letter: MakeLetter) -> None:
    letter = make_letter()
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client = Client()
    client.force_login(user)
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and _ids(page) == [letter.pk]
    assert "Replay selected dead letters" not in page.content.decode()
    client.post(CHANGELIST, {"action": "discard_selected", "_selected_action": [letter.pk]})
    assert DeadLetter.objects.get(pk=letter.pk).status == "pending"


def test_bisections_are_listed_read_only(admin_client: Client) -> None:
    Bisection.objects.create(
        batch_id="b1",
        plugin="PoisonProcessor",
        events=100,
        splits=7,
        runs=14,
        dead_lettered_events=1,
    )
    changelist = reverse("admin:processing_bisection_changelist")
    response = admin_client.get(changelist, {"q": "b1"})
    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    assert (row.plugin, row.splits, row.runs, row.dead_lettered_events) == (
        "PoisonProcessor",
        7,
        14,
        1,
    )
    assert admin_client.get(reverse("admin:processing_bisection_add")).status_code == 403
    detail = admin_client.get(reverse("admin:processing_bisection_change", args=[row.pk]))
    assert detail.status_code == 200 and b"Save" not in detail.content
