"""Schemathesis fuzzes every operation of the API's own OpenAPI document, over real HTTP, as a real firm.

The app runs with the real stack behind it: PostgreSQL, the Temporal dev server with the production
workers, and the YouSign emulator. Schemathesis calls are blocking (`requests`), so that stack runs on
an event loop of its own in a background thread while pytest's thread sends the requests.

Bounded and deterministic: FUZZ_EXAMPLES examples per operation (20 by default; `make fuzz` runs 200),
derandomized. Every check runs; a 5xx fails whatever the operation.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import status_code_conformance
from temporalio.client import Client

from clients.yousign import YouSignClient
from starter.api.app import create_app
from store import dossiers, firms
from store.database import create_pool, migrate
from store.firms import create_firm
from tests.api_support import serving_api
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import test_settings, verified_firm_with_dossier
from tests.workflow_support import generate_mandate, running_workers, send_and_wait_pending
from yousign_emulator import EmulatorSettings, running_emulator

STATS: dict = {}
UNDECLARED: dict = {}


def record_status(ctx, response, case):
    declared = case.operation.responses.status_codes
    if str(response.status_code) not in declared:
        UNDECLARED.setdefault(case.operation.label, set()).add(response.status_code)


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))

# The document /openapi.json serves (FastAPI serves `app.openapi()`); test_served_schema_is_the_fuzzed_one
# checks that against the running server.
OPENAPI = create_app(test_settings()).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@dataclass
class FuzzTarget:
    base_url: str
    headers: dict[str, str]
    dossier_ids: list[str] = field(default_factory=list)


# Real dossiers of the fuzzing firm (ready, incomplete, with a draft or a pending mandate), drawn as
# path parameters alongside random ids, so the fuzzer reaches past the 404s. Filled by the fixture.
SEEDED_DOSSIERS: list[str] = []


@schema.hook
def before_generate_path_parameters(context, strategy):
    if "{dossier_id}" not in context.operation.path:
        return strategy
    seeded = st.deferred(lambda: st.sampled_from(SEEDED_DOSSIERS)).map(lambda i: {"dossier_id": i})
    return st.one_of(strategy, seeded)


FAILS: dict = {}


@schema.hook
def filter_failure(context, failure, case, response):
    key = (
        case.operation.label,
        type(failure).__name__,
        response.status_code,
        failure.message.splitlines()[0][:150],
    )
    FAILS.setdefault(key, []).append(case.as_curl_command()[:300])
    return False


@asynccontextmanager
async def _stack(
    database_url: str, dev_client: Client, smtp_url: str
) -> AsyncIterator[FuzzTarget]:
    settings = test_settings(yousign_webhook_secret=WEBHOOK_SECRET)
    emulator_settings = EmulatorSettings(
        api_key="test-key", webhook_secret=WEBHOOK_SECRET, kyc_delay_seconds=0.2
    )
    db = await create_pool(database_url, max_size=10)
    try:
        await migrate(db)
        temporal = await Client.connect(
            dev_client.service_client.config.target_host,
            namespace=dev_client.namespace,
            data_converter=dev_client.data_converter,
        )
        async with (
            running_emulator(emulator_settings) as emulator,
            YouSignClient(emulator.api_base_url, "test-key", timeout=5.0) as yousign,
            running_workers(temporal, settings, db, yousign, smtp_url=smtp_url),
            serving_api(settings, db, temporal) as base_url,
        ):
            emulator.state.set_webhook_urls([f"{base_url}/v1/webhooks/yousign"])
            firm = await create_firm(db, name="Cabinet Fuzz", siren="732829320", address="Paris")
            ready = await verified_firm_with_dossier(db, firm)
            incomplete = await dossiers.create_dossier(
                db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
            )
            draft = await verified_firm_with_dossier(db, firm)
            await generate_mandate(temporal, settings, db, draft)
            pending = await verified_firm_with_dossier(db, firm)
            await send_and_wait_pending(await generate_mandate(temporal, settings, db, pending))
            key = await firms.issue_api_key(db, firm.id)
            yield FuzzTarget(
                base_url,
                {"Authorization": f"Bearer {key}"},
                [str(d.id) for d in (ready, incomplete, draft, pending)],
            )
            emulator.state.set_webhook_urls([])
    finally:
        await db.close()


@contextmanager
def stack_in_thread(*args) -> Iterator[FuzzTarget]:
    """Run `_stack` on its own event loop in a thread until the block exits."""
    ready: Future[FuzzTarget] = Future()
    stopping: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def main() -> None:
        stop = asyncio.Event()
        stopping.set_result((asyncio.get_running_loop(), stop))
        try:
            async with _stack(*args) as target:
                ready.set_result(target)
                await stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="fuzz-stack", daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=120)
    finally:
        loop, stop = stopping.result(timeout=10)
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def target(database_url, dev_env, smtp_sink) -> Iterator[FuzzTarget]:
    with stack_in_thread(database_url, dev_env.client, smtp_sink.url) as target:
        SEEDED_DOSSIERS[:] = target.dossier_ids
        yield target
        SEEDED_DOSSIERS.clear()
        for label, c in STATS.items():
            print(label, sum(c.values()), dict(c))
        print("UNDECLARED", UNDECLARED)
        for k, v in sorted(FAILS.items()):
            print("FAIL", k, len(v), v[0])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api(case, target: FuzzTarget):
    response = case.call_and_validate(
        base_url=target.base_url,
        headers=target.headers,
    )
    STATS.setdefault(case.operation.label, Counter())[response.status_code] += 1
