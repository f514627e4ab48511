"""The fault runs' TCP proxy against a real echo server on loopback: bytes pass
unchanged, a delay holds them, a cut resets open connections and refuses new
ones until healed."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.tcpproxy import TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = TcpProxy(server.server_address[1]).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()


def _round_trip(
    port: int, payload: bytes, conn: socket.socket | None = None
) -> tuple[bytes, float]:
    sock = conn or socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    took = time.monotonic() - started
    if conn is None:
        sock.close()
    return got, took


def test_bytes_pass_unchanged(proxy: TcpProxy) -> None:
    payload = bytes(range(256)) * 1000
    assert _round_trip(proxy.port, payload)[0] == payload


def test_a_delay_holds_each_way_until_healed(proxy: TcpProxy) -> None:
    proxy.delay(0.3)
    got, took = _round_trip(proxy.port, b"ping")
    assert got == b"ping" and took >= 0.6  # held on the way there and back
    proxy.heal()
    assert _round_trip(proxy.port, b"pong")[1] < 0.3


def test_a_cut_resets_open_connections_and_refuses_new_ones_until_healed(proxy: TcpProxy) -> None:
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert _round_trip(proxy.port, b"before", conn)[0] == b"before"
    proxy.cut()
    with pytest.raises(OSError):
        conn.sendall(b"after")
        if not conn.recv(10):
            raise ConnectionResetError("closed")
    conn.close()
    fresh = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    with pytest.raises(OSError):
        fresh.sendall(b"during")
        if not fresh.recv(10):
            raise ConnectionResetError("closed")
    fresh.close()
    proxy.heal()
    assert _round_trip(proxy.port, b"healed")[0] == b"healed"
    assert proxy.resets >= 1
