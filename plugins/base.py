# Long: the whole plugin contract lives in one module (STYLE), Batch and validate_batch too.
"""The plugin contract every app depends on: the event and batch shapes, the
``Validator``, ``Transformer`` and ``Processor`` base classes, their errors and
the ``Params`` convention. Nothing here imports an app.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StrictInt,
    StrictStr,
    field_validator,
)

from plugins.storable import data_problem, string_problem
from plugins.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "MAX_DATA_DEPTH",
    "MAX_ID_LENGTH",
    "MAX_TYPE_LENGTH",
    "U64_MAX",
    "Batch",
    "ClientInfo",
    "Event",
    "EventDropped",
    "EventRejected",
    "Kind",
    "Plugin",
    "PluginParams",
    "PluginSpec",
    "ProcessingError",
    "Processor",
    "Secret",
    "TransformOutcome",
    "Transformer",
    "Validator",
    "batch_id_new",
    "batch_received_at",
    "format_timestamp",
    "parse_timestamp",
]

U64_MAX = 2**64 - 1

Kind = Literal["validator", "transformer", "processor"]

# How deeply an event's ``data`` may nest (arrays/objects). Deeper values cannot
# be pickled for the broker within Python's recursion limit, and one such event
# would fail the whole group commit it shares with other requests.
MAX_DATA_DEPTH = 64
# The longest ``type``: PostgreSQL's unique index on (source, type) refuses rows
# over 2704 bytes, and 256 characters are at most 1024 bytes of UTF-8.
MAX_TYPE_LENGTH = 256
# The longest event id (``id``; a Segment ``messageId``), the dedup record's key.
MAX_ID_LENGTH = 200


def _integral_number(value: Any) -> Any:
    """A JSON number without a fraction (``1325.0``) is that integer, as in JSON
    Schema's ``integer``; anything else goes on to the strict check unchanged
    (a string, a boolean, ``1325.5`` are refused)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


class Event(BaseModel):
    """One telemetry event as clients send it (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    source_id: Annotated[StrictInt, BeforeValidator(_integral_number)] = Field(
        alias="sourceId", ge=0, le=U64_MAX
    )
    type: StrictStr = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    timestamp: datetime
    data: Any = None
    # The sender's id of the event (a Segment messageId): a repeat of (source, id)
    # within ingest.dedup_window is acknowledged and not enqueued again.
    id: StrictStr | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH)

    @field_validator("type")
    @classmethod
    def _type_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        if problem := string_problem(v):
            raise ValueError(problem)
        return v

    @field_validator("id")
    @classmethod
    def _id_storable(cls, v: str | None) -> str | None:
        if v is not None and (problem := string_problem(v)):
            raise ValueError(problem)
        return v

    @field_validator("data")
    @classmethod
    def _data_storable(cls, v: Any) -> Any:
        if v is not None and (problem := data_problem(v, MAX_DATA_DEPTH)):
            raise ValueError(problem)
        return v

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc3339(cls, v: Any) -> datetime:
        if not isinstance(v, str):
            raise ValueError("must be an RFC 3339 string, e.g. 2023-10-27T09:30:00Z")
        return parse_timestamp(v)

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the broker and the dead-letter queue (normalised to UTC)."""
        wire = {
            "sourceId": self.source_id,
            "type": self.type,
            "timestamp": format_timestamp(self.timestamp),
            "data": self.data,
        }
        if self.id is not None:
            wire["id"] = self.id
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_wire`'s output (the broker's and the
        dead-letter queue's copy), without validating it again: it was validated
        at ingest, and re-running the checks cost the workers more than the
        aggregation (bench/RESULTS.md)."""
        return cls.model_construct(
            source_id=data["sourceId"],
            type=data["type"],
            timestamp=datetime.fromisoformat(data["timestamp"]),
            data=data.get("data"),
            id=data.get("id"),
        )


def batch_id_new() -> str:
    """A new batch id: a UUIDv7 (RFC 9562) in 32 hex digits. Its first 48 bits are
    the Unix time in milliseconds when ingest committed the batch, so the time the
    events were received travels with the id itself: through the broker, every
    redelivery, bisection (parts are ``<id>.0``, ``<id>.1``) and dead-letter replay."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 + 62 used, 6 spare
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & (2**62 - 1)  # rand_b
    return f"{value:032x}"


def batch_received_at(batch_id: str) -> datetime | None:
    """When the batch ``batch_id`` (or a part of it, ``<id>.0.1``) was received:
    the time its UUIDv7 carries; None for an id of another form (ids made before
    batch ids were UUIDv7, or by a test)."""
    root = batch_id.split(".", 1)[0]
    if len(root) != 32 or root[12] != "7":
        return None
    try:
        millis = int(root[:12], 16)
        int(root, 16)
    except ValueError:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


class Batch:
    """What a processor receives: a stable id (the same on every redelivery and
    replay) and the events.

    A worker builds it from the broker's wire events (``Batch(id, wire=...)``);
    the :class:`Event` objects are then made only when a plugin reads
    :attr:`events` (one model object per event cost the workers more than the
    StorageProcessor's folding, which reads :attr:`wire`)."""

    __slots__ = ("_events", "_wire", "id")

    def __init__(
        self,
        id: str,
        events: Sequence[Event] | None = None,
        *,
        wire: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        if events is None and wire is None:
            raise TypeError("Batch needs events or wire")
        self.id = id
        self._events = tuple(events) if events is not None else None
        self._wire = wire

    @property
    def events(self) -> tuple[Event, ...]:
        if self._events is None:
            assert self._wire is not None
            self._events = tuple(Event.from_wire(e) for e in self._wire)
        return self._events

    @property
    def wire(self) -> Sequence[dict[str, Any]]:
        """The events in the wire format (:meth:`Event.to_wire`), as plain data."""
        if self._wire is None:
            self._wire = [e.to_wire() for e in self.events]
        return self._wire

    def __len__(self) -> int:
        return len(self._events if self._events is not None else self.wire)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return self.id == other.id and self.events == other.events

    def __hash__(self) -> int:
        return hash((self.id, self.events))

    def __repr__(self) -> str:
        return f"Batch(id={self.id!r}, events={len(self)})"

    @property
    def received_at(self) -> datetime | None:
        """When ingest committed the batch (see :func:`batch_received_at`)."""
        return batch_received_at(self.id)


class EventRejected(Exception):
    """Raised by a validator; the message is the reason shown to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventDropped(Exception):
    """Raised by a transformer to drop an event: the client is answered as if it
    were accepted, and the drop is counted under ``reason`` (a short, fixed word:
    it is a metric's label value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProcessingError(Exception):
    """Raised by a processor for a failure worth retrying / dead-lettering."""


class PluginParams(BaseModel):
    """Base of every plugin's parameters (``class Params(PluginParams)`` inside a
    plugin); unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _reveal(value: SecretStr) -> str:
    return value.get_secret_value()


# A parameter the admin never shows (a password input, masked in the plugin list,
# the history and `plugins sync`): its JSON schema says ``writeOnly``. Its value is
# hidden in reprs and logs too, but kept when the parameters are stored.
Secret = Annotated[SecretStr, PlainSerializer(_reveal, return_type=str, when_used="json")]


class Plugin:
    """Common shape: a unique ``name``, a ``Params`` model, built from params."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[PluginParams]] = PluginParams

    def __init__(self, params: PluginParams) -> None:
        self.params = params


class Validator(Plugin):
    kind = "validator"

    def validate(self, event: Event) -> None:
        """Return to accept; raise :class:`EventRejected` to reject."""
        raise NotImplementedError

    def validate_batch(self, events: Sequence[Event]) -> dict[int, EventRejected]:
        """Check a request's events at once: the rejected ones by index (an empty
        dict accepts them all). The default calls :meth:`validate` on each event;
        a validator that can decide for a whole batch more cheaply (the built-in
        ones with an empty allow-list: nothing to check) overrides it, with the
        same outcome as :meth:`validate` event by event."""
        rejected: dict[int, EventRejected] = {}
        for index, event in enumerate(events):
            try:
                self.validate(event)
            except EventRejected as exc:
                rejected[index] = exc
        return rejected


@dataclass(frozen=True)
class ClientInfo:
    """Who sent a request, as a transformer may use it: the client's address (the
    socket's, or the first untrusted hop of ``X-Forwarded-For`` behind
    ``ingest.trusted_proxies``) and its ``User-Agent``; None when unknown."""

    ip: str | None = None
    user_agent: str | None = None


# What a transformer's batch hook answers for each event it was given: the event
# (changed or not), or why it was dropped, or the error that refuses it.
TransformOutcome = dict[str, Any] | EventDropped | Exception


class Transformer(Plugin):
    """Changes, enriches or drops an event after the validators and before the
    queue commit, so what it removes is never stored. Events are the wire form
    (:meth:`Event.to_wire`: ``sourceId``, ``type``, ``timestamp``, ``data`` and
    maybe ``id``), plain JSON data the transformer may change in place or
    replace."""

    kind = "transformer"

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        """Return the event to keep (changed or not); raise :class:`EventDropped`
        to drop it, :class:`EventRejected` (or any error) to refuse it with a
        ``400`` naming this transformer."""
        raise NotImplementedError

    def transform_batch(
        self, events: Sequence[dict[str, Any]], client: ClientInfo
    ) -> list[TransformOutcome]:
        """A request's events at once (they share ``client``), one outcome per
        event in order. The default calls :meth:`transform` on each; a
        transformer that can do a whole batch more cheaply overrides it, with
        the same outcome as :meth:`transform` event by event."""
        outcomes: list[TransformOutcome] = []
        for event in events:
            try:
                outcomes.append(self.transform(event, client))
            except Exception as exc:  # EventDropped, EventRejected, or a bug: the caller sorts
                outcomes.append(exc)
        return outcomes


class Processor(Plugin):
    kind = "processor"

    def process(self, batch: Batch) -> None:
        """Process the whole batch; raise to have it retried, then dead-lettered."""
        raise NotImplementedError

    def process_many(self, batches: list[Batch]) -> None:
        """Optional: process several batches at once, all or nothing. A queue
        worker hands a claim's batches to a processor that overrides it in one
        call; when that call raises, each batch goes through :meth:`process` alone
        (with its retries and dead letters), so raise only having changed nothing
        or what ``process`` of the same batches would skip (the StorageProcessor's
        ledger)."""
        raise NotImplementedError

    def processes_many(self) -> bool:
        """Whether this processor overrides :meth:`process_many`."""
        return type(self).process_many is not Processor.process_many

    def state_is_process_local(self) -> bool:
        """True when what ``process`` changes lives in this process's memory, so
        running it from another process (``manage.py dlq replay``) would change
        nothing the service serves."""
        return False


@dataclass(frozen=True)
class PluginSpec:
    """A plugin as configured: its kind, its name and its parameters (from
    config.toml or a ``PluginConfig`` row), not yet built."""

    kind: Kind
    name: str
    params: dict[str, Any] = field(default_factory=dict)
