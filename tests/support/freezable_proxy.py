"""A TCP proxy on loopback that can stop passing bytes while keeping its connections open: a server
that hangs, as a stopped process does, rather than one that refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FreezableProxy:
    """To `connect()`'s target (`tcp(host, port)`, or a Unix socket's `asyncio.open_unix_connection`)."""

    def __init__(self, connect: Callable[[], Awaitable[Streams]]) -> None:
        self._connect = connect
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await self._connect()
        for pipe in (self._pipe(reader, target_writer), self._pipe(target_reader, writer)):
            task = asyncio.ensure_future(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FreezableProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


def tcp(host: str, port: int) -> Callable[[], Awaitable[Streams]]:
    return lambda: asyncio.open_connection(host, port)
