"""One workflow per mandate: generate, send, await the client's signature, expire, remind, delete."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TimedOut

with workflow.unsafe.imports_passed_through():
    from activities.mandates import MandateActivities
    from activities.models import (
        ArchiveInput,
        MandateRef,
        RecordStatusInput,
        ReminderInput,
        SendMandateInput,
        SignatureRequestRef,
    )
    from activities.yousign import YouSignActivities
    from config.temporal import BULK_SEND_ID, DOSSIER_ID, FIRM_ID, MANDATE_EXPIRES_AT, MANDATE_STATUS
    from domain.calendar import next_reminder_allowed_at, paris_wall_time, reminder_allowed
    from domain.status import DELETABLE_MANDATE_STATUSES, MandateStatus
    from domain.yousign_outcomes import outcome_of_event, outcome_of_status, settled_after_validity
    from workflows import policies
    from workflows.mandate_models import MandateState, MandateWorkflowInput, ReminderAccepted, YouSignEvent

# Event ids remembered to drop webhook redeliveries; YouSign's retries span days, not thousands.
SEEN_EVENTS_KEPT = 200


class Outcome(BaseModel):
    status: MandateStatus
    cause: str
    at: datetime
    reason: str | None = None


# How long a refused, expired or failed mandate's run waits for the firm to delete it.
SETTLED_RUN_KEPT_OPEN = timedelta(days=90)
# How long a draft waits to be sent; then it is deleted (it would go out dated months back).
UNSENT_DRAFT_KEPT = timedelta(days=90)


def mandate_summary(number: str) -> str:
    """The run's title in the Temporal UI: the mandate number (company SIREN, PA, date), no person."""
    return f"Mandate {number}"


def mandate_search_attributes(
    input: MandateWorkflowInput, status: MandateStatus, expires_at: datetime | None = None
) -> TypedSearchAttributes:
    """The run's search attributes: set by whoever starts it, kept current by the workflow."""
    pairs = [
        SearchAttributePair(FIRM_ID, str(input.firm_id)),
        SearchAttributePair(DOSSIER_ID, str(input.dossier_id)),
        SearchAttributePair(MANDATE_STATUS, status.value),
    ]
    if input.bulk_send_id:
        pairs.append(SearchAttributePair(BULK_SEND_ID, str(input.bulk_send_id)))
    if expires_at:
        pairs.append(SearchAttributePair(MANDATE_EXPIRES_AT, expires_at))
    return TypedSearchAttributes(pairs)


def rejected(message: str, error_type: str, *details: Any) -> ApplicationError:
    return ApplicationError(message, *details, type=error_type, non_retryable=True)


@workflow.defn
class MandateWorkflow:
    @workflow.init
    def __init__(self, input: MandateWorkflowInput) -> None:
        self._input = input
        self.state = MandateState()
        self._send_requested = input.send_on_start
        self._busy = False  # a send or delete is under way: other updates wait their turn
        self._deleting = False  # the firm's delete: a second one at once is answered with it
        self._reminding = False  # a reminder's call to YouSign: a second one at once waits for it
        self._outcome: Outcome | None = None
        self._expiring = False  # cancelling at expiry: a `canceled` event then is our own echo
        # When a webhook said the client acted after the validity: a reading of YouSign without its
        # own time of the signature or decline falls back on it.
        self._late_outcome_at: datetime | None = None
        self._sending_recorded = False
        self._records_in_flight = 0  # a delete waits for them: its record must be the last one
        if input.send_on_start:
            # A bulk send reserves its mandates as `sending` already; the send renders the document.
            self.state.status = MandateStatus.SENDING
            self._sending_recorded = True

    @workflow.run
    async def run(self, input: MandateWorkflowInput) -> MandateState:
        self._publish()
        if self.state.status == MandateStatus.DRAFT and await self._generate():
            await self._await_send()
        if self._send_requested and self.state.status in (MandateStatus.DRAFT, MandateStatus.SENDING):
            await self._send()
        if self.state.status == MandateStatus.PENDING:
            await self._await_outcome()
        if self.state.status == MandateStatus.SIGNED:
            await self._archive_and_confirm()
        elif workflow.patched("settled-runs-close"):
            # Refused, expired or failed: open for the firm to delete it and start over, for a while;
            # then the run ends (a delete is the store's alone then: the run's delete records nothing
            # else), so that open runs, and the patches they replay through, do not pile up for ever.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._deleted,
                    timeout=SETTLED_RUN_KEPT_OPEN,
                    timeout_summary="settled mandate closes",
                )
        else:
            await workflow.wait_condition(lambda: self._deleted)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    @property
    def _deleted(self) -> bool:
        return self.state.status == MandateStatus.DELETED

    def _ref(self) -> MandateRef:
        return MandateRef(mandate_id=self._input.mandate_id)

    async def _record(self, status: MandateStatus, cause: str, **fields: Any) -> None:
        """Adopt the change, then write it to the database (API and lists read it there).

        Adopting first means that once the firm sees a status, the workflow's validators agree.
        """
        self.state.status = status
        self._publish()
        change = RecordStatusInput(
            mandate_id=self._input.mandate_id, status=status, cause=cause, at=workflow.now(), **fields
        )
        self._records_in_flight += 1
        try:
            await workflow.execute_activity_method(
                MandateActivities.record_mandate_status, change, **policies.DATABASE
            )
        finally:
            self._records_in_flight -= 1

    def _publish(self) -> None:
        """What operators search and read in the Temporal UI: ids, status and expiry, never names.

        Only what differs from the run's current attributes is upserted: the starter sets the ids
        and the first status, so most changes cost no history event.
        """
        wanted = mandate_search_attributes(self._input, self.state.status, self.state.expires_at)
        current = workflow.info().typed_search_attributes
        changed = [pair for pair in wanted if current.get(pair.key) != pair.value]
        if changed:
            workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in changed])
        workflow.set_current_details(f"Mandate {self._input.mandate_id}: {self._status_line()}")

    def _status_line(self) -> str:
        """The status, with the end of the validity where it tells something (not once signed)."""
        status, expires_at = self.state.status, self.state.expires_at
        if expires_at and status == MandateStatus.PENDING:
            return f"pending, expires {expires_at:%Y-%m-%d %H:%M} UTC"
        if expires_at and status == MandateStatus.EXPIRED:
            return f"expired, its validity ended {expires_at:%Y-%m-%d %H:%M} UTC"
        return status.value

    async def _fail(self, cause: str, error: ActivityError) -> None:
        reason = policies.failure_reason(error)
        self.state.failure_reason = reason
        try:
            await self._record(MandateStatus.FAILED, cause, failure_reason=reason)
        except ActivityError:
            # Refused: the store set the mandate aside already (the gateway took its start for
            # failed, the answer lost): nothing left to fail, and the run ends as deleted.
            workflow.logger.warning("mandate set aside before it failed", extra={"cause": cause})
            self.state.status = MandateStatus.DELETED
            self._publish()

    async def _generate(self) -> bool:
        """Render the draft the firm previews; one that cannot be printed fails, saying why."""
        try:
            generated = await workflow.execute_activity_method(
                MandateActivities.generate_mandate_document, self._ref(), **policies.DATABASE
            )
        except ActivityError as error:
            if not self._deleted:  # deleted meanwhile: nothing left to fail
                await self._fail("generation failed", error)
            return False
        self.state.signature_field = generated.signature_field
        return True

    async def _await_send(self) -> None:
        """Until the firm (or a bulk send) sends the draft or deletes it; one left unsent for
        UNSENT_DRAFT_KEPT is deleted, so that its run, and the patches it replays through, end."""
        if not workflow.patched("unsent-drafts-close"):
            await workflow.wait_condition(lambda: self._send_requested or self._deleted)
            return
        try:
            await workflow.wait_condition(
                lambda: self._send_requested or self._deleted,
                timeout=UNSENT_DRAFT_KEPT,
                timeout_summary="unsent draft deleted",
            )
        except TimeoutError:
            if self._busy:  # a firm's delete under way: it settles the draft
                await workflow.wait_condition(lambda: not self._busy or self._deleted)
                return
            self._busy = True
            try:
                await self._record(
                    MandateStatus.DELETED, f"draft not sent within {UNSENT_DRAFT_KEPT.days} days"
                )
            except ActivityError:  # the store settled it otherwise meanwhile: the run ends all the same
                workflow.logger.warning("unsent draft's deletion refused by the store")
            self._busy = False

    # Sending

    async def _send(self) -> None:
        self._busy = True
        if not self._sending_recorded:
            await self._record(MandateStatus.SENDING, "send requested")
            self._sending_recorded = True
        try:
            sent = await workflow.execute_activity_method(
                YouSignActivities.send_mandate_for_signature,
                SendMandateInput(
                    mandate_id=self._input.mandate_id,
                    validity=self._input.options.validity,
                    signature_field=self.state.signature_field,
                ),
                task_queue=self._input.options.yousign_task_queue,
                **(policies.YOUSIGN_BULK if self._input.bulk_send_id else policies.YOUSIGN),
            )
        except ActivityError as error:
            await self._fail("sending failed", error)
            self._busy = False  # the firm may delete it meanwhile: the withdrawal is YouSign's alone
            if workflow.patched("failed-send-withdrawn"):
                await self._withdraw_failed_send(error)
            return
        # The activity recorded `pending` with the request and its times: adopt them. (Until this
        # task runs, a reminder is refused as for a mandate still sending: a moment at most.)
        self.state.signature_request_id = sent.signature_request_id
        self.state.signer_id = sent.signer_id
        self.state.sent_at = sent.sent_at
        self.state.expires_at = sent.expires_at
        self.state.status = MandateStatus.PENDING
        self._publish()
        self._busy = False
        for event in self.state.early_events:
            self._apply_event(event)
        self.state.early_events.clear()

    async def _withdraw_failed_send(self, error: ActivityError) -> None:
        """A request activated before the send failed would still let the client sign a mandate the
        firm reads as failed (and replaces): it is cancelled, for as long as a send is retried. Data
        refused before YouSign was called (names, a stale draft), or a send that never got a request,
        costs no turn on the rate-capped YouSign queue."""
        if isinstance(error.cause, ApplicationError) and error.cause.type == "IncompleteData":
            return
        recorded = await workflow.execute_activity_method(
            MandateActivities.recorded_signature_request, self._ref(), **policies.DATABASE
        )
        if recorded is None:
            return
        mandate_id = str(self._input.mandate_id)
        try:
            left = await workflow.execute_activity_method(
                YouSignActivities.withdraw_signature_request,
                recorded,
                task_queue=self._input.options.yousign_task_queue,
                **policies.YOUSIGN,
            )
        except ActivityError:
            workflow.logger.error("failed mandate's request not cancelled", extra={"mandate_id": mandate_id})
            return
        if left.status == "done":
            # Signed at YouSign although the send failed: an operator settles it with the firm.
            workflow.logger.error("failed mandate signed at YouSign", extra={"mandate_id": mandate_id})

    # Waiting for the client

    async def _await_outcome(self) -> None:
        """Wait for YouSign's word (a webhook, or the reconciliation sweep standing in for a lost
        one) until the mandate's validity ends."""
        remaining = self.state.expires_at - workflow.now()
        if remaining.total_seconds() > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._outcome is not None, timeout=remaining, timeout_summary="mandate expiry"
                )
        if self._outcome is None:
            await self._expire()
        elif self._outcome.status == MandateStatus.REFUSED and self._outcome.reason is None:
            await self._look_up_decline_reason(self._outcome)
        await self._settle(self._outcome)

    async def _expire(self) -> None:
        """One activity: YouSign's last word first (a signature in the last minute wins over the
        timer), else the request is cancelled and the mandate expires."""
        self._expiring = True
        try:
            state = await workflow.execute_activity_method(
                YouSignActivities.cancel_signature_request,
                SignatureRequestRef(signature_request_id=self.state.signature_request_id),
                task_queue=self._input.options.yousign_task_queue,
                **policies.YOUSIGN,
            )
        except ActivityError:
            # YouSign out of reach for days: a webhook that came meanwhile (a signature in the last
            # minute) still counts; else the validity is over all the same, since its end (not now,
            # days later), and YouSign closes the request itself the next day (its expiration date
            # is set one day after ours).
            if self._outcome is None:
                self._outcome = Outcome(
                    status=MandateStatus.EXPIRED,
                    cause="validity elapsed; YouSign unreachable",
                    at=self.state.expires_at,
                )
            return
        status = outcome_of_status(state.status)
        if state.status == "canceled" or status in (None, MandateStatus.EXPIRED):
            self._outcome = Outcome(status=MandateStatus.EXPIRED, cause="validity elapsed", at=workflow.now())
            return
        at = state.signed_at or state.declined_at or self._late_outcome_at
        if self._too_late(status, at):
            what = "signed" if status == MandateStatus.SIGNED else "declined"
            self._outcome = Outcome(
                status=MandateStatus.EXPIRED,
                cause=f"validity elapsed; {what} at YouSign after it",
                at=self.state.expires_at,
                reason=f"the client {what} at YouSign on {paris_wall_time(at)}, after the mandate's"
                f" validity ended on {paris_wall_time(self.state.expires_at)}: generate a new one",
            )
            return
        reason = state.decline_reason if status == MandateStatus.REFUSED else f"YouSign status {state.status}"
        self._outcome = Outcome(
            status=status,
            cause="checked at expiry",
            at=at or workflow.now(),
            reason=reason,
        )

    def _too_late(self, status: MandateStatus | None, at: datetime | None) -> bool:
        """A signature or decline after the validity ended: the expiry decides (runs from before
        this rule took YouSign's word whatever its time)."""
        return settled_after_validity(status, at, self.state.expires_at) and workflow.patched(
            "late-outcome-expires"
        )

    async def _look_up_decline_reason(self, outcome: Outcome) -> None:
        """A decline found by the reconciliation sweep comes without its reason (YouSign's lists
        omit it): read the request (one call, retried for up to an hour); failing that, the refusal
        is recorded without its reason."""
        if not workflow.patched("decline-reason-lookup"):
            return
        try:
            state = await workflow.execute_activity_method(
                YouSignActivities.get_signature_request_state,
                SignatureRequestRef(signature_request_id=self.state.signature_request_id),
                task_queue=self._input.options.yousign_task_queue,
                **policies.YOUSIGN_BEST_EFFORT,
            )
            outcome.reason = state.decline_reason
            outcome.at = state.declined_at or outcome.at  # when the client declined, not the sweep
        except ActivityError:
            workflow.logger.warning(
                "decline reason unavailable", extra={"mandate_id": str(self._input.mandate_id)}
            )

    async def _settle(self, outcome: Outcome) -> None:
        fields: dict[str, Any] = {"detail": {"reason": outcome.reason} if outcome.reason else {}}
        if outcome.status == MandateStatus.SIGNED:
            fields["signed_at"] = outcome.at
        elif outcome.status == MandateStatus.REFUSED:
            fields["refused_at"] = outcome.at
        elif outcome.status == MandateStatus.EXPIRED:
            fields["expired_at"] = outcome.at
        else:
            fields["failure_reason"] = outcome.reason
            self.state.failure_reason = outcome.reason
        await self._record(outcome.status, outcome.cause, **fields)

    async def _archive_and_confirm(self) -> None:
        try:
            await workflow.execute_activity_method(
                YouSignActivities.archive_signed_mandate,
                ArchiveInput(
                    mandate_id=self._input.mandate_id, signature_request_id=self.state.signature_request_id
                ),
                task_queue=self._input.options.yousign_task_queue,
                **policies.YOUSIGN,
            )
        except ActivityError:
            # Signed and recorded: the copy stays at YouSign, and the client is told all the same.
            workflow.logger.error(
                "signed mandate not archived", extra={"mandate_id": str(self._input.mandate_id)}
            )
        try:
            await workflow.execute_activity_method(
                MandateActivities.send_signed_confirmation, self._ref(), **policies.EMAIL
            )
        except ActivityError:
            # The mandate is signed and archived whatever happens to the courtesy email.
            workflow.logger.warning("confirmation email could not be sent")

    # YouSign's webhooks arrive as a signal

    @workflow.signal
    def yousign_event(self, event: YouSignEvent) -> None:
        if event.event_id in self.state.seen_event_ids:
            return
        self.state.seen_event_ids = [*self.state.seen_event_ids[-SEEN_EVENTS_KEPT + 1 :], event.event_id]
        if self.state.signature_request_id is None:
            # Webhooks can beat the send activity's result: keep them until the request id is known.
            self.state.early_events.append(event)
            return
        self._apply_event(event)

    def _apply_event(self, event: YouSignEvent) -> None:
        if event.signature_request_id != self.state.signature_request_id:
            return
        if self.state.status != MandateStatus.PENDING or self._outcome is not None:
            return  # a final state never moves back, whatever order events come in
        status = outcome_of_event(event.event_name)
        if event.event_name == "signer.error" and not workflow.patched("signer-error-fails"):
            status = None  # runs from before it counted: it was ignored there
        if self._expiring and status in (MandateStatus.FAILED, MandateStatus.EXPIRED):
            return  # our own cancel's echo: the expiry's reading of YouSign decides
        if self._too_late(status, event.occurred_at):
            self._late_outcome_at = event.occurred_at
            return  # the expiry, due or under way, records it as expired
        if status is not None:
            cancelled = f"YouSign cancelled the request ({event.event_name}): delete it, generate a new one"
            self._outcome = Outcome(
                status=status,
                cause=f"{event.source} {event.event_name}",
                at=event.occurred_at or workflow.now(),
                reason=cancelled if status == MandateStatus.FAILED else event.decline_reason,
            )

    @workflow.signal
    def send_in_bulk(self, bulk_send_id: UUID) -> None:
        """A bulk send adopted this draft: send it as the batch's (its priority, its search attribute).
        Sent or deleted meanwhile, it is left as it is: that record settles the batch's item."""
        if self.state.status != MandateStatus.DRAFT or self._send_requested or self._busy:
            return
        self._input = self._input.model_copy(update={"bulk_send_id": bulk_send_id})
        self._send_requested = True

    @workflow.signal
    async def replaced(self) -> None:
        """A bulk send replaced this mandate, failed before YouSign had it, and deleted it in the
        store: recorded here too (a no-op there), the run ends as after the firm's delete."""
        # The store may have its failure before this run has the send's (or the record's) result.
        await workflow.wait_condition(lambda: not self._busy and self._records_in_flight == 0)
        if self.state.status != MandateStatus.FAILED:
            return
        self._busy = True
        await self._record(MandateStatus.DELETED, "replaced by a bulk send's mandate")
        self._busy = False

    # The firm's actions: updates, so the caller learns at once whether they were accepted

    @workflow.update
    async def send(self) -> MandateState:
        self._send_requested = True
        # Answer once `sending` is recorded, so the caller reads it back from the database (or once
        # the draft's generation has failed, asked for while it ran).
        await workflow.wait_condition(
            lambda: self._sending_recorded or self.state.status == MandateStatus.FAILED
        )
        return self.state

    @send.validator
    def _validate_send(self) -> None:
        if self.state.status == MandateStatus.DRAFT and (self._send_requested or self._busy):
            raise rejected("the mandate is already being sent (or deleted)", "InvalidState")
        if self.state.status != MandateStatus.DRAFT:
            raise rejected(f"the mandate is {self.state.status}; only a draft can be sent", "InvalidState")

    @workflow.update
    async def remind(self) -> ReminderAccepted:
        self._reminding = True
        try:
            return await self._remind()
        finally:
            self._reminding = False

    async def _remind(self) -> ReminderAccepted:
        sent_at = workflow.now()
        self.state.reminders.append(sent_at)
        reminder = ReminderInput(
            mandate_id=self._input.mandate_id,
            signature_request_id=self.state.signature_request_id,
            signer_id=self.state.signer_id,
            sent_at=sent_at,
        )
        try:
            await workflow.execute_activity_method(
                YouSignActivities.send_signature_reminder,
                reminder,
                task_queue=self._input.options.yousign_task_queue,
                **policies.YOUSIGN_INTERACTIVE,
            )
        except ActivityError as error:
            outcome = error.cause.type if isinstance(error.cause, ApplicationError) else None
            reason = policies.failure_reason(error)
            # Timed out: an attempt may have reached YouSign, which may have e-mailed the client.
            if isinstance(error.cause, TimedOut) and workflow.patched("reminder-timeout-kept"):
                outcome = policies.REMINDER_UNCONFIRMED
                reason = "YouSign did not answer in time; the reminder may have reached the client"
                # Spent for the day in the store too, where the firm reads it (GET .../mandate): best
                # effort, the firm is waiting (the run keeps the day whatever happens).
                with contextlib.suppress(ActivityError):
                    await workflow.execute_activity_method(
                        MandateActivities.record_unconfirmed_reminder,
                        reminder,
                        **{**policies.DATABASE, "schedule_to_close_timeout": timedelta(minutes=1)},
                    )
            if outcome == policies.REMINDER_NOT_RECORDED:  # e-mailed: the firm is told so
                workflow.logger.error(
                    "reminder sent but not recorded", extra={"sent_at": sent_at.isoformat()}
                )
            elif outcome == policies.REMINDER_UNCONFIRMED:  # kept: the client may have been e-mailed
                allowed_at = next_reminder_allowed_at(sent_at)
                raise ApplicationError(
                    f"{reason}; the next reminder is allowed from {paris_wall_time(allowed_at)}",
                    allowed_at.isoformat(),
                    type=policies.REMINDER_UNCONFIRMED,
                ) from None
            else:
                self.state.reminders.remove(sent_at)
                # YouSign's refusal (a 4xx) holds until something changes there; else retry later.
                refused = outcome == policies.YOUSIGN_FINAL_ERROR
                raise ApplicationError(
                    f"the reminder could not be sent: {error.cause}",
                    type="ReminderRefused" if refused else "ReminderFailed",
                ) from None
        return ReminderAccepted(sent_at=sent_at, next_reminder_allowed_at=next_reminder_allowed_at(sent_at))

    @remind.validator
    def _validate_remind(self) -> None:
        if self.state.status != MandateStatus.PENDING:
            raise rejected(
                f"the mandate is {self.state.status}; only a pending one can be reminded", "InvalidState"
            )
        if self._outcome is not None:  # YouSign's word came a moment ago: the store has it next
            raise rejected(
                f"the mandate is {self._outcome.status} (being recorded); only a pending one can be reminded",
                "InvalidState",
            )
        if self._expiring or workflow.now() >= self.state.expires_at:
            # Its cancellation may still wait on the YouSign queue: the client is not urged to sign.
            raise rejected("the mandate's validity has ended; it is being expired", "InvalidState")
        if self._reminding:  # not a sent one yet: YouSign may still refuse it
            raise rejected("a reminder is being sent: try again in a moment", "InvalidState")
        last = self.state.reminders[-1] if self.state.reminders else None
        if not reminder_allowed(workflow.now(), last):
            allowed_at = next_reminder_allowed_at(last)
            raise rejected(
                f"a reminder was already sent today (one per day, Paris time); the next one is allowed"
                f" from {paris_wall_time(allowed_at)}",
                "ReminderRateLimited",
                allowed_at.isoformat(),
            )

    @workflow.update
    async def delete(self) -> MandateState:
        if self._deleting:  # asked twice at once (two requests changing the draft): one deletion
            await workflow.wait_condition(lambda: not self._deleting)
            return self.state
        self._busy = self._deleting = True
        try:
            # A refusal, expiry or failure adopted a moment ago may still be on its way to the
            # database: the deletion is written after it (the store never moves a final state back).
            if workflow.patched("delete-after-records"):
                await workflow.wait_condition(lambda: self._records_in_flight == 0)
            await self._record(MandateStatus.DELETED, "deleted by the firm")
        finally:
            self._busy = self._deleting = False
        return self.state

    @delete.validator
    def _validate_delete(self) -> None:
        if self._deleting:
            return
        if self._busy or (self.state.status == MandateStatus.DRAFT and self._send_requested):
            raise rejected("the mandate is being sent or deleted", "InvalidState")
        if self.state.status not in DELETABLE_MANDATE_STATUSES:
            raise rejected(
                f"the mandate is {self.state.status}; only a draft, expired, refused or failed one"
                " can be deleted",
                "InvalidState",
            )

    @workflow.query
    def current_state(self) -> MandateState:
        return self.state
