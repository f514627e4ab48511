"""What an erasure looks for (``manage.py privacy erase``): one person's events
of one source, found by the person's id at the configured paths of an event's
``data`` (``privacy.user_paths``). Each store that keeps raw events (the queue,
the dead letters, the archive) erases by it; the audit keeps a keyed hash of the
id, never the id (:func:`user_digest`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ErasureTarget", "user_digest"]


@dataclass(frozen=True)
class ErasureTarget:
    """A person's events: of ``source_id``, with ``user`` at one of ``paths``
    (dotted keys into ``data``). A path holding the number ``42`` matches the user
    ``"42"`` too (ids sent as numbers)."""

    source_id: int
    user: str
    paths: tuple[str, ...]

    def values(self) -> tuple[str | int, ...]:
        """The JSON values that match: the id as a string, and as a whole number
        when it is one."""
        text = self.user
        digits = text[1:] if text.startswith("-") else text
        if digits.isdigit() and str(int(text)) == text:
            return (text, int(text))
        return (text,)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether a wire event (``sourceId``, ``data``, …) is one of the person's."""
        if event.get("sourceId") != self.source_id:
            return False
        wanted = self.values()
        for path in self.paths:
            value: Any = event.get("data")
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None and not isinstance(value, bool) and value in wanted:
                return True
        return False


def user_digest(*, source_id: int, user: str, key: str) -> str:
    """The audit's name for a person: HMAC-SHA256 of the source and id under the
    installation's secret key (hex). The same person gives the same digest, so an
    operator can look a request up again; the id cannot be read back from it."""
    message = f"{source_id}\x00{user}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
