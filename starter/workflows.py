"""Starting workflows from the gateway: deterministic ids, ID policies, the same settings everywhere."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from config.settings import Settings
from config.temporal import firm_fairness
from starter.bulk_runs import mandate_options
from starter.deployment import INSTALLATION_MEMO, claim_of_action
from store.records import Mandate
from workflows.mandate import MandateWorkflow, mandate_search_attributes, mandate_summary
from workflows.mandate_models import MandateWorkflowInput
from workflows.reconciliation import (
    RECONCILIATION_SCHEDULE_ID,
    ReconciliationInput,
    YouSignReconciliationWorkflow,
)

log = structlog.get_logger(__name__)


async def start_mandate_workflow(client: Client, settings: Settings, mandate: Mandate) -> WorkflowHandle:
    """Start the mandate's workflow; a retried start finds the running one instead of a second.

    Ids are `mandate-<dossier>-<n>`: a dossier's next mandate gets a new id, and a closed id is
    never reused, so a dossier never has two live mandate workflows.
    """
    input = MandateWorkflowInput(
        mandate_id=mandate.id,
        firm_id=mandate.firm_id,
        dossier_id=mandate.dossier_id,
        options=mandate_options(settings),
    )
    return await client.start_workflow(
        MandateWorkflow.run,
        input,
        id=mandate.workflow_id,
        task_queue=settings.temporal_task_queue,
        static_summary=mandate_summary(mandate.number),
        search_attributes=mandate_search_attributes(input, mandate.status),
        priority=firm_fairness(mandate.firm_id),
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def mandate_handle(client: Client, mandate: Mandate) -> WorkflowHandle:
    return client.get_workflow_handle_for(MandateWorkflow.run, mandate.workflow_id)


async def started_all_the_same(handle: WorkflowHandle) -> bool:
    """After a start that raised: whether only its answer was lost (the run exists)."""
    try:
        await handle.describe()
    except RPCError:
        return False
    return True


# Sealed like any payload, within Temporal's 400 bytes for a summary.
RECONCILIATION_SUMMARY = "YouSign reconciliation sweep (result: lost webhooks made up, lost starts resumed)"


def reconciliation_schedule(settings: Settings, installation: UUID) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            YouSignReconciliationWorkflow.run,
            ReconciliationInput(yousign_task_queue=settings.yousign_task_queue),
            id=RECONCILIATION_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
            # A sweep never outlasts its interval: with overlaps skipped, a stuck one would stop them all.
            execution_timeout=settings.reconciliation_every,
            # Its title in the UI's list of runs; its result is the number of mandates it told.
            static_summary=RECONCILIATION_SUMMARY,
            # Which database's deployment serves this namespace (starter/deployment.py checks it).
            memo={INSTALLATION_MEMO: str(installation)},
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.reconciliation_every)]),
        # A sweep still running when the next is due (a long YouSign outage) is not doubled.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings, installation: UUID) -> None:
    """Create the sweep's schedule, or bring an existing one to the current settings (every worker
    does this at start; the result is the same whichever comes first). Refused (Unreachable) when the
    schedule is another database's: the namespace is checked again here, for a deployment that
    started while this one was starting too."""
    schedule = reconciliation_schedule(settings, installation)
    try:
        await client.create_schedule(RECONCILIATION_SCHEDULE_ID, schedule)
        return
    except ScheduleAlreadyRunningError:
        pass

    async def settings_of_this_worker(current: ScheduleUpdateInput) -> ScheduleUpdate:
        described = current.description.schedule
        action = described.action
        if problem := await claim_of_action(client, action, installation):
            raise problem
        queue = action.task_queue if isinstance(action, ScheduleActionStartWorkflow) else None
        if queue and queue != settings.temporal_task_queue:
            # Renamed everywhere, or a worker set up otherwise (which then takes the sweep with it).
            log.warning(
                "reconciliation schedule moved to this worker's task queue: every worker of a"
                " namespace needs the same TEMPORAL_TASK_QUEUE",
                schedule_queue=queue,
                this_worker_queue=settings.temporal_task_queue,
            )
        # The settings' parts only: an operator's pause (and its note) stays as it was.
        return ScheduleUpdate(schedule=replace(schedule, state=described.state))

    await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).update(settings_of_this_worker)
