"""Logging from ``[logging]``: JSON lines carry the structured fields; levels
per logger; bad levels stop start-up with the key's name."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from collections.abc import Iterator
from typing import Any

import pytest

from core.config import LoggingConfig, Settings
from ops.logging import logging_dict
from ops.middleware import RequestLog
from tests.support.procs import wait_until


@pytest.fixture
def configured() -> Iterator[Any]:
    """Apply a logging_dict with the console going to a buffer; restore after."""
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    stream = io.StringIO()

    def apply(**cfg: Any) -> io.StringIO:
        config = logging_dict(LoggingConfig(**cfg))
        config["handlers"]["console"]["stream"] = stream
        logging.config.dictConfig(config)
        return stream

    yield apply
    root = logging.getLogger()
    root.handlers[:], root.level = saved
    for name in ("telemetron.test", "telemetron.request"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_json_lines_carry_timestamp_level_logger_message_and_extra_fields(configured: Any) -> None:
    stream = configured(format="json", level="INFO")
    log = logging.getLogger("telemetron.test")
    log.error(
        "dead-lettered batch %s", "b1", extra={"batch_id": "b1", "plugin": "P", "source_id": 7}
    )
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "ERROR"
    assert first["logger"] == "telemetron.test"
    assert first["message"] == "dead-lettered batch b1"
    assert (first["batch_id"], first["plugin"], first["source_id"]) == ("b1", "P", 7)
    assert first["timestamp"].endswith("Z") and first["timestamp"][10] == "T"
    assert "ValueError: boom" in second["exception"]


def test_text_format_is_the_default(configured: Any) -> None:
    stream = configured(level="INFO")
    logging.getLogger("telemetron.test").warning("plain %d", 1)
    line = stream.getvalue().strip()
    assert line.endswith(f"WARNING telemetron.test {os.getpid()}: plain 1")


def test_per_logger_levels(configured: Any) -> None:
    stream = configured(level="INFO", levels={"telemetron.request": "warning"})
    logging.getLogger("telemetron.request").info("a request")
    logging.getLogger("telemetron.test").info("kept")
    assert "a request" not in stream.getvalue()
    assert "kept" in stream.getvalue()


def test_unknown_level_names_the_logger() -> None:
    with pytest.raises(ValueError, match=r"telemetron\.request"):
        Settings(logging={"levels": {"telemetron.request": "LOUD"}})


def test_format_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMETRON_LOGGING__FORMAT", "json")
    assert Settings().logging.format == "json"


def test_request_lines_are_written_by_the_process_log_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The middleware queues a request's fields; one thread of the process writes
    the line on telemetron.request with the structured fields; what is still
    queued at exit is written by flush()."""
    lines = RequestLog()
    with caplog.at_level(logging.INFO, logger="telemetron.request"):
        lines.put(("POST", "/ingest", "/ingest", 202, 0.0042))
        records = wait_until(lambda: [r for r in caplog.records if r.name == "telemetron.request"])
        record = records[0]
        assert record.getMessage() == '"POST /ingest" 202 4.2ms'
        fields = (record.method, record.path, record.endpoint, record.status, record.duration_ms)  # type: ignore[attr-defined]
        assert fields == ("POST", "/ingest", "/ingest", 202, 4.2)
        unwritten = RequestLog()
        unwritten._pid = os.getpid()  # as if its thread were busy: the lines stay queued
        unwritten.put(("GET", "/stats", "/stats", 200, 0.001))
        assert not any(r.getMessage().startswith('"GET /stats"') for r in caplog.records)
        unwritten.flush()  # at exit
        assert any(r.getMessage() == '"GET /stats" 200 1.0ms' for r in caplog.records)
