"""Webhook delivery, as YouSign does it: signed JSON POSTs, 1 s first-try timeout, retries on failure.

One FIFO queue and one worker per URL: events reach a receiver in the order they happened, and a slow
receiver only delays its own queue. Success is any 2xx or 3xx (redirects are not followed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time

import httpx

from .models import WebhookDelivery, WebhookEvent
from .state import EmulatorState


def signature_header(secret: str, body: bytes) -> str:
    """`sha256=<lowercase hex HMAC-SHA256 of the raw body>` (YouSign "security" page)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDispatcher:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._queues: dict[str, asyncio.Queue[WebhookEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._busy: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # trust_env=False: proxy variables of the machine must not capture loopback deliveries.
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._loop = asyncio.get_running_loop()
        state.event_sink = self.submit

    def submit(self, event: WebhookEvent, urls: list[str]) -> None:
        """Queue an event; callable from the emulator's loop or, thread-safely, from another thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._enqueue(event, urls)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, event, urls)

    def _enqueue(self, event: WebhookEvent, urls: list[str]) -> None:
        for url in urls:
            queue = self._queues.get(url)
            if queue is None:
                queue = self._queues[url] = asyncio.Queue()
                self._workers[url] = self._loop.create_task(self._work(url, queue))
            queue.put_nowait(event)
            self._idle.clear()

    async def _work(self, url: str, queue: asyncio.Queue[WebhookEvent]) -> None:
        while True:
            event = await queue.get()
            self._busy.add(url)
            try:
                await self._deliver(event, url)
            finally:
                self._busy.discard(url)
                queue.task_done()
                if self.is_idle():
                    self._idle.set()

    async def _deliver(self, event: WebhookEvent, url: str) -> None:
        settings = self._state.settings
        delays = list(settings.webhook_retry_delays_seconds)
        for attempt in range(len(delays) + 1):
            if attempt:
                await asyncio.sleep(delays[attempt - 1])
            limit = (
                settings.webhook_timeout_seconds if attempt == 0 else settings.webhook_retry_timeout_seconds
            )
            if await self._attempt(event, url, attempt, limit):
                return

    async def _attempt(self, event: WebhookEvent, url: str, attempt: int, limit: float) -> bool:
        settings = self._state.settings
        headers = {
            "Content-Type": "application/json",
            "X-Yousign-Signature-256": signature_header(settings.webhook_secret, event.body),
            "X-Yousign-Retry": str(attempt),
            "X-Yousign-Issued-At": str(int(time.time())),
            "User-Agent": "Yousign Webhook Bot",
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(url, content=event.body, headers=headers, timeout=limit)
            status = response.status_code
        except httpx.TimeoutException:
            error = f"timeout after {limit:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._state.webhook_deliveries.append(
            WebhookDelivery(
                event.event_id,
                event.event_name,
                url,
                attempt,
                status,
                error,
                time.time(),
                time.monotonic() - started,
            )
        )
        return status is not None and 200 <= status < 400

    def is_idle(self) -> bool:
        return not self._busy and all(q.empty() for q in self._queues.values())

    async def wait_idle(self, limit_seconds: float = 10.0) -> None:
        """Wait until every queued event has been delivered or given up (tests use it)."""
        async with asyncio.timeout(limit_seconds):
            await self._idle.wait()

    async def aclose(self) -> None:
        self._state.event_sink = None
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._queues.clear()
        await self._client.aclose()
