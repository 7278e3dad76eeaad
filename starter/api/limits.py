"""Request body limits, enforced while the body streams in (never read whole first): its size, and
how long it may pause."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.database import DATABASE_FAILURES

DEFAULT_LIMIT = 1024 * 1024
# Two identity files of at most 20 MB each, plus the form fields.
UPLOAD_LIMIT = 2 * 20 * 1024 * 1024 + 64 * 1024
UPLOAD_PATHS = frozenset({"/v1/firm/legal-representative"})
UNAUTHORIZED = "a valid API key is required: Authorization: Bearer <key>"
# A body that stops coming (a Content-Length larger than what is sent, a client gone quiet) would
# hold its request for ever: uvicorn bounds the wait between requests, not within one. One that
# trickles in is bounded as a whole: two 20 MB photos take 10 minutes at 0.6 Mbit/s.
BODY_IDLE_TIMEOUT = 30.0
BODY_DEADLINE = 600.0


class BodyRefused(HTTPException):
    """Raised from `receive` while the body streams in; answered as a problem."""


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


class BodyStalled(BodyRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, headers={"Connection": "close"})


class BodyLimits:
    """`firm_of(request)` is the firm whose API key the request presents: only with one may a body be
    an upload's 40 MB (the key is checked before the body is read, not after, as the route would)."""

    def __init__(
        self,
        app: ASGIApp,
        firm_of: Callable[[Request], Awaitable[UUID | None]],
        idle_timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.app = app
        self.firm_of = firm_of
        self.idle_timeout = BODY_IDLE_TIMEOUT if idle_timeout is None else idle_timeout
        self.deadline = BODY_DEADLINE if deadline is None else deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = DEFAULT_LIMIT
        if scope["path"] in UPLOAD_PATHS and scope["method"] in ("POST", "PUT", "PATCH"):
            if not await self._authenticated(scope):
                await _problem(send, 401, "Unauthorized", UNAUTHORIZED, {b"www-authenticate": b"Bearer"})
                return
            limit = UPLOAD_LIMIT
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, BodyTooLarge(limit))
            return
        received = 0
        body_done = False
        started = False
        loop = asyncio.get_running_loop()
        body_due = loop.time() + self.deadline

        async def counted_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # what is awaited now is the client's disconnect: no bound
                return await receive()
            idle_until = loop.time() + self.idle_timeout
            try:
                async with asyncio.timeout_at(min(idle_until, body_due)):
                    message = await receive()
            except TimeoutError:
                if idle_until <= body_due:
                    raise BodyStalled(
                        f"the request body stopped coming for {self.idle_timeout:g} s before its end"
                        " (is its Content-Length the size of what is sent?)"
                    ) from None
                raise BodyStalled(f"the request body took over {self.deadline:g} s to come") from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyRefused as refused:
            if not started:
                await _refuse(send, refused)

    async def _authenticated(self, scope: Scope) -> bool:
        try:
            return await self.firm_of(Request(scope)) is not None
        except DATABASE_FAILURES:
            return True  # the route checks it again, and says the database is unavailable


CONTENT_TOO_LARGE = "Content too large"  # the 413's title, as RFC 9110 names it
REQUEST_TIMEOUT = "Request Timeout"
BODY_TITLES = {408: REQUEST_TIMEOUT, 413: CONTENT_TOO_LARGE}


async def _refuse(send: Send, refused: BodyRefused) -> None:
    headers = {k.lower().encode(): v.encode() for k, v in (refused.headers or {}).items()}
    await _problem(send, refused.status_code, BODY_TITLES[refused.status_code], refused.detail, headers)


async def _problem(
    send: Send, status: int, title: str, detail: str, headers: dict[bytes, bytes] | None = None
) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or {}).items(),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
