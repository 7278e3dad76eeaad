"""HTTP twin of the in-process control methods, under /_emulator/ (no auth, loopback clients only)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import ApiError
from .state import EmulatorState

LOOPBACK = ("127.0.0.1", "::1", "localhost")
Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    """Loopback only, and ApiError/ValueError -> JSON errors like the API's."""

    async def guarded(request: Request) -> Response:
        client = request.client.host if request.client else ""
        if client not in LOOPBACK and not client.startswith("127."):
            return JSONResponse(
                {"type": "forbidden", "detail": "Control API is loopback only."}, status_code=403
            )
        try:
            return await handler(request)
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status_code)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"type": "bad_request", "detail": str(exc)}, status_code=400)

    return guarded


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


class Control:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def sign(self, request: Request) -> Response:
        return JSONResponse(self.state.sign_signer(request.path_params["signer_id"]))

    async def decline(self, request: Request) -> Response:
        reason = (await _body(request)).get("reason") or "Refusé depuis l'émulateur"
        return JSONResponse(self.state.decline_signer(request.path_params["signer_id"], reason))

    async def expire(self, request: Request) -> Response:
        return JSONResponse(self.state.expire_signature_request(request.path_params["sr_id"]))

    async def complete_kyc(self, request: Request) -> Response:
        body = await _body(request)
        result = self.state.complete_identity_document(
            request.path_params["verification_id"], body.get("status", "verified"), body.get("status_codes")
        )
        return JSONResponse(result)

    async def add_fault(self, request: Request) -> Response:
        body = await _body(request)
        allowed = {"method", "path_regex", "kind", "times", "delay_seconds"}
        fault = self.state.add_fault(**{k: v for k, v in body.items() if k in allowed})
        return JSONResponse(fault.to_json(), status_code=201)

    async def list_faults(self, request: Request) -> Response:
        return JSONResponse([f.to_json() for f in self.state.faults.faults])

    async def clear_faults(self, request: Request) -> Response:
        self.state.clear_faults()
        return Response(status_code=204)

    async def requests(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "headers": r.headers,
                    "body_base64": base64.b64encode(r.body).decode(),
                }
                for r in self.state.recorded_requests
            ]
        )

    async def events(self, request: Request) -> Response:
        return JSONResponse([e.payload for e in self.state.webhook_events])

    async def deliveries(self, request: Request) -> Response:
        return JSONResponse([asdict(d) for d in self.state.webhook_deliveries])

    async def replay(self, request: Request) -> Response:
        event = self.state.replay_webhook(request.path_params["event_id"])
        return JSONResponse(event.payload, status_code=202)

    async def get_urls(self, request: Request) -> Response:
        return JSONResponse({"urls": self.state.webhook_urls})

    async def put_urls(self, request: Request) -> Response:
        urls = (await _body(request)).get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError('expected {"urls": ["http://..."]}')
        self.state.set_webhook_urls(urls)
        return JSONResponse({"urls": self.state.webhook_urls})

    async def put_rate_limits(self, request: Request) -> Response:
        body = await _body(request)
        self.state.set_rate_limits(
            body.get("requests_per_minute"),
            body.get("requests_per_hour"),
            body.get("minute_seconds"),
            body.get("hour_seconds"),
        )
        return JSONResponse(self.state.stats())

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)


def control_routes(state: EmulatorState) -> list[Route]:
    c = Control(state)
    base = "/_emulator"
    table: list[tuple[str, Handler, str]] = [
        ("/signers/{signer_id}/sign", c.sign, "POST"),
        ("/signers/{signer_id}/decline", c.decline, "POST"),
        ("/signature_requests/{sr_id}/expire", c.expire, "POST"),
        ("/identity_documents/{verification_id}/complete", c.complete_kyc, "POST"),
        ("/faults", c.add_fault, "POST"),
        ("/faults", c.list_faults, "GET"),
        ("/faults", c.clear_faults, "DELETE"),
        ("/requests", c.requests, "GET"),
        ("/webhooks/events", c.events, "GET"),
        ("/webhooks/deliveries", c.deliveries, "GET"),
        ("/webhooks/events/{event_id}/replay", c.replay, "POST"),
        ("/webhook-urls", c.get_urls, "GET"),
        ("/webhook-urls", c.put_urls, "PUT"),
        ("/rate-limits", c.put_rate_limits, "PUT"),
        ("/stats", c.stats, "GET"),
        ("/reset", c.reset, "POST"),
    ]
    return [Route(base + path, _guard(handler), methods=[method]) for path, handler, method in table]
