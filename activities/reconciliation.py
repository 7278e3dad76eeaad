"""Handing the requests YouSign settled to their mandate workflows, as their lost webhooks would have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.models import SettledPage
from config.settings import Settings
from starter.bulk_runs import start_bulk_send_workflow
from starter.kyc_runs import kyc_run_is_for, start_kyc_workflow
from starter.run_status import described
from store import bulk, kyc, mandates
from store.bulk import BulkSend
from workflows.bulk import bulk_workflow_id
from workflows.mandate import MandateWorkflow
from workflows.mandate_models import YouSignEvent

log = structlog.get_logger(__name__)


# A submission's check (a batch's run) is started within a second of its storing, and a retried one
# is running: one still without a verification (a batch still without a run) after this long was
# never started.
STALLED_AFTER = timedelta(minutes=10)


class ReconciliationActivities:
    def __init__(self, db: asyncpg.Pool, client: Client, settings: Settings) -> None:
        self._db = db
        self._client = client
        self._settings = settings

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

    @activity.defn
    async def resume_stalled_identity_checks(self) -> int:
        """Start the checks whose start was lost (the gateway stopped between storing the firm's
        submission and starting its check): else the firm would stay `pending`, mandates refused,
        until it submitted again. Returns how many were started."""
        started = 0
        for stalled in await kyc.stalled_submissions(self._db, STALLED_AFTER):
            if await kyc_run_is_for(self._client, stalled, running=True):
                continue  # being retried (YouSign out of reach): its run goes on
            async with kyc.one_submission_at_a_time(self._db, stalled.firm_id) as conn:
                current = await kyc.current_submission(conn, stalled.firm_id)
                if current is None or current.id != stalled.id or current.verification_id is not None:
                    continue  # the firm submitted again meanwhile
                await start_kyc_workflow(self._client, self._settings, stalled)
                await kyc.supersede_older(conn, stalled)
            log.warning("identity check started late", firm_id=str(stalled.firm_id))
            started += 1
            activity.heartbeat(started)
        return started

    @activity.defn
    async def resume_unstarted_bulk_sends(self) -> int:
        """Start the batches whose start was lost (the gateway stopped between recording the batch and
        starting its run), and settle those whose run ended with dossiers left (an operator terminated
        it): else these would stay queued or `sending` for ever, count in every later batch's ETA and
        keep the stall alert firing. Returns how many were started."""
        started = 0
        for batch, untouched in await bulk.unfinished(self._db, older_than=STALLED_AFTER):
            activity.heartbeat(started)  # each batch is a look-up in Temporal: alive between them
            run = await described(self._client.get_workflow_handle(bulk_workflow_id(batch.id)))
            if run is not None and run.status == WorkflowExecutionStatus.RUNNING:
                continue  # paced, or waiting for a worker
            if run is None and untouched:
                await start_bulk_send_workflow(self._client, self._settings, batch)
                log.warning("bulk send started late", bulk_send_id=str(batch.id))
                started += 1
                continue
            # Ended (or closed past Temporal's retention) before it finished.
            if run is None:
                ended = "no longer known to Temporal"
            else:
                ended = run.status.name.lower() if run.status else "closed"
            await self._settle_ended_batch(batch, ended)
        return started

    async def _settle_ended_batch(self, batch: BulkSend, ended: str) -> None:
        """Settled so, so that it is not started again once Temporal has forgotten its run: its queued
        dossiers skipped, the mandates its last page reserved but never got sent set aside (nothing
        was sent; the firm generates them again), the drafts it adopted the firm's own again."""
        now = datetime.now(UTC)
        reason = f"the bulk send's run ended ({ended})"
        await bulk.skip_all_queued(self._db, batch.id, reason)
        await bulk.release_adopted_drafts(self._db, batch, f"{reason}: the draft stays the firm's")
        for mandate in await bulk.reserved_unsent(self._db, batch):
            # Not running (never started, or ended by an operator): no request was ever activated.
            run = await described(self._client.get_workflow_handle(mandate.workflow_id))
            if run is None or run.status != WorkflowExecutionStatus.RUNNING:
                await mandates.discard_reservation(self._db, mandate.id, now, cause=bulk.RUN_ENDED_UNSENT)
        await bulk.finish(self._db, batch.id, now)
        log.warning("bulk send's run ended before it finished", bulk_send_id=str(batch.id), ended=ended)
