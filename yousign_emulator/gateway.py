"""ASGI wrapper in front of the /v3 routes: records, authenticates, injects faults, rate-limits, adds headers.

Order per request: record -> 401 without the right Bearer key -> injected 429 (not counted) -> rate limit
(429 + Retry-After) -> other injected status (4xx/5xx) -> route -> optional delayed answer
(timeout_after_processing). Injected faults happen before the route runs (no side effect), except
timeout_after_processing, which runs it and then holds the answer back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .models import RecordedRequest, RequestStamp
from .state import EmulatorState

UNAUTHORIZED = {
    "type": "unauthorized",
    "detail": "Invalid authentication, check that you are using the correct API Key on the right environment "
    "(Sandbox / Production).",
}
TOO_MANY_REQUESTS = {"message": "Too many requests"}
SERVER_ERROR = {"type": "about:blank", "detail": "Something wrong occurred."}
_INJECTED_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "resource.not_found"}


def injected_body(status: int) -> dict[str, str]:
    """Body of an injected fault, shaped like YouSign's answer for that status."""
    if status >= 500:
        return SERVER_ERROR
    if status in (405, 429):
        return {"message": "Too many requests" if status == 429 else "Method Not Allowed"}
    return {"type": _INJECTED_TYPES.get(status, "about:blank"), "detail": f"Injected {status} fault."}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _with_headers(message: Message, extra: dict[str, str]) -> Message:
    headers = [
        (k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in _lower(extra)
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    return {**message, "headers": headers}


def _lower(headers: dict[str, str]) -> set[str]:
    return {k.lower() for k in headers}


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    base = {"content-type": "application/json", "content-length": str(len(payload))}
    await send(
        _with_headers({"type": "http.response.start", "status": status, "headers": []}, {**base, **headers})
    )
    await send({"type": "http.response.body", "body": payload})


class V3Gateway:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self._app = app
        self._state = state

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        expected = self._state.settings.api_key
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())

    def _stamp(self, method: str, path: str, *, injected: bool = False) -> RequestStamp:
        return RequestStamp(time.time(), time.monotonic(), method, path, injected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._state
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope["headers"]:
            key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        query = scope.get("query_string", b"").decode("latin-1")
        state.recorded_requests.append(RecordedRequest(method, path, query, headers, body))

        limiter = state.rate_limiter
        if not self._authorized(headers):
            await _send_json(send, 401, UNAUTHORIZED, limiter.peek_headers())
            return
        faults = state.faults
        scripted = faults.find(method, path)
        if (scripted is not None and scripted.kind == "429") or (scripted is None and faults.roll_429()):
            if scripted is not None:
                faults.consume(scripted)
            state.rejected_requests.append(self._stamp(method, path, injected=True))
            retry_after = math.ceil(scripted.delay_seconds) if scripted and scripted.delay_seconds else 1
            await _send_json(
                send, 429, TOO_MANY_REQUESTS, {**limiter.peek_headers(), "Retry-After": str(retry_after)}
            )
            return
        decision = limiter.acquire()
        if not decision.allowed:
            state.rejected_requests.append(self._stamp(method, path))
            await _send_json(send, 429, TOO_MANY_REQUESTS, decision.headers)
            return
        state.accepted_requests.append(self._stamp(method, path))
        kind, delay = None, 0.0
        if scripted is not None:
            faults.consume(scripted)
            kind, delay = scripted.kind, scripted.delay_seconds
        elif faults.roll_5xx():
            kind = "500"
        if kind is not None and kind.isdigit():
            await asyncio.sleep(delay)
            await _send_json(send, int(kind), injected_body(int(kind)), decision.headers)
            return
        messages = await self._run_route(scope, body, receive)
        if kind == "timeout_after_processing":
            await asyncio.sleep(delay)  # the work is done; the client just does not hear about it in time
        with contextlib.suppress(OSError, RuntimeError):
            for message in messages:
                if message["type"] == "http.response.start":
                    message = _with_headers(message, decision.headers)
                await send(message)

    async def _run_route(self, scope: Scope, body: bytes, receive: Receive) -> list[Message]:
        """Run the routes with the already-read body and buffer their answer (headers are added later)."""
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self._app(scope, replay, capture)
        except Exception:
            if not any(m["type"] == "http.response.start" for m in messages):
                payload = json.dumps(SERVER_ERROR).encode()
                start = {"type": "http.response.start", "status": 500, "headers": []}
                messages = [
                    _with_headers(start, {"content-type": "application/json"}),
                    {"type": "http.response.body", "body": payload},
                ]
        return messages
