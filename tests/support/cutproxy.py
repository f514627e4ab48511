"""An HTTP proxy in front of a real server that loses answers: for the next
``cut`` POSTs it forwards the request, waits for the server's answer (so what
the server committed stays committed) and then closes the client's connection
without a word, as a network failure after the commit would. The client sees
the connection drop and retries a request the server already took. A server
that is down (killed) also closes the client's connection without an answer;
``retarget`` points the proxy at its successor (a restart gets a new port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import httpx

from tests.support.loopback import http_server

__all__ = ["CutProxy", "cut_proxy"]

_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


@dataclass
class CutProxy:
    url: str
    cut_left: int = 0
    cut_answers: list[int] = field(default_factory=list)  # the statuses withheld
    cut_bodies: list[bytes] = field(default_factory=list)
    forwarded: int = 0
    failed: int = 0  # requests the server never answered (down)
    upstream: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def retarget(self, upstream: str) -> None:
        with self.lock:
            self.upstream = upstream

    def cut(self, count: int) -> None:
        with self.lock:
            self.cut_left = count


@contextmanager
def cut_proxy(upstream: str) -> Iterator[CutProxy]:
    client = httpx.Client(timeout=60)
    state = CutProxy(url="", upstream=upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            try:
                answer = client.post(state.upstream + self.path, content=body, headers=headers)
            except httpx.HTTPError:
                with state.lock:
                    state.failed += 1
                self.close_connection = True
                return
            with state.lock:
                state.forwarded += 1
                cut = state.cut_left > 0
                if cut:
                    state.cut_left -= 1
                    state.cut_answers.append(answer.status_code)
                    state.cut_bodies.append(body)
            if cut:
                self.close_connection = True  # no answer: the connection just closes
                return
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP and name.lower() != "content-encoding":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    try:
        with http_server(Handler) as url:
            state.url = url
            yield state
    finally:
        client.close()


def batch_messages(body: bytes) -> int:
    """Messages of a (possibly gzipped) Segment batch body."""
    import gzip

    try:
        text = gzip.decompress(body)
    except OSError:
        text = body
    return len(json.loads(text)["batch"])
