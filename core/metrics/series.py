"""The metric series Telemetron records (README, "Monitoring").

The original service's five series keep their names, types and labels exactly;
the others are ours. Every process records into these objects (through
:mod:`core.metrics.recording`); under ``manage.py serve`` prometheus_client's
multiprocess mode (the ``PROMETHEUS_MULTIPROC_DIR`` variable, set by ``serve``
for its children, :mod:`ops.metrics.multiproc`) writes them to per-process files
that ``GET /metrics`` merges. Gauges that describe the database (queue depth,
dead letters) are computed when scraped, in :mod:`ops.metrics.collectors`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

__all__ = [
    "BATCH_SIZE",
    "COMMIT_OUTCOME_UNKNOWN",
    "EVENTS_ACCEPTED",
    "EVENTS_DEDUPLICATED",
    "EVENTS_DROPPED",
    "EVENTS_PROCESSED",
    "EVENTS_REJECTED",
    "EVENT_LAG",
    "FORBIDDEN",
    "HTTP_REQUESTS",
    "HTTP_REQUESTS_DURATION",
    "HTTP_STATUS_CLASSES",
    "INVALID",
    "PLUGIN_DURATION",
    "PLUGIN_ERRORS",
    "PLUGIN_STATUSES",
    "RATE_LIMITED",
    "REJECTION_REASONS",
    "STORES",
    "STORE_OUTAGE_RETRIES",
    "STORE_UNAVAILABLE_SECONDS",
    "TOO_LARGE",
    "UNAUTHORIZED",
]

# `_created` series are not merged across processes; leave them out everywhere
# so the exposition is the same in one process and in many.
disable_created_metrics()

# --- the original's five series --------------------------------------------------
HTTP_REQUESTS = Counter(
    "telemetron_http_requests",
    "HTTP requests handled, by route template (e.g. /stats/{source_id}).",
    ["endpoint"],
)
HTTP_REQUESTS_DURATION = Histogram(
    "telemetron_http_requests_duration_seconds",
    "HTTP request duration in seconds, by route template and status class (2xx/4xx/5xx).",
    ["endpoint", "status"],
)
PLUGIN_ERRORS = Counter(
    "telemetron_processor_plugin_errors",
    "Batches a processor plugin failed on permanently (after its retries; dead-lettered).",
    ["plugin"],
)
PLUGIN_DURATION = Histogram(
    "telemetron_processor_plugin_duration_seconds",
    "Duration of one processor plugin run on a batch (one attempt), by outcome.",
    ["plugin", "status"],
)
EVENTS_PROCESSED = Counter(
    "telemetron_events_processed",
    "Events every enabled processor plugin processed (a batch's events, less any "
    "a plugin dead-lettered).",
)

# --- ours ----------------------------------------------------------------------------
EVENTS_ACCEPTED = Counter(
    "telemetron_events_accepted",
    "Events accepted by /ingest and /ingest/batch (answered 202).",
)
COMMIT_OUTCOME_UNKNOWN = Counter(
    "telemetron_commit_outcome_unknown",
    'Requests answered 503 "outcome unknown": a broker commit whose answer was lost and'
    " whose store did not tell within ingest.commit_timeout whether it landed.",
)
EVENTS_DEDUPLICATED = Counter(
    "telemetron_events_deduplicated",
    "Events acknowledged but not enqueued: their (source, id) was already taken within "
    "ingest.dedup_window (a retried Segment message, a repeated /ingest id).",
)
EVENTS_REJECTED = Counter(
    "telemetron_events_rejected",
    "Events rejected at ingest, by reason: the validator's or transformer's name, `invalid`"
    " (not JSON, "
    "or not a valid event), `unauthorized`, `forbidden`, `rate_limited` (429) or "
    "`too_large` (a request over a size limit).",
    ["reason"],
)
EVENTS_DROPPED = Counter(
    "telemetron_events_dropped",
    "Events a transformer dropped at ingest (answered as accepted, never queued), by "
    "transformer and reason (a CEL rule's name, `sampled`, …).",
    ["transformer", "reason"],
)
BATCH_SIZE = Histogram(
    "telemetron_batch_size",
    "Events per batch taken by a worker.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
EVENT_LAG = Histogram(
    "telemetron_event_lag_seconds",
    "Seconds from a batch's enqueue (its events' 202) to the end of its processing; "
    "one observation per batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
STORE_UNAVAILABLE_SECONDS = Counter(
    "telemetron_store_unavailable_seconds",
    "Seconds the queue's processes waited for an unreachable store (the database, "
    "Redis) before trying again: processing paused by an outage, no attempt spent.",
    ["store"],
)
STORE_OUTAGE_RETRIES = Counter(
    "telemetron_store_outage_retries",
    "Tries again after a store was found unreachable (one per backoff wait).",
    ["store"],
)

# The rejection reasons besides the validators' names (telemetron_events_rejected_total):
INVALID = "invalid"  # not JSON, or not a valid event
FORBIDDEN = "forbidden"  # another source's event, a disabled source, an origin not allowed
RATE_LIMITED = "rate_limited"  # the source is over its rate limit now (429: retry later)
# A request over a size limit, whatever the moment (413; Segment's API answers 400):
# ingest.max_body_bytes (one event: the body is not read), ingest.max_batch_events
# or a source's burst (its events), a Segment message over 32 KB.
TOO_LARGE = "too_large"
UNAUTHORIZED = "unauthorized"  # no or unknown write key (401)
REJECTION_REASONS = (INVALID, FORBIDDEN, RATE_LIMITED, TOO_LARGE, UNAUTHORIZED)

# The values of the other fixed labels: every one is exported at zero from the
# first scrape (core.metrics.recording.known_series_init), so rate() and alerts
# on them see a series before the first error.
HTTP_STATUS_CLASSES = ("2xx", "4xx", "5xx")
PLUGIN_STATUSES = ("success", "error")
STORES = ("database", "redis")  # telemetron_store_* series
