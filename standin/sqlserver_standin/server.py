"""The stand-in's TCP server: one asyncio task per connection, engine calls in a thread pool.

Several instances (primary, standby, validation) run side by side as separate processes or as
separate :class:`StandinServer` objects on different ports. SIGTERM and SIGINT close the listener,
end every connection (each session is logged out of the engine) and return, like a service stop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import socket
import struct
import threading
from collections.abc import Callable

from .events import Engine
from .tds.connection import Connection

__all__ = ["StandinServer", "BackgroundServer", "serve"]

log = logging.getLogger("sqlserver_standin.server")

DEFAULT_HOST = "127.0.0.1"


class StandinServer:
    """Listens on ``host:port`` (port 0: an ephemeral one, see :attr:`port`) for one engine."""

    def __init__(self, engine: Engine, host: str = DEFAULT_HOST, port: int = 0, *, max_workers: int = 32) -> None:
        self.engine = engine
        self.host = host
        self.requested_port = port
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers,
                                                               thread_name_prefix="standin-engine")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.connections: set[Connection] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.requested_port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not getattr(self.engine, "accepting_connections", lambda: True)():  # fault injection: the server is unreachable
            sock = writer.get_extra_info("socket")
            if sock is not None:  # reset rather than a polite close, as a dead listener would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        connection = Connection(reader, writer, self.engine, executor=self._executor)
        self.connections.add(connection)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening, end the open connections, wait for running engine calls to return."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shut_down()  # a running statement stops at its next step, then the socket closes
        if self._server is not None:
            # after the shut-downs: on some Python versions wait_closed() also waits for every open client
            # connection, and a client that keeps its socket open (a driver's pool) would hold it forever
            await asyncio.wait([asyncio.ensure_future(self._server.wait_closed())], timeout=5)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=10)
            for task in pending:  # an engine call that ignores Session.cancelled
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        # an engine call still running after all that (a statement that never looks at Session.cancelled)
        # is left to finish on its own thread: stopping must not hang on it
        shutdown = asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        await asyncio.wait([shutdown], timeout=5)


async def serve(engine: Engine, host: str = DEFAULT_HOST, port: int = 0, *,
                on_ready: Callable[[str, int], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT; ``on_ready(host, port)`` once the socket listens."""
    server = StandinServer(engine, host, port)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if on_ready is not None:
            on_ready(host, server.port)
        await stopping.wait()
        log.info("stopping %s on %s:%s", engine.instance_name, host, server.port)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()


class BackgroundServer:
    """A StandinServer on its own event loop thread, for tests and embedding: ``with ... as s: s.port``."""

    def __init__(self, engine: Engine, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self._engine, self._host, self._port = engine, host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="standin-server", daemon=True)
        self.server: StandinServer | None = None
        self._listening_port: int | None = None  # kept: after stop() the server has no socket to ask

    @property
    def port(self) -> int:
        return self.server.port

    def _call(self, coro, timeout: float = 30):  # noqa: ANN001, ANN202 - a coroutine in, its result out
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def start(self) -> BackgroundServer:
        self._thread.start()
        self.server = StandinServer(self._engine, self._host, self._port)
        self._call(self.server.start())
        self._listening_port = self.server.port
        return self

    def open_connections(self) -> int:
        async def count() -> int:
            return len(self.server.connections)

        return self._call(count())

    def stop(self) -> None:
        try:
            # StandinServer.stop gives up on a stuck call after its own waits (up to 25 s in all); on a loaded
            # machine they can overrun: stopping then leaves the loop to its daemon thread instead of raising
            self._call(self.server.stop(), timeout=30)
        except RuntimeError:
            pass  # the loop is not running any more
        except TimeoutError:
            log.warning("the stand-in server on port %s did not stop within 30 s; its loop is left to a daemon "
                        "thread", self._listening_port)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
