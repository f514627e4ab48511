"""What a process knows of sources, keys and tokens: an immutable snapshot of
the tables, built by :mod:`sources.live` and read by every request.

Lookups are dictionary reads: a source by id, a write key or read token by the
SHA-256 digest of what the client sent. Revoked keys and tokens are not in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Directory", "KeyEntry", "SourceEntry", "TokenEntry", "directory_build"]


@dataclass(frozen=True, slots=True)
class SourceEntry:
    id: int
    name: str
    enabled: bool
    origins: frozenset[str]
    any_origin: bool
    rate: float | None  # events per second; None: no limit
    burst: int

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: int
    source: SourceEntry


@dataclass(frozen=True, slots=True)
class TokenEntry:
    id: int
    scope: str


@dataclass(frozen=True)
class Directory:
    sources: dict[int, SourceEntry] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    tokens: dict[str, TokenEntry] = field(default_factory=dict)
    # Every enabled source's origins: a preflight that names no key asks this.
    origins: frozenset[str] = frozenset()
    any_origin: bool = False
    # False: the database could not be read yet (a process started while it is
    # away): a key not found may well exist, so it is not refused as unknown.
    loaded: bool = True


def _burst(rate: float | None, burst: int | None) -> int:
    if burst:
        return burst
    return max(1, int(rate)) if rate else 0


def source_entry(
    *,
    id: int,
    name: str,
    enabled: bool,
    origins: Iterable[str],
    rate: float | None,
    burst: int | None,
) -> SourceEntry:
    allowed = frozenset(o.lower() for o in origins)
    limited = rate if rate is not None and rate > 0 else None
    return SourceEntry(
        id=id,
        name=name,
        enabled=enabled,
        origins=allowed - {"*"},
        any_origin="*" in allowed,
        rate=limited,
        burst=_burst(limited, burst),
    )


def directory_build(
    sources: Iterable[SourceEntry],
    keys: Iterable[tuple[int, int, str]],
    tokens: Iterable[tuple[int, str, str]],
) -> Directory:
    """``keys``: (key id, source id, digest) of live keys; ``tokens``: (id, scope, digest)."""
    by_id = {s.id: s for s in sources}
    enabled = [s for s in by_id.values() if s.enabled]
    return Directory(
        sources=by_id,
        keys={d: KeyEntry(kid, by_id[sid]) for kid, sid, d in keys if sid in by_id},
        tokens={d: TokenEntry(tid, scope) for tid, scope, d in tokens},
        origins=frozenset().union(*(s.origins for s in enabled)),
        any_origin=any(s.any_origin for s in enabled),
    )
