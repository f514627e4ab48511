"""``manage.py privacy erase`` in-process over real rows of every store (the
configured broker's queue, the dead letters, the archive): a person's events gone,
nobody else's touched, the audit row without the id, a second run erasing 0, a
dry run changing nothing; ``privacy audit`` finding a person again; usage errors
(exit 2). tests/privacy/test_erase_e2e.py does the same through real processes
on both brokers."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from archive.models import ArchivedEvent
from archive.services import batch_archive
from broker.interface import queue_broker
from broker.packages import batch_args, batch_package
from core.config import IngestConfig, PrivacyConfig, get_config
from plugins.base import Event
from privacy.models import ErasureAudit
from processing.models import DeadLetter
from sources.models import Source
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("privacy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def ev(user: str | None, *, source: int = 7, n: int = 0, key: str = "userId") -> dict[str, Any]:
    data: dict[str, Any] = {"n": n} if user is None else {"n": n, key: user}
    return event(source, "Page", data=data)


def snapshot() -> dict[str, Any]:
    queued = []
    for chunk in queue_broker().tasks_scan():
        for task in chunk:
            found = batch_args(task.payload)
            assert found is not None
            queued.append((found[0][0], [e["data"]["n"] for e in json.loads(found[0][1])]))
    return {
        "archive": sorted(ArchivedEvent.objects.values_list("source_id", "data__n")),
        "dead_letters": sorted(
            (x.batch_id, x.status, [e["data"]["n"] for e in x.events])
            for x in DeadLetter.objects.all()
        ),
        "queue": queued,
    }


@pytest.fixture
def stores() -> None:
    """Alice (source 7) and others in the archive, the dead letters and the queue."""
    Source.objects.create(source_id=7, name="shop")
    archived = [ev("alice", n=1), ev("bob", n=2), ev("alice", n=3, key="anonymousId")]
    archived += [ev("alice", source=8, n=4), ev(None, n=5), ev("42", n=6)]
    batch_archive(
        batch_id="a1",
        events=tuple(Event.model_validate(e) for e in archived),
        received_at=timezone.now(),
    )
    common = {"plugin": "PoisonProcessor", "error_class": "E", "error_message": "m", "attempts": 1}
    DeadLetter.objects.create(batch_id="d1", events=[ev("alice", n=7), ev("bob", n=8)], **common)
    DeadLetter.objects.create(batch_id="d2", events=[ev("alice", n=9)], status="replayed", **common)
    DeadLetter.objects.create(batch_id="d3", events=[ev("bob", n=10)], **common)
    queue = queue_broker()
    queue.purge_queue()  # type: ignore[attr-defined]
    queue.commit([batch_package([ev("alice", n=11), ev("bob", n=12)])])
    queue.commit([batch_package([ev("alice", n=13)])])


def test_erase_takes_the_persons_events_out_of_every_store(stores: None) -> None:
    before = snapshot()
    out, _ = run("erase", "--source", "7", "--user", "alice", "--noinput", "--by", "dpo")
    assert out.strip().startswith("erased 6 events of user 'alice' of source 7")
    after = snapshot()
    assert after["archive"] == [(7, 2), (7, 5), (7, 6), (8, 4)]
    assert after["dead_letters"] == [("d1", "pending", [8]), ("d3", "pending", [10])]
    assert [n for _, n in after["queue"]] == [[12]]
    assert after["queue"][0][0] == before["queue"][0][0]  # the batch keeps its id

    (audit,) = ErasureAudit.objects.all()
    assert (audit.by, audit.source_id, audit.finished_at is not None) == ("dpo", 7, True)
    assert (audit.queue_events, audit.queue_batches_removed) == (2, 1)
    assert (audit.dead_letter_events, audit.dead_letters_deleted) == (2, 1)
    assert audit.archive_events == 2
    assert "alice" not in json.dumps(
        {f.name: str(getattr(audit, f.name)) for f in ErasureAudit._meta.fields}
    )

    again, _ = run("erase", "--source", "shop", "--user", "alice", "--noinput", "--json")
    assert json.loads(again)["events"] == 0  # idempotent: the second run erases 0
    assert snapshot() == after
    assert ErasureAudit.objects.count() == 2


def test_a_numeric_id_matches_the_number_sent(stores: None) -> None:
    out, _ = run("erase", "--source", "7", "--user", "42", "--noinput", "--json")
    assert json.loads(out)["archive_events"] == 1


def test_dry_run_counts_and_changes_nothing(stores: None) -> None:
    before = snapshot()
    out, _ = run("erase", "--source", "7", "--user", "alice", "--dry-run", "-v", "2")
    assert "Would erase 6 events of user 'alice' of source 7" in out
    assert "queue: 2 events (1 batch left empty)" in out
    assert snapshot() == before
    assert ErasureAudit.objects.count() == 0


def test_the_audit_finds_a_person_again_by_the_keyed_hash(stores: None) -> None:
    run("erase", "--source", "7", "--user", "alice", "--noinput")
    out, _ = run("audit", "--source", "7", "--user", "alice", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["archiveEvents"] == 2 and row["sourceId"] == 7
    out, _ = run("audit", "--source", "7", "--user", "bob", "--json")
    assert out.strip() == ""
    table, _ = run("audit")
    assert table.splitlines()[0].split()[:4] == ["ID", "STARTED", "BY", "SOURCE"]


def test_user_paths_come_from_the_config(stores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    config = get_config().model_copy(update={"privacy": PrivacyConfig(user_paths=["n"])})
    monkeypatch.setattr("privacy.management.commands.privacy.get_config", lambda: config)
    out, _ = run("erase", "--source", "7", "--user", "5", "--noinput", "--json")
    assert json.loads(out)["archive_events"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "nosuch", "--user", "a"), "unknown source 'nosuch'"),
        (("--source", "7", "--user", " "), "--user must not be empty"),
    ],
)
def test_usage_errors_exit_2(stores: None, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        run("erase", *args, "--noinput")
    assert caught.value.returncode == 2


def test_an_unregistered_source_id_needs_open_ingest(
    stores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = run("erase", "--source", "8", "--user", "alice", "--noinput", "--json")
    assert json.loads(out)["archive_events"] == 1  # ingest.auth = "off": any source may send
    config = get_config().model_copy(update={"ingest": IngestConfig(auth="required")})
    monkeypatch.setattr("privacy.management.commands.privacy.get_config", lambda: config)
    with pytest.raises(CommandError, match="unknown source '8'") as caught:
        run("erase", "--source", "8", "--user", "alice", "--noinput")
    assert caught.value.returncode == 2


def test_audit_purge_applies_privacy_audit_retention(
    stores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("erase", "--source", "7", "--user", "alice", "--noinput")
    run("erase", "--source", "7", "--user", "bob", "--noinput")
    ErasureAudit.objects.filter(pk=ErasureAudit.objects.order_by("pk").first().pk).update(  # type: ignore[union-attr]
        started_at=timezone.now() - timedelta(days=400)
    )
    with pytest.raises(CommandError, match=r"privacy\.audit_retention") as caught:
        run("purge", "--noinput")
    assert caught.value.returncode == 2
    config = get_config().model_copy(
        update={"privacy": PrivacyConfig(audit_retention=timedelta(days=365))}
    )
    monkeypatch.setattr("privacy.management.commands.privacy.get_config", lambda: config)
    out, _ = run("purge", "--dry-run")
    assert (
        out.strip()
        == "Would delete 1 erasure record older than 365 days. Dry run: nothing was changed."
    )
    out, _ = run("purge", "--noinput")
    assert out.strip() == "purged 1 erasure record (older than 365 days)"
    assert ErasureAudit.objects.count() == 1
