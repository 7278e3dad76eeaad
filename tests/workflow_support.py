"""Running the real workers against a test Temporal server, and driving a mandate like the gateway."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer, Worker

from clients.mailer import Mailer
from clients.yousign import YouSignClient
from clients.yousign_webhooks import WebhookEvent
from config.settings import Settings
from starter.webhook_events import mandate_signal
from starter.workflows import start_mandate_workflow
from store import mandates
from store.records import Dossier, Mandate
from tests.helpers import TEST_CONVERTER, eventually
from worker import WORKFLOWS, worker_configs
from workflows.mandate import MandateWorkflow
from workflows.mandate_models import MandateState


@asynccontextmanager
async def running_workers(
    client: Client,
    settings: Settings,
    db,
    yousign: YouSignClient,
    *,
    smtp_url: str | None = None,
    replace: list | None = None,
) -> AsyncIterator[list[Worker]]:
    """The production workers on test task queues; `replace` swaps activities by name."""
    mailer = Mailer(smtp_url, "cabinet@example.test") if smtp_url else None
    configs = worker_configs(client, settings, db, yousign, mailer)
    by_name = {_name(r): r for r in replace or []}
    async with AsyncExitStack() as stack:
        workers = []
        for config in configs:
            config["activities"] = [by_name.get(_name(a), a) for a in config["activities"]]
            workers.append(await stack.enter_async_context(Worker(client, **config)))
        yield workers


def _name(activity) -> str:
    return activity.__temporal_activity_definition.name


@dataclass
class MandateRun:
    mandate: Mandate
    handle: WorkflowHandle
    db: object

    async def state(self) -> MandateState:
        return await self.handle.query(MandateWorkflow.current_state)

    async def wait_for(self, status: str, within: float = 15.0) -> MandateState:
        """Until the workflow is in `status` and has written it to the database too."""

        async def reached():
            state = await self.state()
            stored = await mandates.get_mandate(self.db, self.mandate.id)
            return state if state.status == status == stored.status else None

        return await eventually(reached, within=within)

    async def wait_generated(self) -> MandateState:
        async def generated():
            state = await self.state()
            return state if state.signature_field is not None else None

        return await eventually(generated)


async def generate_mandate(client: Client, settings: Settings, db, dossier: Dossier) -> MandateRun:
    """What the gateway does on POST /mandate: reserve the row, start the workflow."""
    mandate = await mandates.reserve_mandate(db, dossier.firm_id, dossier.id, issued_on=date.today())
    handle = await start_mandate_workflow(client, settings, mandate)
    return MandateRun(mandate, handle, db)


async def send_and_wait_pending(run: MandateRun) -> MandateState:
    await run.handle.execute_update(MandateWorkflow.send)
    return await run.wait_for("pending")


def events_for(emulator, signature_request_id: str, event_name: str) -> list[WebhookEvent]:
    return [
        WebhookEvent.model_validate(e.payload)
        for e in emulator.state.webhook_events
        if e.event_name == event_name
        and e.payload["data"].get("signature_request", {}).get("id") == signature_request_id
    ]


async def deliver(emulator, run: MandateRun, signature_request_id: str, event_name: str) -> None:
    """Hand the emulator's webhook to the workflow, as the gateway's webhook route does."""
    events = events_for(emulator, signature_request_id, event_name)
    assert events, f"the emulator sent no {event_name} webhook for {signature_request_id}"
    for event in events:
        await run.handle.signal(MandateWorkflow.yousign_event, mandate_signal(event))


HISTORIES = Path(__file__).parent / "histories"


async def current_details(handle: WorkflowHandle) -> str:
    """What the Temporal UI shows as the run's current details (the SDK's metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def replay_and_keep(handle: WorkflowHandle, name: str) -> None:
    """Replay the run's history against the current code; with RECORD_HISTORIES=1 also keep it
    in tests/histories, where test_replay.py replays it against every later change."""
    history = await handle.fetch_history()
    await Replayer(workflows=list(WORKFLOWS), data_converter=TEST_CONVERTER).replay_workflow(history)
    if os.environ.get("RECORD_HISTORIES"):
        (HISTORIES / f"{name}.json").write_text(history.to_json())
