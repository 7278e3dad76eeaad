"""The API served by uvicorn on loopback, with the real workers behind it, for HTTP tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from config.settings import Settings
from starter.api.app import create_app
from store import firms
from store.records import Firm
from tests.helpers import WEBHOOK_SECRET, free_port, test_settings
from tests.workflow_support import running_workers


@asynccontextmanager
async def serving_api(settings: Settings, db, temporal) -> AsyncIterator[str]:
    port = free_port()
    app = create_app(settings, db=db, temporal=temporal)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class FirmClient:
    """An httpx client speaking for one firm (its API key in every request)."""

    firm: Firm
    http: httpx.AsyncClient


async def firm_client(db, base_url: str, firm: Firm) -> FirmClient:
    key = await firms.issue_api_key(db, firm.id)
    http = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return FirmClient(firm, http)


@asynccontextmanager
async def api_stack(dev_env, db, emulator, yousign, smtp_sink, **overrides):
    settings = test_settings(yousign_webhook_secret=WEBHOOK_SECRET, **overrides)
    async with (
        running_workers(dev_env.client, settings, db, yousign, smtp_url=smtp_sink.url),
        serving_api(settings, db, dev_env.client) as base_url,
    ):
        emulator.state.set_webhook_urls([f"{base_url}/v1/webhooks/yousign"])
        try:
            yield base_url
        finally:
            emulator.state.set_webhook_urls([])
