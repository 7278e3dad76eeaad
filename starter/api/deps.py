"""Per-request dependencies: the shared pool, the Temporal client, settings, and the caller's firm."""

from __future__ import annotations

import difflib
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
    """A query parameter that looks meant for one the operation takes but is not it is a 422 naming
    it: ignored, `?status[]=` (how some libraries write a list) or a misspelt `?stauts=` would list
    every dossier. Others (a cache-buster's `_`, tracking parameters) are left alone, as before."""
    route = request.scope.get("route")
    known = _query_parameters(route.dependant) if route else set()
    mistaken = {
        name: why for name in request.query_params if name not in known and (why := _correction(name, known))
    }
    if mistaken:
        raise RequestValidationError(
            [
                {"type": "mistaken_parameter", "loc": ("query", name), "msg": why}
                for name, why in mistaken.items()
            ]
        )


def _query_parameters(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    return names.union(*(_query_parameters(d) for d in dependant.dependencies))


def _correction(name: str, known: set[str]) -> str | None:
    """How to write `name`, if it looks meant for one of the `known` parameters."""
    stem = name.removesuffix("[]")
    if stem != name and stem in known:
        return f"write it {stem}= (repeat {stem}= for several values)"
    close = difflib.get_close_matches(stem, sorted(known), n=1, cutoff=0.75)
    return f"no such parameter: did you mean {close[0]}?" if close else None
