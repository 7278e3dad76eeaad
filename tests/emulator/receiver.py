"""A tiny webhook receiver on loopback that records raw bodies and can be told to fail or stall."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.types import Receive, Scope, Send

from yousign_emulator import InProcessServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give next, then 200
    stalls: list[float] = field(default_factory=list)  # seconds to wait before answering next ones
    hold: asyncio.Event | None = None  # when set: no answer before the test sets the event

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(headers, b"".join(chunks)))
        if self.stalls:
            await asyncio.sleep(self.stalls.pop(0))
        if self.hold is not None:
            await self.hold.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:  # noqa: ASYNC110 - a test helper, polling is fine
                await asyncio.sleep(0.01)
        return self.received


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, see server.py
    sock.bind(("127.0.0.1", 0))
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/yousign"
    server = InProcessServer(
        uvicorn.Config(receiver.app, interface="asgi3", lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no "started" event
        await asyncio.sleep(0.005)
    try:
        yield receiver
    finally:
        server.stop()
        await task
        sock.close()
