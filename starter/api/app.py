"""The API gateway: a thin HTTP layer over the store and the workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from config.settings import Settings
from starter.api import problems
from starter.api.deps import firm_of_request, known_query_parameters
from starter.api.limits import BodyLimits
from starter.api.query import EmptyQueryValuesAbsent
from starter.api.routes import bulk, codec, dossiers, firm, health, mandate, metrics, webhooks
from starter.api.routes.codec import CODEC_PREFIX

API_DESCRIPTION = """Accounting firms get their clients' e-invoicing mandates signed through YouSign.

Every `/v1` call but YouSign's webhook carries the firm's API key: `Authorization: Bearer <key>`
(`python -m starter.cli firms create --name ... --siren ...` prints one, starting `mk_`).
Errors are `application/problem+json`: `detail` says what went wrong, and a 422 names each invalid
field in `errors`; a 503 (database or Temporal unavailable) is worth retrying.

The way through: set the firm's Plateforme Agréée (`PUT /v1/firm/platform`) and have its legal
representative verified (`PUT /v1/firm/legal-representative`); create the client dossiers; for a
`ready_for_mandate` dossier, generate the mandate, preview its PDF and send it; the client signs or
declines from YouSign's e-mail, and the dossier becomes `ready_for_designation` or
`mandate_refused`. `POST /v1/bulk-sends` generates and sends many at once.
"""


class CodecCors:
    """CORS for the codec server's paths only: the firms' API answers no browser of another origin."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == CODEC_PREFIX or path.startswith(CODEC_PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(
    settings: Settings, *, db: asyncpg.Pool | None = None, temporal: Client | None = None
) -> FastAPI:
    """The app over a migrated pool and a Temporal client (None only to read its OpenAPI document).

    Its shutdown closes the pool (`python -m starter.api`); served without lifespan (tests), the
    caller keeps it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if db is not None:
                await db.close()

    # /docs served from the package's own copy of Swagger UI: the default loads it from a CDN.
    app = FastAPIOffline(
        title="E-invoicing mandates",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.db, app.state.temporal, app.state.settings = db, temporal, settings
    app.add_middleware(BodyLimits, firm_of=firm_of_request)
    app.add_middleware(EmptyQueryValuesAbsent)
    # The Temporal UI calls the codec server from the operator's browser (and nothing else, cross-origin).
    app.add_middleware(
        CodecCors,
        allow_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    problems.install(app)
    # The firm's operations refuse what they do not take; the webhook, codec, health and metrics
    # are called by machines that may add their own parameters.
    checked = [Depends(known_query_parameters)]
    for module in (firm, dossiers, mandate, bulk):
        app.include_router(module.router, dependencies=checked)
    app.include_router(mandate.history_router, dependencies=checked)
    for module in (webhooks, codec, health, metrics):
        app.include_router(module.router)
    return app
