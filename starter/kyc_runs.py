"""Starting a firm's identity check, and telling whether its run is a given submission's.

Apart from starter/workflows.py: the reconciliation sweep's activities use it too, and that module
imports the sweep's workflow.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from config.temporal import FIRM_ID, firm_fairness
from store.records import KycSubmission
from workflows.kyc import KycWorkflow, KycWorkflowInput, kyc_workflow_id


async def start_kyc_workflow(client: Client, settings: Settings, submission: KycSubmission) -> WorkflowHandle:
    """A new submission supersedes a pending verification: the running one is terminated."""
    return await client.start_workflow(
        KycWorkflow.run,
        KycWorkflowInput(
            submission_id=submission.id,
            firm_id=submission.firm_id,
            yousign_task_queue=settings.yousign_task_queue,
        ),
        id=kyc_workflow_id(submission.firm_id),
        task_queue=settings.temporal_task_queue,
        static_summary="Identity check of the firm's legal representative",
        priority=firm_fairness(submission.firm_id),
        search_attributes=TypedSearchAttributes([SearchAttributePair(FIRM_ID, str(submission.firm_id))]),
        id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
    )


async def kyc_run_is_for(client: Client, submission: KycSubmission, *, running: bool = False) -> bool:
    """Whether the firm's verification run (`running` still) is this submission's: its start
    happened even if its answer was lost. RPCError when Temporal cannot tell (unavailable...)."""
    handle = client.get_workflow_handle(kyc_workflow_id(submission.firm_id))
    try:
        if running and (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return False
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [KycWorkflowInput])
            return started.submission_id == submission.id
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    return False
