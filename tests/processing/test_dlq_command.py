"""``manage.py dlq`` in-process (call_command): output, filters, confirmation,
exit codes, and the help of every subcommand."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from processing.management.commands.dlq import Command
from processing.models import DeadLetter
from stats.store import get_store
from tests.processing.conftest import MakeLetter, UseProcessors
from tests.support.procs import ROOT

SUBCOMMANDS = ("list", "show", "replay", "discard", "purge")


def dlq(*args: str, stdin: str = "") -> tuple[str, str]:
    """Run ``dlq``; return (stdout, stderr). Raises CommandError like the CLI exits."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("dlq", *args, stdout=out, stderr=err)
    finally:
        sys.stdin = old_stdin
    return out.getvalue(), err.getvalue()


def exit_code(*args: str, stdin: str = "") -> tuple[int, str]:
    try:
        out, _ = dlq(*args, stdin=stdin)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out


# --- help and usage ------------------------------------------------------------


def _subparsers() -> dict[str, Any]:
    parser = Command().create_parser("manage.py", "dlq")
    [action] = [a for a in parser._actions if a.dest == "action"]
    return dict(action.choices)  # type: ignore[arg-type]


def test_help_of_the_command_and_every_subcommand_reads_as_a_manual() -> None:
    parser = Command().create_parser("manage.py", "dlq")
    top = parser.format_help()
    for sub in SUBCOMMANDS:
        assert sub in top
    assert "exit status:" in top and "A typical session" in top
    subs = _subparsers()
    assert set(subs) == set(SUBCOMMANDS)
    for name, sub in subs.items():
        text = sub.format_help()
        assert "examples:" in text, name
        assert "exit status:" in text, name
        for action in sub._actions:
            assert action.help, f"dlq {name} {action.option_strings or action.dest} has no help"
    replay = subs["replay"].format_help()
    for option in ("--dry-run", "--noinput", "--all", "--limit", "--plugin", "--since", "--json"):
        assert option in replay


def test_help_and_bad_usage_from_the_command_line_exit_0_and_2() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "dlq", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    helped = run("replay", "--help")
    assert helped.returncode == 0 and "manage.py dlq replay" in helped.stdout
    bad = run("list", "--since", "yesterday")
    assert bad.returncode == 2
    assert "argument --since: 'yesterday' is neither a duration" in bad.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("list", "--since", "yesterday"), "'yesterday' is neither a duration"),
        (("list", "--limit", "many"), "'many' is not a whole number"),
        (("list", "--status", "lost"), "invalid choice: 'lost'"),
        (("show",), "the following arguments are required: ID"),
        (("show", "abc"), "'abc' is not an entry ID"),
        (("replay",), "say which entries to replay"),
        (("replay", "1", "--all"), "--all replays every pending entry: give it alone"),
        (("discard",), "say which entries to discard"),
        (("purge",), "or set dlq.retention in config.toml"),
        (("purge", "--older-than", "a month"), "'a month' is not a duration"),
        (("replay", "--bogus"), "unrecognized arguments: --bogus"),
    ],
)
@pytest.mark.django_db
def test_bad_arguments_exit_2_with_a_clear_message(args: tuple[str, ...], message: str) -> None:
    code, text = exit_code(*args)
    assert code == 2, text
    assert message in text


@pytest.mark.django_db
def test_unknown_ids_exit_2_and_change_nothing(make_letter: MakeLetter) -> None:
    letter = make_letter()
    code, text = exit_code("replay", str(letter.pk), "999999", "--noinput")
    assert code == 2 and "no dead letter with ID 999999" in text
    assert exit_code("show", "999999")[0] == 2
    assert DeadLetter.objects.get(pk=letter.pk).replay_count == 0


# --- list and show ---------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_a_table_of_pending_entries_newest_first(make_letter: MakeLetter) -> None:
    a = make_letter("FailingProcessor", events=3, error_message="webhook down\ntraceback...")
    b = make_letter("StorageProcessor", events=1, splits=2)
    make_letter("StorageProcessor", status="replayed")
    out, _ = dlq("list")
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "AGE", "PLUGIN", "EVENTS", "ATTEMPTS", "SPLITS", "STATUS", "ERROR"
    ]  # fmt: skip
    assert lines[1].split()[:7] == [str(b.pk), "0s", "StorageProcessor", "1", "3", "2", "pending"]
    assert lines[2].split()[:7] == [str(a.pk), "0s", "FailingProcessor", "3", "3", "0", "pending"]
    assert lines[2].endswith("ProcessingError: webhook down")  # the first line only
    assert lines[3] == "2 pending entries, 4 events"


@pytest.mark.django_db
def test_list_filters_and_json(make_letter: MakeLetter) -> None:
    old = make_letter("StorageProcessor", error_message="database is locked")
    DeadLetter.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    new = make_letter("FailingProcessor", error_message="timeout talking to the webhook")
    done = make_letter("FailingProcessor", status="discarded")

    def ids(*args: str) -> list[int]:
        return [e["id"] for e in json.loads(dlq("list", "--json", *args)[0])]

    assert ids() == [new.pk, old.pk]
    assert ids("--plugin", "StorageProcessor") == [old.pk]
    assert ids("--since", "1d") == [new.pk]
    assert ids("--until", "2d") == [old.pk]
    assert ids("--error", "WEBHOOK") == [new.pk]
    assert ids("--status", "discarded") == [done.pk]
    assert ids("--status", "all", "--limit", "2") == [done.pk, new.pk]
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert ids("--since", since) == [new.pk]
    [entry] = json.loads(dlq("list", "--json", "--plugin", "StorageProcessor")[0])
    assert entry["error_message"] == "database is locked" and entry["events"] == 3
    # The totals are the selection's, not the page's.
    assert dlq("list", "--limit", "1")[0].splitlines()[-1] == (
        "2 pending entries, 6 events; showing 1 of 2 (--limit)"
    )


@pytest.mark.django_db
def test_list_totals_are_the_whole_selections(make_letter: MakeLetter) -> None:
    """60 entries of 5 events pending: the default page of 50 says so (the
    issue's "50 pending entries, 248 events; showing 50 of 60" was the page's)."""
    for i in range(60):
        make_letter("StorageProcessor" if i % 2 else "FailingProcessor", events=5)
    make_letter("FailingProcessor", events=7, status="replayed")
    out, _ = dlq("list")
    assert len(out.splitlines()) == 1 + 50 + 1
    assert out.splitlines()[-1] == "60 pending entries, 300 events; showing 50 of 60 (--limit)"
    out, _ = dlq("list", "--plugin", "FailingProcessor", "--limit", "0")
    assert out.splitlines()[-1] == "30 pending entries, 150 events"
    out, _ = dlq("list", "--status", "all", "--limit", "10")
    assert out.splitlines()[-1] == "61 entries, 307 events; showing 10 of 61 (--limit)"
    assert dlq("list", "--error", "no such error")[0] == "0 pending entries, 0 events\n"


@pytest.mark.django_db
def test_show_prints_everything_and_the_events(make_letter: MakeLetter) -> None:
    letter = make_letter("FailingProcessor", events=3, error_message="line one\nline two")
    out, _ = dlq("show", str(letter.pk), "--events", "2")
    assert f"ID:          {letter.pk}" in out
    assert "Plugin:      FailingProcessor" in out
    assert f"Batch id:    {letter.batch_id}" in out
    assert "  line one\n  line two" in out
    assert "Events (first 2 of 3; --events N for more):" in out
    printed = json.loads(out.split("--events N for more):\n", 1)[1])
    assert printed == letter.events[:2]
    full = json.loads(dlq("show", str(letter.pk), "--json")[0])
    assert full["event_list"] == letter.events and full["status"] == "pending"


# --- replay ---------------------------------------------------------------------


@pytest.mark.django_db
def test_replay_dry_run_says_what_it_would_do_and_changes_nothing(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    letters = [make_letter("StorageProcessor", events=2), make_letter("Gone", events=1)]
    before = list(DeadLetter.objects.values())
    out, _ = dlq("replay", "--all", "--dry-run")
    assert out.splitlines() == [
        "Would replay 1 entry (2 events) for StorageProcessor.",
        f"Would skip #{letters[1].pk} (Gone): plugin Gone is not installed;"
        " install it, or discard the entry",
        "Dry run: nothing was changed.",
    ]
    plan = json.loads(dlq("replay", "--all", "--dry-run", "--json")[0])
    assert plan["would_replay"]["ids"] == [letters[0].pk]
    assert list(DeadLetter.objects.values()) == before
    assert get_store().totals() == (0, 0)


@pytest.mark.django_db
def test_replay_of_several_entries_asks_first(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    make_letter("StorageProcessor", events=2)
    make_letter("StorageProcessor", events=3)
    code, text = exit_code("replay", "--all", stdin="n\n")
    assert code == 1 and "cancelled; nothing was changed" in text
    assert code == exit_code("replay", "--all")[0]  # no answer (EOF) is a no
    assert not DeadLetter.objects.exclude(status="pending").exists()
    out, _ = dlq("replay", "--all", stdin="y\n")
    assert out.splitlines()[-1] == "replayed 2, failed 0, skipped 0"
    assert get_store().totals() == (1, 5)


@pytest.mark.django_db
def test_replay_summary_and_exit_1_when_some_fail_or_cannot_run(
    use_processors: UseProcessors, make_letter: MakeLetter, tmp_path: Path
) -> None:
    flag = tmp_path / "healed"
    use_processors(("StorageProcessor", {}), ("FailingProcessor", {"healed_flag": str(flag)}))
    ok = make_letter("StorageProcessor", events=2)
    failing = make_letter("FailingProcessor")
    gone = make_letter("Gone")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("dlq", "replay", "--all", "--noinput", stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert out.getvalue().splitlines()[-1] == "replayed 1, failed 1, skipped 1"
    assert f"#{failing.pk} FailingProcessor batch {failing.batch_id}: failed:" in err.getvalue()
    assert f"#{gone.pk} Gone batch {gone.batch_id}: skipped: plugin Gone" in err.getvalue()
    assert DeadLetter.objects.get(pk=ok.pk).status == "replayed"
    # The fix, then a replay of what is left: the failed one succeeds; Gone still cannot run.
    flag.touch()
    code, text = exit_code("replay", str(failing.pk), "--json")
    assert code == 0
    assert json.loads(text)["replayed"] == 1


@pytest.mark.django_db
def test_replay_limit_takes_the_oldest_first(
    use_processors: UseProcessors, make_letter: MakeLetter
) -> None:
    use_processors(("StorageProcessor", {}))
    first, second = make_letter("StorageProcessor"), make_letter("StorageProcessor")
    out, _ = dlq("replay", "--plugin", "StorageProcessor", "--limit", "1", "-v", "2")
    assert f"#{first.pk} StorageProcessor batch {first.batch_id}: replayed" in out
    assert out.splitlines()[-1] == "replayed 1, failed 0, skipped 0"
    assert DeadLetter.objects.get(pk=second.pk).status == "pending"


# --- discard and purge -------------------------------------------------------------


@pytest.mark.django_db
def test_discard_and_purge(make_letter: MakeLetter) -> None:
    a, b = make_letter("Old"), make_letter("Old")
    keep = make_letter("Other")
    assert dlq("discard", "--plugin", "Old", "--dry-run")[0] == (
        "Would discard 2 entries (6 events). Dry run: nothing was changed.\n"
    )
    assert exit_code("discard", "--plugin", "Old")[0] == 1  # asked, no answer
    assert dlq("discard", "--plugin", "Old", "--noinput")[0] == "discarded 2, skipped 0\n"
    assert set(DeadLetter.objects.filter(status="discarded").values_list("pk", flat=True)) == {
        a.pk,
        b.pk,
    }
    assert dlq("purge", "--older-than", "1d", "--noinput")[0].startswith("purged 0")
    DeadLetter.objects.filter(pk=a.pk).update(resolved_at=timezone.now() - timedelta(days=40))
    assert dlq("purge", "--older-than", "30d", "--dry-run")[0].startswith(
        "Would purge 1 entry replayed or discarded more than 30 days ago."
    )
    assert exit_code("purge", "--older-than", "30d")[0] == 1  # asked, no answer
    out, _ = dlq("purge", "--older-than", "30d", stdin="yes\n")
    assert out == "purged 1 (replayed or discarded more than 30 days ago)\n"
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == {b.pk, keep.pk}
