"""Liveness and readiness for orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from starter.api.deps import Db, Temporal

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "Database and Temporal answer"},
        503: {"description": "Not ready: `checks` says what failed"},
    },
)
async def readyz(db: Db, temporal: Temporal) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(db.fetchval("SELECT 1"), timeout=2)
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    try:
        await asyncio.wait_for(temporal.service_client.check_health(), timeout=2)
        checks["temporal"] = "ok"
    except Exception as error:
        checks["temporal"] = f"unavailable: {type(error).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
