"""Connection pool, embedded PostgreSQL for development, and ordered SQL migrations."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Whatever can go wrong with the database, for callers whose answer is "later" either way (a
# webhook YouSign delivers again, a reminder's record tried again).
DATABASE_FAILURES: tuple[type[Exception], ...] = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Only PostgreSQL out of reach (refused, dropped, shutting down or starting, out of connections):
# another OSError (a missing file) or a failed query is a bug, not an outage.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,  # no answer within QUERY_TIMEOUT (or CONNECT_TIMEOUT)
    socket.gaierror,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def _embedded_server(data_dir: Path) -> Any:
    import pgserver  # imported here: only the embedded set-up needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode="stop")


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a PostgreSQL from the `pgserver` wheel in `data_dir`; return its URL.

    The server keeps running while any process using it runs; pgserver stops it after the last one
    at interpreter exit.
    """
    return _embedded_server(data_dir).get_uri()


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """An embedded PostgreSQL for the block only: stopped at its end, also for a process that then
    leaves with os._exit (as the test run does), which skips pgserver's exit-time stop."""
    server = _embedded_server(data_dir)
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# PostgreSQL that stops answering (hung, or a failover leaving old connections silent) fails a
# query after twice QUERY_TIMEOUT (asyncpg then waits as long for the cancel it sends): the firm
# gets a 503 within 30 s rather than a request held for ever, and an activity its retry.
QUERY_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0
# A migration may build an index on a large table, or wait for another process's migrations.
MIGRATION_TIMEOUT = 3600.0


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=QUERY_TIMEOUT,
        timeout=CONNECT_TIMEOUT,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """On release, asyncpg still rolls back a stray transaction; its full reset (unlisten, reset
    settings, unlock) is skipped: this code keeps no session state (advisory locks are released
    where they are taken, or their connection closed), and that reset was one more round trip for
    every pooled query."""


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the numbered `*.sql` files not yet recorded, each in its own transaction.

    An advisory lock makes concurrent start-ups (API and worker together) apply them once.
    """
    applied: list[str] = []
    async with pool.acquire() as conn:
        # The lock first: two processes creating the table at once can clash even with IF NOT EXISTS.
        await conn.execute("SELECT pg_advisory_lock(7233001)", timeout=MIGRATION_TIMEOUT)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    # Behind a long transaction, give up (and start again later) rather than queue
                    # every query on the table behind the migration's lock.
                    await conn.execute("SET LOCAL lock_timeout = '30s'")
                    await conn.execute(path.read_text(), timeout=MIGRATION_TIMEOUT)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                applied.append(path.stem)
                log.info("migration applied", version=path.stem)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7233001)")
    return applied


async def open_database(dsn: str | None, data_dir: Path, *, max_size: int = 10) -> asyncpg.Pool:
    """The pool: `DATABASE_URL` when given, else the embedded server (not migrated yet)."""
    if dsn is None:
        dsn = await asyncio.to_thread(start_embedded_postgres, data_dir / "postgres")
    return await create_pool(dsn, max_size=max_size)


async def connect_database(dsn: str | None, data_dir: Path, *, max_size: int = 10) -> asyncpg.Pool:
    """The pool every process uses, migrated."""
    pool = await open_database(dsn, data_dir, max_size=max_size)
    await migrate(pool)
    return pool


Db = asyncpg.Pool | asyncpg.Connection


@asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a pooled connection, or within the caller's own (a savepoint)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db
