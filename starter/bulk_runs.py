"""Starting a bulk send's workflow, and the options every mandate run gets.

Apart from starter/workflows.py: the reconciliation sweep's activities start bulk sends too, and that
module imports the sweep's workflow.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from config.settings import Settings
from config.temporal import BULK_SEND_ID, FIRM_ID, firm_fairness
from store.bulk import BulkSend
from workflows.bulk import BulkSendInput, BulkSendWorkflow, bulk_workflow_id
from workflows.mandate_models import MandateOptions


def mandate_options(settings: Settings) -> MandateOptions:
    return MandateOptions(
        validity=settings.mandate_validity,
        yousign_task_queue=settings.yousign_task_queue,
    )


async def start_bulk_send_workflow(client: Client, settings: Settings, batch: BulkSend) -> WorkflowHandle:
    return await client.start_workflow(
        BulkSendWorkflow.run,
        BulkSendInput(
            bulk_send_id=batch.id,
            task_queue=settings.temporal_task_queue,
            mandate_options=mandate_options(settings),
            page_size=settings.bulk_page_size,
        ),
        id=bulk_workflow_id(batch.id),
        task_queue=settings.temporal_task_queue,
        static_summary=f"Bulk send of {batch.total} dossier(s)",
        priority=firm_fairness(batch.firm_id),  # its mandates inherit it
        # Kept by every continued run: "FirmId = X" or "BulkSendId = Y" finds the batch with its mandates.
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(FIRM_ID, str(batch.firm_id)),
                SearchAttributePair(BULK_SEND_ID, str(batch.id)),
            ]
        ),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
