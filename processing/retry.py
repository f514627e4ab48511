"""The retry policy: N attempts with a fixed delay between them.

An attempt that fails because a store is unreachable is not one: the caller
wraps each try in :func:`core.outage.outage_retry`, which waits the outage out
or raises :class:`~core.outage.StoreUnavailable`, passed on here untouched."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core.outage import StoreUnavailable

__all__ = ["RetryOutcome", "RetryPolicy", "run_with_retries"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    delay_s: float


@dataclass(frozen=True)
class RetryOutcome:
    ok: bool
    attempts: int
    error: BaseException | None = None


def run_with_retries(
    fn: Callable[[], None],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryOutcome:
    """Call ``fn`` until it returns, at most ``policy.attempts`` times."""
    error: BaseException | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            fn()
        except StoreUnavailable:
            raise  # an outage outlasting the task's wait: no attempt spent
        except Exception as exc:
            error = exc
            if attempt < policy.attempts and policy.delay_s > 0:
                sleep(policy.delay_s)
        else:
            return RetryOutcome(True, attempt)
    return RetryOutcome(False, policy.attempts, error)
