"""``manage.py archive``: export filters (source, type, received time), JSON Lines
and CSV, to stdout or a file; purge by age or archive.retention, dry run,
confirmation, usage errors (exit 2)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from archive.models import ArchivedEvent
from archive.services import batch_archive
from core.config import ArchiveConfig, Settings
from plugins.base import Event
from tests.conftest import event

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("archive", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def archived() -> datetime:
    """Five batches, one an hour back from now: sources 1 and 2, types a and b."""
    now = timezone.now().replace(microsecond=0)
    for hours in range(5):
        specs = [(1, "a", {"h": hours}), (2, "b", {"h": hours}), (1, "b", None)]
        batch = tuple(Event.model_validate(event(s, t, data=d)) for s, t, d in specs)
        batch_archive(batch_id=f"h{hours}", events=batch, received_at=now - timedelta(hours=hours))
    return now


def exported(*args: str) -> list[dict[str, Any]]:
    out, err = run("export", *args)
    lines = [json.loads(line) for line in out.splitlines()]
    assert err.strip() == f"exported {len(lines):,} event{'s' if len(lines) != 1 else ''}"
    return lines


def test_export_writes_json_lines_oldest_received_first(archived: datetime) -> None:
    lines = exported()
    assert len(lines) == 15
    assert [x["batchId"] for x in lines[:3]] == ["h4", "h4", "h4"]
    assert lines[0] == {
        "sourceId": 1,
        "type": "a",
        "timestamp": "2023-10-27T09:30:00Z",
        "data": {"h": 4},
        "receivedAt": (archived - timedelta(hours=4)).isoformat().replace("+00:00", "Z"),
        "batchId": "h4",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--source", "2"), {(2, "b", h) for h in range(5)}),
        (("--type", "a"), {(1, "a", h) for h in range(5)}),
        (("--source", "1", "--type", "a", "--since", "150m"), {(1, "a", h) for h in (0, 1, 2)}),
        (("--source", "1", "--until", "210m"), {(1, "a", 4), (1, "b", None)}),
        (("--type", "b", "--since", "210m", "--until", "150m"), {(2, "b", 3), (1, "b", None)}),
        (("--source", "3"), set()),
    ],
)
def test_export_filters_by_source_type_and_received_time(
    archived: datetime, args: tuple[str, ...], expected: set[tuple[int, str, int | None]]
) -> None:
    got = {
        (x["sourceId"], x["type"], x["data"]["h"] if x["data"] else None) for x in exported(*args)
    }
    assert got == expected


def test_export_as_csv_to_a_file(archived: datetime, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    out, err = run(
        "export", "--source", "2", "--since", "90m", "--format", "csv", "--output", str(target)
    )
    assert out == "" and err.strip() == f"exported 2 events to {target}"
    with target.open(newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["source_id", "type", "timestamp", "received_at", "batch_id", "data"]
    assert [[*row[0:3], row[4], json.loads(row[5])] for row in table[1:]] == [
        ["2", "b", "2023-10-27T09:30:00Z", "h1", {"h": 1}],
        ["2", "b", "2023-10-27T09:30:00Z", "h0", {"h": 0}],
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "--source", "-1"), "'-1' is not a source id"),
        (("export", "--since", "yesterday"), "'yesterday' is neither a duration"),
        (("export", "--format", "xml"), "invalid choice: 'xml'"),
        (("export", "--since", "1h", "--until", "2h"), "--until must be after --since"),
        (("purge",), "say how old: --older-than AGE"),
        (("purge", "--older-than", "soon"), "'soon' is not a duration"),
    ],
)
def test_bad_usage_is_exit_2_with_the_reason(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        run(*args)
    assert raised.value.returncode == 2
    assert message in str(raised.value)


def test_purge_dry_run_says_what_would_go_and_changes_nothing(archived: datetime) -> None:
    out, _ = run("purge", "--older-than", "150m", "--dry-run")
    assert out.strip() == (
        "Would delete 6 archived events received more than 150 minutes ago."
        " Dry run: nothing was changed."
    )
    assert ArchivedEvent.objects.count() == 15


def test_purge_asks_first_and_a_no_changes_nothing(
    archived: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or "n")
    with pytest.raises(CommandError) as raised:
        run("purge", "--older-than", "150m")
    assert raised.value.returncode == 1
    assert asked == [
        "Delete 6 archived events received more than 150 minutes ago? This cannot be undone. [y/N] "
    ]
    assert ArchivedEvent.objects.count() == 15


def test_purge_noinput_deletes_the_old_events(archived: datetime) -> None:
    out, _ = run("purge", "--older-than", "150m", "--noinput")
    assert out.strip() == "purged 6 archived events (received more than 150 minutes ago)"
    assert sorted({x["data"]["h"] for x in exported("--type", "a")}) == [0, 1, 2]


def test_purge_without_an_age_uses_archive_retention(
    archived: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Settings(archive=ArchiveConfig(retention=timedelta(minutes=90)))
    monkeypatch.setattr("archive.management.commands.archive.get_config", lambda: config)
    out, _ = run("purge", "--noinput")
    assert out.strip() == "purged 9 archived events (received more than 90 minutes ago)"
    assert (
        ArchivedEvent.objects.filter(received_at__lt=archived - timedelta(minutes=90)).count() == 0
    )
    assert ArchivedEvent.objects.count() == 6


def test_archive_retention_is_a_positive_duration() -> None:
    assert ArchiveConfig(retention="30d").retention == timedelta(days=30)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        ArchiveConfig(retention="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a positive duration"):
        ArchiveConfig(retention="0d")  # type: ignore[arg-type]


def test_export_lines_are_json_whatever_the_strings_hold() -> None:
    odd = Event.model_validate(event(9, 'say "hi" ü\\', data={"t": 'x"y ü\n', "n": [1.5, None]}))
    batch_archive(batch_id='b"1', events=(odd,), received_at=timezone.now())
    (line,) = exported("--source", "9")
    assert (line["type"], line["data"], line["batchId"]) == (odd.type, odd.data, 'b"1')
