"""The codec server: the Temporal UI (and CLI) send encrypted payloads here to read them in clear.

Authenticated by CODEC_AUTH_TOKEN (Bearer) when set. Otherwise only loopback callers are served,
which is what a local `make run` with the UI on the same machine needs, unless
CODEC_ALLOW_ANY_CLIENT is set (only where a proxy or private network already authenticates); and
only under the names of CODEC_ALLOWED_HOSTS, so that a web page cannot reach it through a DNS name of
its own rebound to this machine.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Request
from google.protobuf import json_format
from starlette.exceptions import HTTPException
from temporalio.api.common.v1 import Payloads

from config.codec import EncryptionCodec, parse_keys
from starter.api.deps import AppSettings
from starter.api.problems import problem_responses

CODEC_PREFIX = "/codec"
router = APIRouter(
    prefix=CODEC_PREFIX,
    tags=["operations"],
    responses=problem_responses(400, 401, 403, 404, 408, 413, 415, 422),
)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

PayloadsBody = Annotated[dict[str, Any], Body(examples=[{"payloads": [{"metadata": {}, "data": ""}]}])]


def _codec(request: Request, settings) -> EncryptionCodec:
    token = settings.codec_auth_token
    if token is not None:
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, f"Bearer {token.get_secret_value()}".encode()):
            raise HTTPException(
                401, "the codec server needs its token: Authorization: Bearer <CODEC_AUTH_TOKEN>"
            )
    else:
        allowed = {name.strip().lower() for name in settings.codec_allowed_hosts.split(",") if name.strip()}
        if _host_name(request.headers.get("host", "")) not in allowed:
            raise HTTPException(
                403, "the codec answers without CODEC_AUTH_TOKEN only under CODEC_ALLOWED_HOSTS' names"
            )
        if not settings.codec_allow_any_client and (
            request.client is None or request.client.host not in LOOPBACK
        ):
            raise HTTPException(403, "set CODEC_AUTH_TOKEN to serve the codec beyond this machine")
    if not settings.payload_encryption_keys:
        raise HTTPException(404, "payload encryption is not configured")
    keys = parse_keys(settings.payload_encryption_keys.get_secret_value())
    return EncryptionCodec(keys, settings.payload_encryption_key_id)


def _host_name(host: str) -> str | None:
    """`localhost:8000` -> `localhost`, `[::1]:8000` -> `::1`; None when it is no host name."""
    if "@" in host or "/" in host:  # a Host header is a name and a port, nothing more
        return None
    try:
        return urlsplit(f"//{host}").hostname
    except ValueError:  # an IPv6 address without its closing bracket
        return None


PAYLOADS_SHAPE = '{"payloads": [{"metadata": {"<key>": "<base64>"}, "data": "<base64>"}]}'


def _payloads(body: dict[str, Any]) -> Payloads:
    try:
        return json_format.ParseDict(body, Payloads())
    except json_format.ParseError:
        raise HTTPException(422, f"payloads: not Temporal's payloads ({PAYLOADS_SHAPE})") from None


@router.post("/encode")
async def encode(request: Request, body: PayloadsBody, settings: AppSettings) -> dict[str, Any]:
    encoded = await _codec(request, settings).encode(_payloads(body).payloads)
    return json_format.MessageToDict(Payloads(payloads=encoded))


@router.post("/decode")
async def decode(request: Request, body: PayloadsBody, settings: AppSettings) -> dict[str, Any]:
    try:
        decoded = await _codec(request, settings).decode(_payloads(body).payloads)
    except UnicodeDecodeError:  # a key id or an encoding of bytes that are no text
        raise HTTPException(422, "payloads: a metadata value is not UTF-8 text") from None
    except ValueError as error:  # unknown key id, or data that does not authenticate
        raise HTTPException(422, f"payloads: {error or 'cannot be decrypted'}") from None
    return json_format.MessageToDict(Payloads(payloads=decoded))
