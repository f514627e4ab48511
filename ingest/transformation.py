"""The transformer chain at ingest: after the validators, before the queue
commit, so what a transformer removes is never stored (queue, archive, dead
letters). Each transformer gets the events the ones before it kept, in one call
per request (:meth:`plugins.base.Transformer.transform_batch`).

An event a transformer drops is answered as accepted and counted in
``telemetron_events_dropped_total{transformer,reason}``; one it refuses, or
fails on, is refused with a ``400`` naming it (never a ``500``); one it turns
into something that is not a storable event is refused the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.config import get_config
from core.metrics.recording import events_dropped, events_rejected
from plugins.base import (
    MAX_DATA_DEPTH,
    MAX_ID_LENGTH,
    MAX_TYPE_LENGTH,
    ClientInfo,
    EventDropped,
    EventRejected,
    Transformer,
    parse_timestamp,
)
from plugins.storable import data_problem, string_problem

__all__ = ["Transformed", "client_info", "events_transform", "refusal_message"]


def _first_untrusted(forwarded: str, peer: str | None) -> str | None:
    """The client's address behind ``ingest.trusted_proxies``: from the socket's
    peer back through ``X-Forwarded-For`` (right to left), the first hop that is
    not a trusted proxy (the peer itself when it is not one)."""
    trusted = get_config().ingest.trusted_proxies
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in [peer, *reversed(hops)] if peer else reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None  # a hop that is not an address: nothing after it can be believed
        if not any(address in network for network in trusted):
            return str(address)
    return hops[0] if hops else peer  # every hop trusted: the farthest one


def client_info(meta: Mapping[str, Any]) -> ClientInfo:
    """The request's client (``request.META``): its address and user agent."""
    peer = meta.get("REMOTE_ADDR") or None
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    ip = peer
    if forwarded and get_config().ingest.trusted_proxies:
        ip = _first_untrusted(forwarded, peer)
    return ClientInfo(ip=ip, user_agent=meta.get("HTTP_USER_AGENT") or None)


def _wire_problem(event: Any, source_id: int) -> str | None:
    """Why a transformer's output is not a storable event (None when it is)."""
    if not isinstance(event, dict):
        return "it returned something that is not an event"
    if event.get("sourceId") != source_id:
        return "it changed the event's sourceId"
    kind = event.get("type")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_TYPE_LENGTH:
        return f"type must be a non-empty string of at most {MAX_TYPE_LENGTH} characters"
    if problem := string_problem(kind):
        return f"type {problem}"
    try:
        parse_timestamp(event.get("timestamp"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "timestamp must be an RFC 3339 string"
    event_id = event.get("id")
    if event_id is not None and (not isinstance(event_id, str) or len(event_id) > MAX_ID_LENGTH):
        return f"id must be a string of at most {MAX_ID_LENGTH} characters"
    data = event.get("data")
    if data is not None and (problem := data_problem(data, MAX_DATA_DEPTH)):
        return f"data {problem}"
    extra = set(event) - {"sourceId", "type", "timestamp", "data", "id"}
    if extra:
        return f"unknown event fields: {', '.join(sorted(extra))}"
    return None


def refusal_message(transformer: str, exc: Exception) -> str:
    """What the client is told about an event ``transformer`` refused or failed on."""
    if isinstance(exc, EventRejected):
        return f"Transformer {transformer} refused the event: {exc.reason}"
    return f"Transformer {transformer} failed on the event: {type(exc).__name__}: {exc}"


@dataclass
class Transformed:
    """A request's events after the chain: the kept ones (wire events) with their
    index among the events given, how many were dropped, the refused ones."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    dropped: int = 0
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)  # index: (name, message)


def events_transform(
    events: list[dict[str, Any]], *, chain: Sequence[Transformer], client: ClientInfo
) -> Transformed:
    """Run ``chain`` over ``events`` (wire events of one request); drops and
    refusals counted (metrics) here."""
    left = list(range(len(events)))
    current = events
    refused: dict[int, tuple[str, str]] = {}
    dropped = 0
    for transformer in chain:
        if not current:
            break
        sources = [e["sourceId"] for e in current]  # (a transformer may change events in place)
        try:
            outcomes = transformer.transform_batch(current, client)
            if len(outcomes) != len(current):
                raise RuntimeError(
                    f"transform_batch answered {len(outcomes)} outcomes for {len(current)} events"
                )
        except Exception as exc:  # the whole hook failed: every event it was given refused
            outcomes = [exc] * len(current)
        kept: list[dict[str, Any]] = []
        kept_at: list[int] = []
        refused_here = 0
        for index, source_id, outcome in zip(left, sources, outcomes, strict=True):
            if isinstance(outcome, EventDropped):
                events_dropped(transformer.name, outcome.reason)
                dropped += 1
                continue
            if isinstance(outcome, Exception):
                refused[index] = (transformer.name, refusal_message(transformer.name, outcome))
                refused_here += 1
                continue
            if problem := _wire_problem(outcome, source_id):
                message = f"Transformer {transformer.name} made an invalid event: {problem}"
                refused[index] = (transformer.name, message)
                refused_here += 1
                continue
            kept.append(outcome)
            kept_at.append(index)
        if refused_here:
            events_rejected(transformer.name, refused_here)
        current, left = kept, kept_at
    return Transformed(kept=current, indices=left, dropped=dropped, refused=refused)
