"""The firm's mandate actions, as the gateway performs them: database checks, then the workflow's answer."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.calendar import paris_day
from domain.errors import Conflict, NotFound, TooSoon, Unavailable
from domain.firm_verification import why_not_verified
from domain.status import DELETABLE_MANDATE_STATUSES, MandateStatus
from starter.run_status import described
from starter.workflows import mandate_handle, start_mandate_workflow, started_all_the_same
from store import bulk, dossiers, kyc, mandates
from store.mandate_content import ensure_still_current
from store.records import Dossier, Mandate
from workflows.bulk import bulk_workflow_id
from workflows.mandate import MandateWorkflow
from workflows.mandate_models import ReminderAccepted
from workflows.policies import REMINDER_UNCONFIRMED


async def current_mandate(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> Mandate:
    return (await _dossier_and_mandate(db, firm_id, dossier_id))[1]


async def _dossier_and_mandate(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> tuple[Dossier, Mandate]:
    dossier, mandate = await dossiers.get_dossier(db, firm_id, dossier_id)
    if mandate is None:
        raise NotFound("the dossier has no mandate")
    return dossier, mandate


async def require_verified_firm(db: asyncpg.Pool, firm_id: UUID) -> None:
    if reason := why_not_verified(await kyc.verification_state(db, firm_id)):
        raise Conflict(reason)


async def generate(
    db: asyncpg.Pool,
    client: Client,
    settings: Settings,
    firm_id: UUID,
    dossier_id: UUID,
    *,
    now: datetime,
) -> Mandate:
    """Reserve the mandate row, then start its workflow; undo the reservation if Temporal is down
    (unless the start did happen, its answer lost: then the mandate is there)."""
    _, current = await dossiers.get_dossier(db, firm_id, dossier_id)  # another firm's: 404 first
    await require_verified_firm(db, firm_id)
    never_sent = current is not None and current.signature_request_id is None
    if never_sent and current.status == MandateStatus.FAILED:
        # Failed before YouSign had it (its firm's platform changed, say): nothing to withdraw, so
        # asking for a new mandate replaces it, as deleting it first would.
        await _delete(db, client, current, now)
    mandate = await mandates.reserve_mandate(db, firm_id, dossier_id, issued_on=paris_day(now))
    try:
        await start_mandate_workflow(client, settings, mandate)
    except RPCError as error:
        if await started_all_the_same(mandate_handle(client, mandate)):
            return mandate
        await mandates.discard_reservation(db, mandate.id, now)
        raise Unavailable(f"the workflow service did not accept the mandate: {error.message}") from error
    return mandate


def _refusal(error: WorkflowUpdateFailedError) -> ApplicationError | None:
    return error.cause if isinstance(error.cause, ApplicationError) else None


class RunGone(Conflict):
    """The mandate's workflow run is over (signed, deleted) or was never started."""


async def _run_is_over(handle: WorkflowHandle) -> bool:
    """Whether the run ended or never was (Temporal forgets closed runs); False without an answer."""
    try:
        run = await described(handle)
    except RPCError:
        return False
    return run is None or run.status != WorkflowExecutionStatus.RUNNING


async def run_is_gone(client: Client, mandate: Mandate, now: datetime) -> bool:
    """Whether a mandate still without its PDF (a draft, or a bulk send's before its send) has no
    run left to make it: never started, or ended by an operator. Unknown while it may be starting,
    or when Temporal does not answer."""
    if now - mandate.created_at < mandates.STARTING_GRACE:
        return False
    return await _run_is_over(mandate_handle(client, mandate))


# An update is taken by the run's worker: with none running (or all stuck), Temporal holds it for as
# long as the caller waits. The firm is answered within these, told that it may still be done later.
ACCEPT_WITHIN = timedelta(seconds=20)
# Once taken: a reminder may wait YouSign's 2 minutes (policies.YOUSIGN_INTERACTIVE), then 1 to record it.
ANSWER_WITHIN = timedelta(minutes=4)


async def _within(waiting, limit: timedelta):
    """`waiting`, or TimeoutError after `limit` or when one of Temporal's calls on the way timed out
    (the SDK turns both, and the request's own cancellation, into one error of its own)."""
    async with asyncio.timeout(limit.total_seconds()) as deadline:
        try:
            return await waiting
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            if not deadline.expired() and asyncio.current_task().cancelling():
                raise asyncio.CancelledError from None  # the request itself is being cancelled
            raise TimeoutError from None


def _unanswered(taken: bool) -> str:
    later = "it may still be carried out later: read the mandate before trying again"
    if taken:
        return f"the mandate's workflow took the request, but its answer did not come back; {later}"
    return f"no worker took the request within {ACCEPT_WITHIN.seconds} s (are the workers running?); {later}"


async def _update(client: Client, mandate: Mandate, update, result_type=None):
    """Run a workflow update and turn its refusals into the gateway's errors."""
    taken = None
    try:
        taken = await _within(
            mandate_handle(client, mandate).start_update(
                update, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=result_type
            ),
            ACCEPT_WITHIN,
        )
        return await _within(taken.result(), ANSWER_WITHIN)
    except TimeoutError as error:
        raise Unavailable(_unanswered(taken is not None)) from error
    except WorkflowUpdateFailedError as error:
        refusal = _refusal(error)
        if refusal is not None and refusal.type == "ReminderRateLimited":
            raise TooSoon(refusal.message, datetime.fromisoformat(refusal.details[0])) from error
        if refusal is not None and refusal.type == REMINDER_UNCONFIRMED:
            # The day is spent all the same: retrying before the next one could only get a 429.
            raise Unavailable(refusal.message, datetime.fromisoformat(refusal.details[0])) from error
        if refusal is not None and refusal.type in ("InvalidState", "ReminderRefused"):
            raise Conflict(refusal.message) from error
        raise Unavailable(refusal.message if refusal else str(error)) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # the run is over (signed, settled long ago...)
            reserved = mandate.status == MandateStatus.SENDING and not mandate.signature_request_id
            if reserved and mandate.bulk_send_id:
                # Reserved by its batch's page, whose next step starts the runs, unless the batch ended.
                if await _run_is_over(client.get_workflow_handle(bulk_workflow_id(mandate.bulk_send_id))):
                    raise RunGone(
                        "the mandate's bulk send ended before sending it: delete it and generate a new one"
                    ) from error
                raise RunGone(
                    "the mandate is waiting for its bulk send to start it: try again in a moment"
                ) from error
            if mandate.status in DELETABLE_MANDATE_STATUSES:
                raise RunGone(
                    f"the mandate is {mandate.status} but its workflow is not running: delete it and"
                    " generate a new one"
                ) from error
            raise RunGone(
                f"the mandate is {mandate.status} and its workflow is over: it can no longer be sent,"
                " reminded or deleted (its PDF stays at GET .../mandate/document)"
            ) from error
        raise Unavailable(f"the workflow service did not answer: {error.message}") from error


async def _delete(db: asyncpg.Pool, client: Client, mandate: Mandate, now: datetime) -> None:
    """Delete through the mandate's workflow. Without a run, what the run's delete would do is done
    in the store (it only records the deletion), where that is safe:
    - a refused, expired or failed mandate whose run has closed (kept open 90 days, or ended by an
      operator);
    - a draft whose run was never started (the gateway stopped between reserving it and starting
      its workflow) or was ended, once it is clearly not just being started;
    - a bulk send's mandate whose batch run ended (an operator terminated it) between reserving its
      page and starting its mandates: no one will send it."""
    try:
        await _update(client, mandate, MandateWorkflow.delete)
    except RunGone:
        if mandate.status in (MandateStatus.REFUSED, MandateStatus.EXPIRED, MandateStatus.FAILED):
            await mandates.transition(
                db, mandate.id, MandateStatus.DELETED, cause="deleted by the firm", at=now
            )
            return
        if (
            mandate.signature_request_id is None
            and mandate.status == MandateStatus.SENDING
            and mandate.bulk_send_id
        ):
            batch = client.get_workflow_handle(bulk_workflow_id(mandate.bulk_send_id))
            if not await _run_is_over(batch):
                raise
            await mandates.discard_reservation(db, mandate.id, now, cause=bulk.RUN_ENDED_UNSENT)
            return
        if mandate.status != MandateStatus.DRAFT:
            raise
        if now - mandate.created_at < mandates.STARTING_GRACE:
            raise Conflict("the mandate is being started: try again in a minute") from None
        await mandates.discard_reservation(db, mandate.id, now)


async def discard_draft_outdated_by(
    db: asyncpg.Pool,
    client: Client,
    firm_id: UUID,
    dossier_id: UUID,
    changes: dict[str, Any],
    *,
    now: datetime,
) -> None:
    """A draft's PDF shows the dossier as it was generated: a change to what it prints discards the
    draft (the firm generates a new one), so an outdated mandate is never sent."""
    dossier, mandate = await dossiers.get_dossier(db, firm_id, dossier_id)
    if (
        mandate is not None
        and mandate.status == MandateStatus.DRAFT
        and dossiers.changes_printed_data(dossier, changes)
    ):
        await _delete(db, client, mandate, now)


async def send(db: asyncpg.Pool, client: Client, firm_id: UUID, dossier_id: UUID) -> Mandate:
    dossier, mandate = await _dossier_and_mandate(db, firm_id, dossier_id)
    if mandate.status == MandateStatus.DRAFT:
        # Refused now (a 409), not accepted and failed a moment later by the send's own check.
        await ensure_still_current(db, mandate, dossier)
    try:
        await _update(client, mandate, MandateWorkflow.send)
    except Unavailable:
        # Temporal's answer may be what was lost, not the send: the store says what happened.
        stored = await mandates.get_mandate(db, mandate.id)
        if mandate.status == MandateStatus.DRAFT and stored.status in (
            MandateStatus.SENDING,
            MandateStatus.PENDING,
        ):
            return stored
        raise
    except Conflict as refusal:
        # A draft that failed (its firm's platform or representative changed since): say why.
        failed = await mandates.get_mandate(db, mandate.id)
        if failed.status == MandateStatus.FAILED and failed.failure_reason:
            raise Conflict(f"{refusal}: {failed.failure_reason}") from refusal
        raise
    return await mandates.get_mandate(db, mandate.id)


async def remind(db: asyncpg.Pool, client: Client, firm_id: UUID, dossier_id: UUID) -> ReminderAccepted:
    mandate = await current_mandate(db, firm_id, dossier_id)
    return await _update(client, mandate, MandateWorkflow.remind, ReminderAccepted)


async def delete(db: asyncpg.Pool, client: Client, firm_id: UUID, dossier_id: UUID, *, now: datetime) -> None:
    mandate = await current_mandate(db, firm_id, dossier_id)
    try:
        await _delete(db, client, mandate, now)
    except Unavailable:
        # Temporal's answer may be what was lost, not the delete: the store says what happened.
        if (await mandates.get_mandate(db, mandate.id)).status != MandateStatus.DELETED:
            raise
