"""Writes: sources, their write keys (made, rotated, revoked) and read tokens.

A new key or token is returned as a :class:`sources.keys.NewSecret` whose
``value`` the caller shows once; only its digest is stored. Every process
follows a change within ``plugins.reload_interval`` (:mod:`sources.live`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.config import origin_check
from sources.keys import READ_TOKEN, WRITE_KEY, NewSecret, secret_new
from sources.models import Credential, ReadToken, Source, WriteKey

__all__ = [
    "credentials_revoke",
    "origins_clean",
    "read_token_create",
    "source_create",
    "usage_record",
    "write_key_create",
]


def origins_clean(origins: Iterable[str]) -> list[str]:
    """Each origin checked and lowered (``ValueError`` names a bad one)."""
    return sorted({origin_check(o.strip()) for o in origins if o.strip()})


@transaction.atomic
def source_create(
    *,
    source_id: int,
    name: str,
    enabled: bool = True,
    origins: Sequence[str] = (),
    rate_limit: float | None = None,
    rate_burst: int | None = None,
) -> tuple[Source, NewSecret]:
    """A source and its first write key."""
    source = Source.objects.create(
        source_id=source_id,
        name=name,
        enabled=enabled,
        allowed_origins=origins_clean(origins),
        rate_limit=rate_limit,
        rate_burst=rate_burst,
    )
    return source, write_key_create(source=source)


def write_key_create(*, source: Source) -> NewSecret:
    """A new live key for ``source``; its other keys stay live (rotation with
    overlap: revoke the old one once every sender has the new one)."""
    secret = secret_new(WRITE_KEY)
    WriteKey.objects.create(source=source, prefix=secret.prefix, digest=secret.digest)
    return secret


def credentials_revoke(*, credentials: Sequence[Credential], when: datetime | None = None) -> int:
    """Revoke the live ones among ``credentials`` (write keys, read tokens); the
    number revoked. Each save sets ``updated_at``: every process refuses them
    within ``plugins.reload_interval``."""
    now = when or timezone.now()
    count = 0
    for credential in credentials:
        if credential.revoked_at is None:
            credential.revoked_at = now
            credential.save(update_fields=["revoked_at", "updated_at"])
            count += 1
    return count


def read_token_create(*, name: str, scope: str) -> tuple[ReadToken, NewSecret]:
    if scope not in ReadToken.Scope.values:
        raise ValueError(f"scope must be one of {', '.join(ReadToken.Scope.values)}")
    secret = secret_new(READ_TOKEN)
    token = ReadToken.objects.create(
        name=name, scope=scope, prefix=secret.prefix, digest=secret.digest
    )
    return token, secret


def usage_record(*, key_ids: Iterable[int], token_ids: Iterable[int], when: datetime) -> None:
    """Set ``last_used_at`` (without touching ``updated_at``: no reload follows)."""
    keys, tokens = list(key_ids), list(token_ids)
    if keys:
        WriteKey.objects.filter(pk__in=keys).update(last_used_at=when)
    if tokens:
        ReadToken.objects.filter(pk__in=tokens).update(last_used_at=when)
