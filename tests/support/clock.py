"""A clock moved by hand, for the code that takes one (``clock=`` arguments)."""

from __future__ import annotations

__all__ = ["Clock"]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
