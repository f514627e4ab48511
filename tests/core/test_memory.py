"""Freed memory handed back now and then (core/memory.py): glibc's
``malloc_trim`` found and run, at most once a second per process however
often a hot path asks."""

from __future__ import annotations

import pytest

from core import memory


def test_glibcs_malloc_trim_is_found() -> None:
    assert memory._malloc_trim() is not None  # Debian's glibc


def test_trimmed_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    monkeypatch.setattr(memory, "_looked_up", True)
    monkeypatch.setattr(memory, "_trim", trim)
    now = [1000.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(memory, "_next_trim", 0.0)
    for _ in range(100):
        memory.trim_now_and_then()
    assert calls == [0]
    now[0] += memory._INTERVAL_S
    memory.trim_now_and_then()
    assert calls == [0, 0]
