"""Per-request dependencies: the shared pool, the Temporal client, settings, and the caller's firm."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from temporalio.client import Client

from config.settings import Settings
from starter.api.limits import UNAUTHORIZED
from store.firms import firm_id_for_api_key

_bearer = HTTPBearer(auto_error=False, description="The firm's API key")


def get_db(request: Request) -> asyncpg.Pool:
    return request.app.state.db


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Db = Annotated[asyncpg.Pool, Depends(get_db)]
Temporal = Annotated[Client, Depends(get_temporal)]
AppSettings = Annotated[Settings, Depends(get_settings)]


async def _firm_of(db: asyncpg.Pool, credentials: HTTPAuthorizationCredentials | None) -> UUID | None:
    return await firm_id_for_api_key(db, credentials.credentials) if credentials else None


async def firm_of_request(request: Request) -> UUID | None:
    """The firm whose API key the request presents, read as `current_firm` reads it (for a check
    made before the route, on the raw request: the upload size limit's)."""
    return await _firm_of(get_db(request), await _bearer(request))


async def current_firm(
    request: Request, db: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> UUID:
    """Every /v1 route but the webhook: the firm whose API key is presented, else 401."""
    firm_id = await _firm_of(db, credentials)
    if firm_id is None:
        raise HTTPException(401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    request.state.firm_id = firm_id  # an error after this one is not refused for want of a key
    return firm_id


FirmId = Annotated[UUID, Depends(current_firm)]
