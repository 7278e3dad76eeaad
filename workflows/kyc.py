"""Verification of the firm's legal representative through YouSign's identity-document check."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.kyc import KycActivities
    from activities.models import KycOutcomeInput, KycSubmissionRef, VerificationRef, VerificationState
    from activities.yousign import YouSignActivities
    from domain.yousign_outcomes import KYC_FINAL_STATUSES
    from workflows import policies


class KycWorkflowInput(BaseModel):
    submission_id: UUID
    firm_id: UUID
    yousign_task_queue: str = "yousign"
    first_poll_after: timedelta = timedelta(minutes=1)
    max_poll_interval: timedelta = timedelta(hours=1)
    # YouSign answers in minutes; a month of silence ends the wait (and keeps the history bounded).
    give_up_after: timedelta = timedelta(days=30)


def kyc_workflow_id(firm_id: UUID) -> str:
    # One per firm: a new submission terminates (supersedes) a pending one.
    return f"kyc-{firm_id}"


@workflow.defn
class KycWorkflow:
    @workflow.init
    def __init__(self, input: KycWorkflowInput) -> None:
        self._verification_id: str | None = None
        self._result: VerificationState | None = None
        self._early: list[VerificationState] = []

    @workflow.run
    async def run(self, input: KycWorkflowInput) -> VerificationState:
        workflow.set_current_details(f"Submission {input.submission_id}: handing the document to YouSign")
        try:
            submitted = await workflow.execute_activity_method(
                YouSignActivities.submit_identity_document,
                KycSubmissionRef(submission_id=input.submission_id),
                task_queue=input.yousign_task_queue,
                **policies.YOUSIGN,
            )
        except ActivityError as error:
            return await self._fail(
                input, f"YouSign did not take the document: {policies.failure_reason(error)}"
            )
        self._verification_id = submitted.verification_id
        for early in self._early:
            self.verification_done(early)
        # The webhook normally ends the wait; polling, slower and slower, covers a lost one.
        poll_after = input.first_poll_after
        give_up_at = workflow.now() + input.give_up_after
        # Runs started before the deadline existed went on polling: they replay as they ran.
        may_give_up = workflow.patched("kyc-give-up")
        while self._result is None:
            if may_give_up and workflow.now() >= give_up_at:
                return await self._fail(input, "YouSign gave no result: submit the document again")
            self._show_wait(input, poll_after)
            try:
                await workflow.wait_condition(lambda: self._result is not None, timeout=poll_after)
            except TimeoutError:
                try:
                    state = await workflow.execute_activity_method(
                        YouSignActivities.get_identity_verification,
                        VerificationRef(verification_id=self._verification_id),
                        task_queue=input.yousign_task_queue,
                        **policies.YOUSIGN,
                    )
                except ActivityError as error:
                    if self._result is not None:  # the webhook told meanwhile
                        break
                    # Recorded, so that the firm is not left `pending`.
                    why = policies.failure_reason(error)
                    return await self._fail(
                        input, f"YouSign could not say how the check went ({why}): submit the document again"
                    )
                if state.status in KYC_FINAL_STATUSES and self._result is None:
                    self._result = state
                poll_after = min(poll_after * 2, input.max_poll_interval)
        return await self._record(input, self._result)

    def _show_wait(self, input: KycWorkflowInput, poll_after: timedelta) -> None:
        """What operators read in the Temporal UI while YouSign checks: whose check, and when the
        run asks YouSign itself if no webhook tells first."""
        ask_at = workflow.now() + poll_after
        workflow.set_current_details(
            f"Submission {input.submission_id}: YouSign checks the document (verification"
            f" {self._verification_id}); asking YouSign at {ask_at:%Y-%m-%d %H:%M} UTC unless its"
            " webhook tells first"
        )

    async def _fail(self, input: KycWorkflowInput, reason: str) -> VerificationState:
        failed = VerificationState(
            verification_id=self._verification_id or "", status="failed", status_codes=[]
        )
        return await self._record(input, failed, reason)

    async def _record(
        self, input: KycWorkflowInput, result: VerificationState, reason: str | None = None
    ) -> VerificationState:
        # Shown while the store is down, until the run completes with the outcome as its result.
        workflow.set_current_details(f"Submission {input.submission_id}: {result.status}, being recorded")
        await workflow.execute_activity_method(
            KycActivities.record_kyc_outcome,
            KycOutcomeInput(
                submission_id=input.submission_id,
                status=result.status,
                status_codes=result.status_codes,
                at=workflow.now(),
                reason=reason,
            ),
            **policies.DATABASE,
        )
        return result

    @workflow.signal
    def verification_done(self, state: VerificationState) -> None:
        if self._verification_id is None:
            self._early.append(state)
        elif state.verification_id == self._verification_id and state.status in KYC_FINAL_STATUSES:
            self._result = self._result or state

    @workflow.query
    def verification_id(self) -> str | None:
        return self._verification_id
