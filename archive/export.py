"""The formats of ``manage.py archive export``: JSON Lines (one event per line,
the API's field names) and CSV (``data`` as JSON text)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import Any, Literal, TextIO

from plugins.base import format_timestamp

__all__ = ["CSV_HEADER", "Format", "export_write"]

Format = Literal["jsonl", "csv"]
CSV_HEADER = ("source_id", "type", "timestamp", "received_at", "batch_id", "data")
_FLUSH_EVERY = 1000


_string = json.JSONEncoder(ensure_ascii=False).encode


def _jsonl(row: tuple[Any, ...]) -> str:
    """One line; ``data`` is spliced in as the JSON text the database holds."""
    source_id, type_, timestamp, data_json, received_at, batch_id = row
    return (
        f'{{"sourceId":{source_id},"type":{_string(type_)},'
        f'"timestamp":"{format_timestamp(timestamp)}","data":{data_json or "null"},'
        f'"receivedAt":"{format_timestamp(received_at)}","batchId":{_string(batch_id)}}}'
    )


def _csv_cells(row: tuple[Any, ...]) -> tuple[Any, ...]:
    source_id, type_, timestamp, data_json, received_at, batch_id = row
    return (
        source_id,
        type_,
        format_timestamp(timestamp),
        format_timestamp(received_at),
        batch_id,
        data_json or "",
    )


def export_write(
    rows: Iterable[tuple[Any, ...]],
    *,
    fmt: Format,
    out: TextIO,
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Write ``rows`` (``archive.selectors.EXPORT_FIELDS`` tuples) to ``out``,
    flushing every thousand; returns how many were written."""
    written = 0
    pending = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    for row in rows:
        if writer is not None:
            writer.writerow(_csv_cells(row))
        else:
            out.write(_jsonl(row) + "\n")
        written += 1
        pending += 1
        if pending == _FLUSH_EVERY:
            out.flush()
            if on_progress is not None:
                on_progress(pending)
            pending = 0
    out.flush()
    if on_progress is not None and pending:
        on_progress(pending)
    return written
