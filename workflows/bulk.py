"""A bulk send: pages of mandate child workflows, abandoned to run their month, continue-as-new per page."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.bulk import BulkActivities
    from activities.mandates import MandateActivities
    from activities.models import BulkPageInput, BulkRef, MandateToStart, RecordStatusInput
    from domain.status import MandateStatus
    from workflows import policies
    from workflows.mandate import MandateWorkflow, mandate_search_attributes, mandate_summary
    from workflows.mandate_models import MandateOptions, MandateWorkflowInput

# Reserving a page is a database transaction per dossier: a large page gets room, and heartbeats per
# dossier so that a lost worker's page is taken up again quickly.
PAGE_ACTIVITY = {
    **policies.DATABASE,
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(seconds=30),
}


class BulkSendInput(BaseModel):
    bulk_send_id: UUID
    task_queue: str
    mandate_options: MandateOptions = Field(default_factory=MandateOptions)
    # A month-long child stays pending on its parent: pages stay well under Temporal's 2,000.
    page_size: int = 100
    next_position: int = 0


def bulk_workflow_id(bulk_send_id: UUID) -> str:
    return f"bulk-{bulk_send_id}"


@workflow.defn
class BulkSendWorkflow:
    @workflow.run
    async def run(self, input: BulkSendInput) -> None:
        workflow.set_current_details(
            f"Bulk send {input.bulk_send_id}: this run starts the mandates from position"
            f" {input.next_position} (pages of {input.page_size}, one run each)"
        )
        page = await workflow.execute_activity_method(
            BulkActivities.reserve_bulk_page,
            BulkPageInput(bulk_send_id=input.bulk_send_id, start=input.next_position, size=input.page_size),
            **PAGE_ACTIVITY,
        )
        # All starts of a page go out in one workflow task; each child is caught on its own.
        await asyncio.gather(
            *(self._start(input, mandate) for mandate in page.mandates),
            *(self._close_replaced(workflow_id) for workflow_id in page.replaced_workflow_ids),
        )
        if page.more:
            workflow.continue_as_new(
                input.model_copy(update={"next_position": input.next_position + input.page_size})
            )
        await workflow.execute_activity_method(
            BulkActivities.finish_bulk_send, BulkRef(bulk_send_id=input.bulk_send_id), **policies.DATABASE
        )

    async def _start(self, input: BulkSendInput, mandate: MandateToStart) -> None:
        if mandate.draft:  # (only ever true in pages reserved by this version: no patch needed)
            await self._send_draft(input, mandate)
            return
        child = MandateWorkflowInput(
            mandate_id=mandate.mandate_id,
            firm_id=mandate.firm_id,
            dossier_id=mandate.dossier_id,
            options=input.mandate_options,
            send_on_start=True,
            bulk_send_id=input.bulk_send_id,
        )
        try:
            await workflow.start_child_workflow(
                MandateWorkflow.run,
                child,
                id=mandate.workflow_id,
                task_queue=input.task_queue,
                static_summary=mandate_summary(mandate.number),
                # Reserved as `sending`: the child records nothing before its send.
                search_attributes=mandate_search_attributes(child, MandateStatus.SENDING),
                # The mandate waits for its signature for a month, long after the batch is done.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # A mandate runs once: a closed one (deleted, signed) is never started again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("mandate already started", extra={"workflow_id": mandate.workflow_id})

    async def _close_replaced(self, workflow_id: str) -> None:
        """A failed mandate this batch replaced (deleted in the store already) ends its run."""
        with contextlib.suppress(FailureError):  # ended already: deleted by the firm meanwhile
            await workflow.get_external_workflow_handle(workflow_id).signal(MandateWorkflow.replaced)

    async def _send_draft(self, input: BulkSendInput, mandate: MandateToStart) -> None:
        """A draft the firm previewed is sent by its own workflow, as this batch's."""
        try:
            await workflow.get_external_workflow_handle(mandate.workflow_id).signal(
                MandateWorkflow.send_in_bulk, input.bulk_send_id
            )
        except FailureError as error:  # its run is gone: say so, unless it settled first (deleted)
            with contextlib.suppress(ActivityError):  # refused: that record settled the item already
                await self._record_draft_failure(mandate, error)

    async def _record_draft_failure(self, mandate: MandateToStart, error: FailureError) -> None:
        await workflow.execute_activity_method(
            MandateActivities.record_mandate_status,
            RecordStatusInput(
                mandate_id=mandate.mandate_id,
                status=MandateStatus.FAILED,
                cause="bulk send",
                at=workflow.now(),
                failure_reason=f"the draft's workflow could not be told to send it ({error.message}):"
                " delete it and generate a new one",
            ),
            **policies.DATABASE,
        )
