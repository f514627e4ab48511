"""The process's django-q2 broker, built once: building one costs ~100 µs
(DESIGN §10), and ingest, backpressure, /readyz and /metrics all use it."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["broker"]

_broker: Any = None
_lock = threading.Lock()


def broker() -> Any:
    global _broker
    if _broker is None:
        with _lock:
            if _broker is None:
                from django_q.brokers import get_broker

                _broker = get_broker()
    return _broker
