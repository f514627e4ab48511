"""A TCP proxy on 127.0.0.1 between Telemetron and a dependency (PostgreSQL,
Redis), through which the nemesis slows or cuts the link: ``tc netem`` and
iptables are not available on every machine the suite runs on, a proxy is.

* :meth:`TcpProxy.delay` — every chunk of bytes, each way, is held ``seconds``
  before it is passed on (latency, order kept), until :meth:`heal`;
* :meth:`TcpProxy.cut` — every open connection is reset, and new ones are
  reset as soon as they are accepted, until :meth:`heal` (a link down).

One asyncio loop in a thread of its own carries every connection."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

__all__ = ["TcpProxy"]

_CHUNK = 65536


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Link:
    """One client connection and its upstream connection."""

    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.latency = 0.0
        self.is_cut = False
        self.connections = 0  # accepted since the start
        self.resets = 0  # connections reset by cuts
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for link in list(self._links):
                link.abort()

        with contextlib.suppress(RuntimeError):
            self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def cut(self) -> None:
        async def reset_all() -> None:
            self.is_cut = True
            for link in list(self._links):
                self.resets += 1
                link.abort()
            self._links.clear()

        self._call(reset_all())

    def heal(self) -> None:
        self.latency = 0.0
        self.is_cut = False

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writers=[writer, up_writer])
        self._links.add(link)
        link.tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer, link)),
            asyncio.ensure_future(self._pipe(up_reader, writer, link)),
        ]

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Bytes from ``src`` to ``dst``, each chunk held the latency of its arrival."""
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await held.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()
            dst.close()

        sender = asyncio.ensure_future(send())
        link.tasks.append(sender)
        try:
            while data := await src.read(_CHUNK):
                held.put_nowait((time.monotonic() + self.latency, data))
            held.put_nowait((time.monotonic() + self.latency, b""))
            await sender
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sender.cancel()
            link.abort()
            self._links.discard(link)
