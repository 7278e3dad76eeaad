"""Handing the requests YouSign settled to their mandate workflows, as their lost webhooks would have."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.models import SettledPage
from store import mandates
from workflows.mandate import MandateWorkflow
from workflows.mandate_models import YouSignEvent

log = structlog.get_logger(__name__)


class ReconciliationActivities:
    def __init__(self, db: asyncpg.Pool, client: Client) -> None:
        self._db = db
        self._client = client

    @activity.defn
    async def notify_settled_mandates(self, page: SettledPage) -> int:
        """Signal each mandate still pending here; returns how many were (the others had their webhook)."""
        notified = 0
        settled_by_request = {settled.signature_request_id: settled for settled in page.requests}
        for mandate in await mandates.pending_with_signature_requests(self._db, list(settled_by_request)):
            settled = settled_by_request[mandate.signature_request_id]
            event = YouSignEvent(
                # Stable per request and outcome: a second sweep's signal is dropped as a duplicate.
                event_id=f"reconciliation:{settled.signature_request_id}:{settled.status}",
                event_name=f"signature_request.{settled.status}",
                signature_request_id=settled.signature_request_id,
                occurred_at=settled.at,
                source="reconciliation",
            )
            handle = self._client.get_workflow_handle_for(MandateWorkflow.run, mandate.workflow_id)
            try:
                await handle.signal(MandateWorkflow.yousign_event, event)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # its workflow has closed meanwhile
            log.info("mandate reconciled", mandate_id=str(mandate.id), status=settled.status)
            notified += 1
            activity.heartbeat(notified)
        return notified
