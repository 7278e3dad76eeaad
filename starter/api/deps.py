"""Per-request dependencies: the shared pool, the Temporal client, settings, and the caller's firm."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
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


def known_query_parameters(request: Request, _: FirmId) -> None:
    """A query parameter the operation does not take is a 422 naming it, not ignored: `?status[]=`
    (how some libraries write a list) or a misspelt `?stauts=` would list every dossier."""
    route = request.scope.get("route")
    known = _query_parameters(route.dependant) if route else set()
    unknown = dict.fromkeys(name for name in request.query_params if name not in known)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "unknown_parameter", "loc": ("query", name), "msg": _unknown(name, known)}
                for name in unknown
            ]
        )


def _query_parameters(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    return names.union(*(_query_parameters(d) for d in dependant.dependencies))


def _unknown(name: str, known: set[str]) -> str:
    stem = name.removesuffix("[]")
    if stem != name and stem in known:
        return f"write it {stem}= (repeat {stem}= for several values)"
    takes = ", ".join(sorted(known)) if known else "none"
    return f"this operation takes no such query parameter (it takes: {takes})"
