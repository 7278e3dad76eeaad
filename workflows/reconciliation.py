"""The reconciliation sweep: YouSign's recently settled requests, checked against pending mandates;
and the firms' identity checks and the bulk sends whose start was lost, started.

Webhooks can be lost; asking YouSign about each pending mandate would cost a call per mandate per
round (10,000 pending mandates every 6 h is more than YouSign's hourly budget, and YouSign forbids
polling). One listing per outcome instead costs a call per 100 settled requests, whatever the number
of pending mandates. A Temporal Schedule runs it every RECONCILIATION_INTERVAL.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.models import SettledPageInput
    from activities.reconciliation import ReconciliationActivities
    from activities.yousign import YouSignActivities
    from domain.calendar import paris_day
    from workflows import policies

RECONCILIATION_SCHEDULE_ID = "yousign-reconciliation"

# Up to 400 signals an attempt (4 pages of 100): a heartbeat each, so a stuck attempt is seen in a
# minute, and a bounded number of tries, so one bad page cannot hold every later sweep back.
NOTIFY = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
}


class ReconciliationResult(BaseModel):
    """What a round did, as operators read it in the Temporal UI (each run's result)."""

    webhooks_made_up: int = 0  # mandates told of a signature or refusal whose webhook was lost
    identity_checks_started: int = 0  # whose start was lost
    bulk_sends_started: int = 0  # whose start was lost


class ReconciliationInput(BaseModel):
    yousign_task_queue: str = "yousign"
    # Days looked back: more than one round's interval, whatever time zone YouSign's days are in.
    lookback_days: int = 2


@workflow.defn
class YouSignReconciliationWorkflow:
    @workflow.run
    async def run(self, input: ReconciliationInput) -> ReconciliationResult:
        result = ReconciliationResult()
        if workflow.patched("resume-stalled-identity-checks"):
            # First: it needs no YouSign, whose listing below may fail for an hour at a time.
            try:
                result.identity_checks_started = await workflow.execute_activity_method(
                    ReconciliationActivities.resume_stalled_identity_checks, **NOTIFY
                )
            except ActivityError:  # the next round tries again
                workflow.logger.warning("stalled identity checks not resumed")
        if workflow.patched("resume-unstarted-bulk-sends"):
            try:
                result.bulk_sends_started = await workflow.execute_activity_method(
                    ReconciliationActivities.resume_unstarted_bulk_sends, **NOTIFY
                )
            except ActivityError:
                workflow.logger.warning("unstarted bulk sends not resumed")
        since = paris_day(workflow.now()) - timedelta(days=input.lookback_days)
        for status in ("done", "declined"):
            cursor: str | None = None
            while True:
                page = await workflow.execute_activity_method(
                    YouSignActivities.list_settled_signature_requests,
                    SettledPageInput(status=status, since=since, cursor=cursor),
                    task_queue=input.yousign_task_queue,
                    **policies.YOUSIGN_BEST_EFFORT,
                )
                if page.requests:
                    result.webhooks_made_up += await workflow.execute_activity_method(
                        ReconciliationActivities.notify_settled_mandates, page, **NOTIFY
                    )
                cursor = page.next_cursor
                if cursor is None:
                    break
        return result
