"""Connecting a process to the services it needs at start-up, saying plainly which one is missing:
one line naming the variable to check instead of a traceback (a supervisor restarts the process;
the line says why). Anything else, a bug, keeps its traceback."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from config.temporal import SEARCH_ATTRIBUTES, connect_temporal
from store.database import migrate, open_database

log = structlog.get_logger(__name__)

# What a database that is not there looks like: refused, unknown host, timed out, starting up,
# wrong password or database name.
_DATABASE_MISSING = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,
)


class Unreachable(Exception):
    """A service the process cannot start without is not there; the message names its variable."""


async def connect_services(settings: Settings, runtime: Runtime | None = None) -> tuple[asyncpg.Pool, Client]:
    """The migrated database pool and the Temporal client, or Unreachable."""
    dsn = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        db = await open_database(dsn, settings.data_dir)
    except _DATABASE_MISSING as error:
        where = "DATABASE_URL" if dsn else "the embedded server, DATA_DIR"
        # The error names host, port or user at most: never the URL, which may hold the password.
        raise Unreachable(f"cannot use PostgreSQL ({where}): {type(error).__name__}: {error}") from None
    except ValueError:  # the driver could not read the URL: its message may quote the password
        raise Unreachable("cannot use PostgreSQL (DATABASE_URL): the driver cannot read that URL") from None
    try:
        await migrate(db)
        return db, await _temporal(settings, runtime)
    except BaseException:
        await db.close()
        raise


async def _temporal(settings: Settings, runtime: Runtime | None) -> Client:
    try:
        client = await connect_temporal(settings, runtime)
    except RuntimeError as error:
        if not str(error).startswith("Failed client connect"):
            raise
        reason = str(error).removeprefix("Failed client connect: ").splitlines()[0][:200]
        raise Unreachable(
            f"cannot reach Temporal at {settings.temporal_address} (TEMPORAL_ADDRESS): {reason}"
        ) from None
    await _namespace_ready(client, settings.temporal_namespace)
    return client


async def _namespace_ready(client: Client, namespace: str) -> None:
    """The namespace exists and has the search attributes the workflows set: else every mandate
    would fail at its start (a 503), long after this process said it was ready."""
    try:
        found = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise Unreachable(f"Temporal has no namespace {namespace!r} (TEMPORAL_NAMESPACE)") from None
        # Not allowed to list them (a restricted API key, Temporal Cloud): the workflows will tell.
        log.warning("search attributes not checked", namespace=namespace, error=error.message)
        return
    missing = [key.name for key in SEARCH_ATTRIBUTES if key.name not in found.custom_attributes]
    if missing:
        raise Unreachable(
            f"Temporal namespace {namespace!r} lacks the search attributes {', '.join(missing)}:"
            " register them (docs/running.md, deploy/temporal/setup-namespace.sh)"
        )
