"""Start/stop: uvicorn as a task of the caller's event loop, plus the webhook dispatcher and expiry sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from . import kyc
from .api import build_v3_app
from .control import control_routes
from .gateway import V3Gateway
from .pages import page_routes
from .persistence import load_state, save_state
from .settings import EmulatorSettings
from .state import EmulatorState
from .webhooks import WebhookDispatcher

log = logging.getLogger("yousign_emulator")


def build_app(state: EmulatorState) -> ASGIApp:
    """/v3/... goes through the gateway (auth, limits, faults); everything else is pages and control."""
    api = V3Gateway(build_v3_app(state), state)
    web = Starlette(routes=[*page_routes(state), *control_routes(state)])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v3" or path.startswith("/v3/")):
            await api(scope, receive, send)
        else:
            await web(scope, receive, send)

    return app


class InProcessServer(uvicorn.Server):
    """uvicorn for a task of the caller's loop: no signal handling (the host owns it), quick stop.

    uvicorn polls should_exit every 0.1 s and always sleeps 0.1 s in shutdown; with one emulator per
    test that was most of the suite's time, hence stop() waking the main loop and a tighter shutdown.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._wake.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state = self.server_state
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while state.connections or state.tasks:  # noqa: ASYNC110 - uvicorn exposes no event
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in state.tasks:
                task.cancel()
        for server in self.servers:
            await server.wait_closed()


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass
class Emulator:
    """Handle returned by `running_emulator`."""

    settings: EmulatorSettings
    state: EmulatorState
    host: str
    port: int
    dispatcher: WebhookDispatcher
    _server: InProcessServer
    _task: asyncio.Task[None]

    @property
    def public_url(self) -> str:
        return self.state.public_url

    @property
    def api_base_url(self) -> str:
        return self.public_url + "/v3"

    async def webhooks_idle(self, limit_seconds: float = 10.0) -> None:
        """Wait until all queued webhook deliveries (including retries) are finished."""
        await self.dispatcher.wait_idle(limit_seconds)

    async def wait_stopped(self) -> None:
        await asyncio.shield(self._task)

    def request_stop(self) -> None:
        self._server.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def _sweep(state: EmulatorState) -> None:
    sweeps = 0
    while True:
        await asyncio.sleep(state.settings.expiry_sweep_seconds)
        sweeps += 1
        try:
            state.sweep_expired()
            if state.settings.state_file and sweeps % 10 == 0:  # a crash loses seconds, not everything
                save_state(state, state.settings.state_file)
        except Exception:  # a sweep failure must not stop future sweeps
            log.exception("expiry sweep failed")


@asynccontextmanager
async def running_emulator(settings: EmulatorSettings | None = None) -> AsyncIterator[Emulator]:
    """Serve the emulator on the current event loop until the block exits; returns once it is listening."""
    settings = settings or EmulatorSettings()
    state = EmulatorState(settings)
    if settings.state_file and load_state(state, settings.state_file):
        kyc.resume_pending(state)
    sock = _bind(settings.host, settings.port)  # binding here makes port 0 and bind errors synchronous
    port = sock.getsockname()[1]
    state.public_url = (settings.public_base_url or f"http://{_url_host(settings.host)}:{port}").rstrip("/")
    dispatcher = WebhookDispatcher(state)
    config = uvicorn.Config(
        build_app(state),
        interface="asgi3",
        lifespan="off",
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = InProcessServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    sweeper = asyncio.get_running_loop().create_task(_sweep(state))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the startup error
                raise RuntimeError("YouSign emulator stopped during startup")
            await asyncio.sleep(0.005)
        yield Emulator(settings, state, settings.host, port, dispatcher, server, task)
    finally:
        server.stop()
        sweeper.cancel()
        state.cancel_all_scheduled()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dispatcher.aclose()
        sock.close()
        if settings.state_file:
            save_state(state, settings.state_file)
