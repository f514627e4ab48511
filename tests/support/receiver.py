"""A webhook receiver for tests: a real HTTP server on loopback (a thread of the
test process) that checks each delivery's signature, records it, and answers as
its script says: ``"500"`` (or any status), ``"timeout"`` (answers 200, but only
after ``late_seconds``: too late for the sender, though the receiver did take
the events), then ``mode`` for every delivery after the script."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import http_server
from webhooks.signing import SIGNATURE_HEADER, signature_verify

__all__ = ["Delivery", "Receiver", "receiver_running"]


@dataclass(frozen=True)
class Delivery:
    key: str | None  # the Idempotency-Key header
    signed: bool  # the signature header matches the body and the secret
    body: dict[str, Any]
    headers: dict[str, str]
    answer: str  # what the receiver did: "200", "500", "timeout" (took it, answered late)

    @property
    def taken(self) -> bool:
        """The receiver processed these events (whatever the sender saw)."""
        return self.answer in ("200", "timeout")


@dataclass
class Receiver:
    secret: str
    script: list[str] = field(default_factory=list)
    mode: str = "200"
    late_seconds: float = 2.0
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_answer(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        answer = self._next_answer()
        delivery = Delivery(
            key=handler.headers.get("Idempotency-Key"),
            signed=signature_verify(raw, self.secret, handler.headers.get(SIGNATURE_HEADER)),
            body=json.loads(raw),
            headers={k: v for k, v in handler.headers.items()},
            answer=answer,
        )
        with self._lock:
            self.deliveries.append(delivery)
        if answer == "timeout":
            time.sleep(self.late_seconds)
        status = 200 if answer == "timeout" else int(answer)
        body = json.dumps({"ok": status < 300}).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:  # the sender gave up waiting (a timeout) and closed
            pass

    def taken(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.taken]


@contextmanager
def receiver_running(secret: str, **kwargs: Any) -> Iterator[Receiver]:
    """A Receiver listening on 127.0.0.1 (a free port) until the block ends."""
    receiver = Receiver(secret, **kwargs)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http_server(Handler) as url:
        receiver.url = f"{url}/hook"
        yield receiver
