"""The ORM broker's claims whose answers were lost (broker/orm.py): each claim
writes a random token on the rows it takes; when its answer is lost (the
connection to PostgreSQL cut after the database ran it), the token is kept and
looked up at most once a second, until ``LOOKUP_S`` after the database first
answered a lookup (a cut connection's statement may still be running in its
backend then, and commit later). SQLite runs in the process: a claim that
raised was rolled back, there is nothing to look up."""

from __future__ import annotations

import logging
import math
import secrets
import time

__all__ = ["LOOKUP_S", "LostClaims", "claim_token"]

log = logging.getLogger("telemetron.processing")

LOOKUP_S = 5.0
_LOOKUP_INTERVAL_S = 1.0


def claim_token() -> int:
    """A claim's token: random, positive, never 0 (a task no claim took)."""
    return secrets.randbits(62) + 1


class LostClaims:
    """The tokens of one pusher's claims whose answers were lost."""

    def __init__(self) -> None:
        # token → looked up until (monotonic; infinite until a lookup was answered)
        self._until: dict[int, float] = {}
        self._next_lookup = 0.0

    def lost(self, token: int) -> None:
        self._until[token] = math.inf

    def due(self) -> list[int]:
        """The tokens to look up now (none between two lookups' interval)."""
        now = time.monotonic()
        if not self._until or now < self._next_lookup:
            return []
        self._next_lookup = now + _LOOKUP_INTERVAL_S
        return list(self._until)

    def answered(self, tokens: list[int], *, found: int) -> None:
        """The database answered a lookup of ``tokens`` (``found`` tasks): each
        is looked up ``LOOKUP_S`` more, then forgotten."""
        if found:
            log.warning(
                "%d batch task(s) of a claim whose answer was lost handed out",
                found,
                extra={"found": found},
            )
        now = time.monotonic()
        for token in tokens:
            until = self._until[token]
            if until == math.inf:
                self._until[token] = now + LOOKUP_S
            elif now >= until:
                del self._until[token]
