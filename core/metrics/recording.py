"""Recording into the series of :mod:`core.metrics.series`. The helpers cache
label children, so a hot path pays one dictionary lookup and one value update
per series."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics import MetricWrapperBase

from core.metrics.series import (
    BATCH_SIZE,
    COMMIT_OUTCOME_UNKNOWN,
    EVENT_LAG,
    EVENTS_ACCEPTED,
    EVENTS_DEDUPLICATED,
    EVENTS_DROPPED,
    EVENTS_PROCESSED,
    EVENTS_REJECTED,
    HTTP_REQUESTS,
    HTTP_REQUESTS_DURATION,
    HTTP_STATUS_CLASSES,
    INVALID,
    PLUGIN_DURATION,
    PLUGIN_ERRORS,
    PLUGIN_STATUSES,
    REJECTION_REASONS,
    STORE_OUTAGE_RETRIES,
    STORE_UNAVAILABLE_SECONDS,
    STORES,
)

__all__ = [
    "batch_observe",
    "commit_outcome_unknown",
    "events_accepted",
    "events_deduplicated",
    "events_dropped",
    "events_rejected",
    "known_series_init",
    "plugin_failed",
    "plugin_observe",
    "store_outage_retried",
]

_rejected_invalid = EVENTS_REJECTED.labels(reason=INVALID)
_children: dict[tuple[str, ...], MetricWrapperBase] = {}


def _child(metric: MetricWrapperBase, *labels: str) -> MetricWrapperBase:
    key = (metric._name, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def events_accepted(count: int) -> None:
    EVENTS_ACCEPTED.inc(count)


def commit_outcome_unknown() -> None:
    COMMIT_OUTCOME_UNKNOWN.inc()


def events_deduplicated(count: int) -> None:
    if count:
        EVENTS_DEDUPLICATED.inc(count)


def events_rejected(reason: str = INVALID, count: int = 1) -> None:
    """Count rejected events; ``reason`` is a validator's name or ``invalid``."""
    child = _rejected_invalid if reason == INVALID else _child(EVENTS_REJECTED, reason)
    child.inc(count)  # type: ignore[attr-defined]


def events_dropped(transformer: str, reason: str, count: int = 1) -> None:
    """Count events a transformer dropped (answered as accepted, not queued)."""
    _child(EVENTS_DROPPED, transformer, reason).inc(count)  # type: ignore[attr-defined]


def plugin_observe(plugin: str, seconds: float, *, ok: bool) -> None:
    """One attempt of a processor plugin on a batch."""
    _child(PLUGIN_DURATION, plugin, "success" if ok else "error").observe(seconds)  # type: ignore[attr-defined]


def plugin_failed(plugin: str) -> None:
    """A plugin failed a batch for good (after its retries)."""
    _child(PLUGIN_ERRORS, plugin).inc()  # type: ignore[attr-defined]


def batch_observe(*, size: int, lag_s: float, processed: int) -> None:
    """A batch went through the chain; ``processed`` of its events went through
    every plugin (all of them, unless a plugin dead-lettered some)."""
    BATCH_SIZE.observe(size)
    EVENT_LAG.observe(max(lag_s, 0.0))
    if processed:
        EVENTS_PROCESSED.inc(processed)


def store_outage_retried(store: str, waited_s: float) -> None:
    """The queue's process waited ``waited_s`` for an unreachable ``store`` and
    tries again."""
    _child(STORE_UNAVAILABLE_SECONDS, store).inc(waited_s)  # type: ignore[attr-defined]
    _child(STORE_OUTAGE_RETRIES, store).inc()  # type: ignore[attr-defined]


def known_series_init(
    *,
    validators: Iterable[str],
    processors: Iterable[str],
    endpoints: Iterable[str],
    transformers: Iterable[str] = (),
) -> None:
    """Make every series whose label values are known exist, at zero until
    recorded (Prometheus' advice: a series missing until its first error is
    invisible to ``rate()`` and alerts): each rejection reason (the fixed ones
    and each validator's name), each processor's errors and run durations, and
    each endpoint's requests and durations by status class. In multiprocess mode
    a child's creation writes its zero into this process's file, which every
    scrape merges. Cheap once done: a dictionary lookup per series."""
    for reason in (*REJECTION_REASONS, *validators, *transformers):
        _child(EVENTS_REJECTED, reason)
    for plugin in processors:
        _child(PLUGIN_ERRORS, plugin)
        for status in PLUGIN_STATUSES:
            _child(PLUGIN_DURATION, plugin, status)
    for store in STORES:
        _child(STORE_UNAVAILABLE_SECONDS, store)
        _child(STORE_OUTAGE_RETRIES, store)
    for endpoint in endpoints:
        _child(HTTP_REQUESTS, endpoint)
        for status_class in HTTP_STATUS_CLASSES:
            _child(HTTP_REQUESTS_DURATION, endpoint, status_class)
