"""The API gateway: a thin HTTP layer over the store and the workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from config.settings import Settings
from config.temporal import connect_temporal
from starter.api import problems
from starter.api.limits import BodySizeLimit
from starter.api.query import EmptyQueryValuesAbsent
from starter.api.routes import bulk, codec, dossiers, firm, health, mandate, metrics, webhooks
from store.database import connect_database


def create_app(
    settings: Settings,
    *,
    db: asyncpg.Pool | None = None,
    temporal: Client | None = None,
    close_db: bool = False,
) -> FastAPI:
    """The app; given a pool and a client, it uses them (and closes the pool at shutdown if
    `close_db`), else it connects at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_db = db if close_db else None
        if db is None:
            dsn = settings.database_url.get_secret_value() if settings.database_url else None
            owned_db = await connect_database(dsn, settings.data_dir)
        app.state.db = db or owned_db
        app.state.temporal = temporal or await connect_temporal(settings)
        app.state.settings = settings
        try:
            yield
        finally:
            if owned_db is not None:
                await owned_db.close()

    app = FastAPI(
        title="E-invoicing mandates",
        version="1.0.0",
        description="Accounting firms get their clients' e-invoicing mandates signed through YouSign.",
        lifespan=lifespan,
    )
    if db is not None and temporal is not None:  # served without lifespan (e.g. an ASGI transport)
        app.state.db, app.state.temporal, app.state.settings = db, temporal, settings
    app.add_middleware(BodySizeLimit)
    app.add_middleware(EmptyQueryValuesAbsent)
    # The Temporal UI calls the codec server from the operator's browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    problems.install(app)
    for module in (firm, dossiers, mandate, bulk, webhooks, codec, health, metrics):
        app.include_router(module.router)
    return app
