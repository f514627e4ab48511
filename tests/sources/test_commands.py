"""``manage.py sources`` and ``manage.py tokens`` in-process (call_command):
keys shown once and stored hashed, rotation with overlap, revocation with
--dry-run and confirmation, exit 2 on bad usage."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sources.keys import digest
from sources.models import ReadToken, Source, WriteKey

pytestmark = pytest.mark.django_db

KEY = re.compile(r"tl[wr]_[A-Za-z0-9_-]{40}")


def run(name: str, *args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command(name, *args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = old
    return out.getvalue()


def code(name: str, *args: str, stdin: str = "") -> int:
    try:
        run(name, *args, stdin=stdin)
    except CommandError as exc:
        return int(exc.returncode)
    return 0


def _create(source_id: int = 1, *extra: str) -> str:
    out = run("sources", "create", str(source_id), "--name", "shop", *extra)
    [key] = KEY.findall(out)
    return key


def test_create_prints_the_key_once_and_stores_its_digest() -> None:
    key = _create(1, "--origin", "https://Shop.example", "--rate", "50", "--burst", "100")
    source = Source.objects.get(source_id=1)
    assert (source.allowed_origins, source.rate_limit, source.rate_burst) == (
        ["https://shop.example"],
        50.0,
        100,
    )
    stored = WriteKey.objects.get(source=source)
    assert stored.digest == digest(key) and key not in (stored.prefix, stored.digest)
    assert key.startswith(stored.prefix)
    listing = run("sources", "list")
    assert "shop" in listing and "50/s burst 100" in listing and key not in listing
    assert "1 source, 1 live key" in listing


@pytest.mark.parametrize(
    "args",
    [
        ("create", "1", "--name", "again"),  # exists already
        ("create", "x", "--name", "n"),
        ("create", str(2**64), "--name", "n"),
        ("create", "2", "--name", "n", "--origin", "shop.example"),
        ("rotate", "9"),
        ("revoke",),
        ("revoke", "tlw_nothing"),
    ],
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    _create(1)
    assert code("sources", *args) == 2


def test_rotate_keeps_the_old_key_live_until_it_is_revoked() -> None:
    old = _create(1)
    out = run("sources", "rotate", "1")
    [new] = KEY.findall(out)
    assert new != old and "1 older key still live" in out
    assert WriteKey.objects.filter(revoked_at__isnull=True).count() == 2
    dry = run("sources", "revoke", old[:12], "--dry-run")
    assert "Would revoke" in dry and "Dry run: nothing was changed." in dry
    assert code("sources", "revoke", old[:12], stdin="n\n") == 1  # declined
    assert WriteKey.objects.filter(revoked_at__isnull=True).count() == 2
    assert "revoked 1 write key" in run("sources", "revoke", old[:12], "--noinput")
    [live] = WriteKey.objects.filter(revoked_at__isnull=True)
    assert live.digest == digest(new)


def test_a_key_is_named_by_its_first_characters_or_the_whole_key() -> None:
    key = _create(1)
    assert "Would revoke" in run("sources", "revoke", key[:8], "--dry-run")
    assert "Would revoke" in run("sources", "revoke", key, "--dry-run")
    assert code("sources", "revoke", key[:12] + "X") == 2
    assert code("sources", "revoke", "tlw_", "--dry-run") == 0  # one key: not ambiguous
    run("sources", "rotate", "1")
    assert code("sources", "revoke", "tlw_", "--dry-run") == 2  # two keys: give more


def test_rotate_revoke_others_and_revoke_a_whole_source() -> None:
    _create(1)
    run("sources", "rotate", "1", "--revoke-others", "--noinput")
    assert WriteKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert "revoked 1 write key" in run("sources", "revoke", "--source", "1", "--noinput")
    assert "nothing to revoke" in run("sources", "revoke", "--source", "1", "--noinput")


def test_tokens_create_list_revoke() -> None:
    out = run("tokens", "create", "prometheus", "--scope", "metrics")
    [token] = KEY.findall(out)
    stored = ReadToken.objects.get()
    assert (stored.scope, stored.digest) == ("metrics", digest(token))
    assert "prometheus" in run("tokens", "list") and token not in run("tokens", "list")
    assert code("tokens", "create", "x", "--scope", "everything") == 2
    assert "revoked 1 read token" in run("tokens", "revoke", token[:12], "--noinput")
    assert ReadToken.objects.get().revoked_at is not None


def test_list_as_json(capsys: Any) -> None:
    _create(5)
    assert '"id": 5' in run("sources", "list", "--json")
