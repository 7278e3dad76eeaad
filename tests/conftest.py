"""Session-wide real servers: embedded PostgreSQL now; Temporal and the YouSign emulator per suite."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio

from store.database import create_pool, migrate, start_embedded_postgres
from store.firms import create_firm
from store.records import Firm


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):
    # The Temporal SDK's native threads can abort CPython at interpreter shutdown *after* a green
    # run (the SDK's own suite exits the same way). Leave at once when the run passed.
    exit_code = yield
    if exit_code == 0 and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return exit_code


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or start_embedded_postgres(tmp_path_factory.mktemp("pg"))


@pytest_asyncio.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=20)
    await migrate(pool)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def firm(db: asyncpg.Pool) -> Firm:
    """A fresh firm per test: tests share the database but never each other's rows."""
    return await create_firm(db, name=f"Cabinet {uuid4().hex[:6]}", siren="732829320", address="Paris")
