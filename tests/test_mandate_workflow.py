"""The mandate workflow on the time-skipping test server, with the real activities, store and emulator."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs
from uuid import uuid4

import pytest
from asyncpg.exceptions import CannotConnectNowError
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from activities.mandates import MandateActivities
from activities.models import (
    BulkPage,
    BulkPageInput,
    MandateToStart,
    RecordStatusInput,
    SendMandateInput,
    SendMandateOutput,
)
from activities.yousign import YouSignActivities
from clients.yousign_models import NewSignatureRequest
from config.temporal import MANDATE_STATUS
from domain.calendar import mandate_expires_at, next_reminder_allowed_at, paris_day
from domain.status import MandateStatus
from starter.bulk_runs import start_bulk_send_workflow
from starter.workflows import start_mandate_workflow
from store import bulk, mandates
from tests.helpers import establishment_siret, eventually, truthy_or_none, verified_firm_with_dossier
from tests.workflow_support import (
    current_details,
    deliver,
    events_for,
    generate_mandate,
    replay_and_keep,
    running_workers,
    send_and_wait_pending,
)
from workflows import policies
from workflows.bulk import bulk_workflow_id
from workflows.mandate import MandateWorkflow
from workflows.reconciliation import ReconciliationInput, YouSignReconciliationWorkflow


async def test_expiry_is_one_calendar_month_after_sending(ts_env, settings, db, yousign, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    assert state.expires_at == mandate_expires_at(state.sent_at, "P1M")
    row = await mandates.get_mandate(db, run.mandate.id)
    assert (row.status, row.expires_at) == ("pending", state.expires_at)
    ends = f"{state.expires_at:%Y-%m-%d %H:%M} UTC"
    assert await current_details(run.handle) == f"Mandate {run.mandate.id}: pending, expires {ends}"

    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now - timedelta(seconds=1))
    assert (await run.state()).status == "pending"  # not a second earlier
    await ts_env.sleep(timedelta(seconds=2))
    await run.wait_for("expired")
    row = await mandates.get_mandate(db, run.mandate.id)
    assert row.status == "expired" and row.expired_at >= state.expires_at
    assert (await yousign.get_signature_request(state.signature_request_id)).status == "canceled"
    # What operators read in the Temporal UI: not a date still to come.
    assert (
        await current_details(run.handle) == f"Mandate {run.mandate.id}: expired, its validity ended {ends}"
    )
    await run.handle.execute_update(MandateWorkflow.delete)
    await replay_and_keep(run.handle, "mandate_expired_deleted")


async def test_a_reminder_is_emailed_once_whatever_its_record_goes_through(
    ts_env, settings, db, emulator, yousign, dossier, workers, monkeypatch
):
    import dataclasses

    from temporalio.testing import ActivityEnvironment

    from activities.models import ReminderInput
    from store import mandates as store_mandates

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    reminder = ReminderInput(
        mandate_id=run.mandate.id,
        signature_request_id=state.signature_request_id,
        signer_id=state.signer_id,
        sent_at=await ts_env.get_current_time(),
    )
    record, failures = store_mandates.record_reminder, []

    async def flaky_record(*args):  # the database drops the first two writes
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionResetError("connection lost")
        await record(*args)

    monkeypatch.setattr(store_mandates, "record_reminder", flaky_record)
    monkeypatch.setattr("activities.yousign.RECORD_RETRY_PAUSES", (0.0, 0.0, 0.0))
    activities = YouSignActivities(db, yousign)
    env = ActivityEnvironment()
    await env.run(activities.send_signature_reminder, reminder)
    signer = emulator.state.signers[state.signer_id]
    assert (signer.reminders_sent, await store_mandates.reminders(db, run.mandate.id)) == (
        1,
        [reminder.sent_at],
    )
    # Its answer lost, the activity runs again: recorded already, nothing is e-mailed twice.
    env.info = dataclasses.replace(env.info, attempt=2)
    await env.run(activities.send_signature_reminder, reminder)
    assert signer.reminders_sent == 1


async def test_a_reminder_whose_answer_is_lost_is_not_emailed_again_that_day(
    ts_env, settings, db, emulator, dossier
):
    from clients.yousign import YouSignClient

    # YouSign e-mails the client, but its answer comes after the worker's client has given up.
    async with (
        YouSignClient(emulator.api_base_url, "test-key", timeout=0.5) as impatient,
        running_workers(ts_env.client, settings, db, impatient),
    ):
        run = await generate_mandate(ts_env.client, settings, db, dossier)
        await emailed_once_then_the_day_is_spent(run, emulator, answer_after_seconds=1)


async def emailed_once_then_the_day_is_spent(run, emulator, *, answer_after_seconds: float) -> None:
    """A reminder YouSign e-mails but answers too late: unconfirmed, never e-mailed again that day."""
    state = await send_and_wait_pending(run)
    emulator.state.add_fault(
        method="POST",
        path_regex=r"/send_reminder$",
        kind="timeout_after_processing",
        delay_seconds=answer_after_seconds,
    )
    with pytest.raises(WorkflowUpdateFailedError) as unconfirmed:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert "may have reached the client" in unconfirmed.value.cause.message
    assert unconfirmed.value.cause.type == "ReminderUnconfirmed"  # the gateway's 503 until then
    assert unconfirmed.value.cause.message.endswith(" 00:00 Paris time")  # as the firm reads it
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.type == "ReminderRateLimited"  # the day is spent, not retried
    assert unconfirmed.value.cause.details == refused.value.cause.details  # the same next reminder
    assert emulator.state.signers[state.signer_id].reminders_sent == 1
    assert len(await mandates.reminders(run.db, run.mandate.id)) == 1  # as the firm reads it


async def test_a_reminder_yousign_refused_with_a_429_is_sent_on_the_retry(
    ts_env, settings, db, emulator, dossier, workers
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    # Certainly not acted on (a 429 comes before any work): the retry calls again, and it goes.
    emulator.state.add_fault(
        method="POST", path_regex=r"/send_reminder$", kind="429", times=1, delay_seconds=0.1
    )
    await run.handle.execute_update(MandateWorkflow.remind)
    assert emulator.state.signers[state.signer_id].reminders_sent == 1
    assert len(await mandates.reminders(db, run.mandate.id)) == 1


@pytest.mark.parametrize(
    "overall",
    [
        timedelta(minutes=2),  # retried: the next attempt sees the call was made (its heartbeat)
        timedelta(seconds=1.5),  # no time left to retry: the workflow sees the timeout
    ],
)
async def test_a_reminder_attempt_cut_off_by_its_timeout_is_not_emailed_again(
    ts_env, settings, db, emulator, dossier, workers, monkeypatch, overall
):
    # The worker's own YouSign timeout is longer than the attempt's: Temporal cuts the attempt off
    # while YouSign, which has e-mailed the client, has not answered yet.
    monkeypatch.setitem(policies.YOUSIGN_INTERACTIVE, "start_to_close_timeout", timedelta(seconds=1))
    monkeypatch.setitem(policies.YOUSIGN_INTERACTIVE, "schedule_to_close_timeout", overall)
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await emailed_once_then_the_day_is_spent(run, emulator, answer_after_seconds=3)
    await replay_and_keep(run.handle, f"mandate_reminder_cut_off_{overall.seconds}s")


@pytest.mark.parametrize(
    "outage",
    [ConnectionResetError("connection lost"), CannotConnectNowError("the database system is starting up")],
)
async def test_a_reminder_emailed_but_not_recorded_is_accepted_once(
    ts_env, settings, db, emulator, dossier, workers, monkeypatch, outage
):
    from store import mandates as store_mandates

    async def database_down(*args):
        raise outage

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    monkeypatch.setattr(store_mandates, "record_reminder", database_down)
    monkeypatch.setattr("activities.yousign.RECORD_RETRY_PAUSES", (0.0,))
    accepted = await run.handle.execute_update(MandateWorkflow.remind)  # the client was e-mailed
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.details == (accepted.next_reminder_allowed_at.isoformat(),)
    assert refused.value.cause.message.endswith(" 00:00 Paris time")  # the firm's midnight, as it reads it
    assert emulator.state.signers[state.signer_id].reminders_sent == 1


async def test_no_reminder_once_the_validity_has_ended(ts_env, settings, db, emulator, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    # The expiry's cancel is slow to answer (a busy YouSign queue would delay it the same way).
    emulator.state.add_fault(
        method="POST", path_regex=r"/cancel$", kind="timeout_after_processing", delay_seconds=2
    )
    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now + timedelta(seconds=1))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.type == "InvalidState" and "validity has ended" in refused.value.cause.message
    await run.wait_for("expired")
    assert emulator.state.signers[state.signer_id].reminders_sent == 0


async def test_the_echo_of_our_own_cancel_at_expiry_leaves_the_mandate_expired(
    ts_env, settings, db, emulator, dossier, workers
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    sr = state.signature_request_id
    # YouSign cancels at once (and sends its `canceled` webhook) but its answer to us takes 2 s.
    emulator.state.add_fault(
        method="POST", path_regex=r"/cancel$", kind="timeout_after_processing", delay_seconds=2
    )
    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now + timedelta(seconds=1))
    await eventually(lambda: truthy_or_none(events_for(emulator, sr, "signature_request.canceled")))
    await deliver(emulator, run, sr, "signature_request.canceled")  # the webhook beats the answer
    final = await run.wait_for("expired")  # not `failed`: the expiry's own reading decides
    assert final.failure_reason is None
    assert (await mandates.get_mandate(db, run.mandate.id)).status == "expired"


async def test_a_request_yousign_cancels_on_a_signing_error_fails_saying_so(
    ts_env, settings, db, dossier, workers
):
    from workflows.mandate_models import YouSignEvent

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    error = YouSignEvent(
        event_id="e-1", event_name="signer.error", signature_request_id=state.signature_request_id
    )
    await run.handle.signal(MandateWorkflow.yousign_event, error)
    final = await run.wait_for("failed")
    assert (
        final.failure_reason == "YouSign cancelled the request (signer.error): delete it, generate a new one"
    )
    assert (await mandates.get_mandate(db, run.mandate.id)).failure_reason == final.failure_reason
    await replay_and_keep(run.handle, "mandate_failed_on_signer_error")


async def test_one_reminder_per_paris_day(ts_env, settings, db, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await send_and_wait_pending(run)
    accepted = await run.handle.execute_update(MandateWorkflow.remind)
    assert accepted.next_reminder_allowed_at == next_reminder_allowed_at(accepted.sent_at)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.type == "ReminderRateLimited"
    assert refused.value.cause.details == (accepted.next_reminder_allowed_at.isoformat(),)

    now = await ts_env.get_current_time()
    await ts_env.sleep(accepted.next_reminder_allowed_at - now + timedelta(seconds=1))
    await run.handle.execute_update(MandateWorkflow.remind)
    assert len(await mandates.reminders(db, run.mandate.id)) == 2
    # A person waits on a reminder: it goes first on the YouSign queue; a firm's single send
    # keeps the default, ahead of bulk sends.
    priorities = scheduled_priorities([e async for e in run.handle.fetch_history_events()])
    assert priorities["send_signature_reminder"] == [1, 1]
    assert priorities["send_mandate_for_signature"] == [0]
    await replay_and_keep(run.handle, "mandate_reminded")


async def test_a_second_reminder_while_the_first_is_being_sent_is_asked_to_wait(
    ts_env, settings, db, emulator, dossier, workers
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await send_and_wait_pending(run)
    emulator.state.add_fault(method="POST", path_regex=r"/send_reminder$", kind="400", delay_seconds=2)
    first = asyncio.ensure_future(run.handle.execute_update(MandateWorkflow.remind))
    assert await eventually(lambda: _pending_activity(run.handle, "send_signature_reminder"))
    with pytest.raises(WorkflowUpdateFailedError) as second:
        await run.handle.execute_update(MandateWorkflow.remind)
    # Not "already sent today": the first may still be refused, as it is here.
    assert second.value.cause.type == "InvalidState"
    assert second.value.cause.message == "a reminder is being sent: try again in a moment"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await first
    assert refused.value.cause.type == "ReminderRefused"
    accepted = await run.handle.execute_update(MandateWorkflow.remind)  # none was sent: accepted
    assert await mandates.reminders(db, run.mandate.id) == [accepted.sent_at]


async def _pending_activity(handle, activity_type: str) -> bool:
    described = await handle.describe()
    return any(a.activity_type.name == activity_type for a in described.raw_description.pending_activities)


async def test_a_reminder_asked_as_the_refusal_comes_in_names_the_refusal(
    ts_env, settings, db, emulator, dossier, workers
):
    from workflows.mandate_models import YouSignEvent

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    # A refusal without its reason (as the sweep finds them): its reason is read from YouSign first.
    emulator.state.add_fault(method="GET", path_regex=state.signature_request_id, kind="503", delay_seconds=2)
    declined = YouSignEvent(
        event_id="sweep-1", event_name="signer.declined", signature_request_id=state.signature_request_id
    )
    await run.handle.signal(MandateWorkflow.yousign_event, declined)
    assert await eventually(lambda: _pending_activity(run.handle, "get_signature_request_state"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.type == "InvalidState"
    assert refused.value.cause.message.startswith("the mandate is refused (being recorded)")
    await run.wait_for("refused")


async def test_two_deletes_at_once_are_one_deletion(ts_env, settings, db, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.wait_generated()
    # Two requests at once discard the same draft (two PATCHes of the dossier, say): both succeed.
    both = await asyncio.gather(
        run.handle.execute_update(MandateWorkflow.delete), run.handle.execute_update(MandateWorkflow.delete)
    )
    assert [state.status for state in both] == ["deleted", "deleted"]
    log = await mandates.events(db, run.mandate.id)
    assert [e.to_status for e in log] == ["draft", "deleted"]
    assert (await run.handle.result()).status == "deleted"
    await replay_and_keep(run.handle, "mandate_deleted_twice_at_once")


async def test_signature_by_webhook_signal(ts_env, settings, db, emulator, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    emulator.state.sign_signer(state.signer_id)
    await deliver(emulator, run, state.signature_request_id, "signer.done")
    final = await run.handle.result()
    assert final.status == "signed"
    row = await mandates.get_mandate(db, run.mandate.id)
    assert row.status == "signed" and row.signed_at is not None
    # The webhook's signal, not the expiry's last look at YouSign (it would find it signed too).
    assert (await mandates.events(db, run.mandate.id))[-1].cause == "webhook signer.done"
    assert (await mandates.get_document(db, run.mandate.id, "signed")).startswith(b"%PDF")
    assert (await mandates.get_document(db, run.mandate.id, "audit_trail")).startswith(b"%PDF")


def scheduled_priorities(events) -> dict[str, list[int]]:
    """The priority key each activity was scheduled with (0: the default), by activity type."""
    found: dict[str, list[int]] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            found.setdefault(scheduled.activity_type.name, []).append(scheduled.priority.priority_key)
    return found


async def sweep(ts_env, settings, keep_as: str | None = None) -> int:
    """One round of the reconciliation sweep, as its schedule starts it (its history replayed, and
    kept under `keep_as` when given)."""
    handle = await ts_env.client.start_workflow(
        YouSignReconciliationWorkflow.run,
        ReconciliationInput(yousign_task_queue=settings.yousign_task_queue),
        id=f"sweep-{uuid4()}",
        task_queue=settings.temporal_task_queue,
    )
    told = (await handle.result()).webhooks_made_up
    if keep_as:
        await replay_and_keep(handle, keep_as)
    return told


async def test_lost_webhooks_are_made_up_for_by_the_reconciliation_sweep(
    ts_env, settings, db, firm, emulator, workers
):
    signed_run, refused_run, waiting_run = [
        await generate_mandate(
            ts_env.client, settings, db, await verified_firm_with_dossier(db, firm, establishment_siret(i))
        )
        for i in range(1, 4)
    ]
    signed, refused, _ = [await send_and_wait_pending(run) for run in (signed_run, refused_run, waiting_run)]
    # Their webhooks are lost: nobody delivers them.
    emulator.state.sign_signer(signed.signer_id)
    emulator.state.decline_signer(refused.signer_id, "pas d'accord")
    before = len(emulator.state.recorded_requests)

    assert await sweep(ts_env, settings, keep_as="reconciliation_sweep") == 2
    # One listing per outcome, however many mandates are pending.
    asked = emulator.state.recorded_requests[before:]
    listings = [parse_qs(r.query) for r in asked if r.method == "GET" and r.path == "/v3/signature_requests"]
    # The emulator is shared by the session: other tests' settled requests may add pages of 100.
    settled = Counter(sr.status for sr in emulator.state.signature_requests.values())
    pages = {status: max(1, math.ceil(settled[status] / 100)) for status in ("declined", "done")}
    assert Counter(q["status[eq]"][0] for q in listings) == pages
    await signed_run.wait_for("signed")
    await refused_run.wait_for("refused")
    assert (await mandates.events(db, signed_run.mandate.id))[
        -1
    ].cause == "reconciliation signature_request.done"
    # Lists omit a decline's reason: the refused mandate asked for its request once to record it.
    refusal = (await mandates.events(db, refused_run.mandate.id))[-1]
    assert (refusal.cause, refusal.detail) == (
        "reconciliation signature_request.declined",
        {"reason": "pas d'accord"},
    )
    # Refused when the client declined, not when the sweep found it.
    declined = emulator.state.sr_json(emulator.state.signature_requests[refused.signature_request_id])
    declined_at = datetime.fromisoformat(declined["decline_information"]["declined_at"])
    assert (await mandates.get_mandate(db, refused_run.mandate.id)).refused_at == declined_at
    reads = [
        r
        for r in emulator.state.recorded_requests[before:]
        if r.method == "GET" and refused.signature_request_id in r.path
    ]
    assert len(reads) == 1
    assert (await mandates.get_mandate(db, waiting_run.mandate.id)).status == "pending"
    assert await sweep(ts_env, settings) == 0  # settled already: nobody is signalled twice
    await signed_run.handle.result()
    await replay_and_keep(signed_run.handle, "mandate_signed_by_reconciliation")


async def test_signature_just_before_expiry_wins(ts_env, settings, db, emulator, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now - timedelta(seconds=30))
    emulator.state.sign_signer(state.signer_id)  # signed 30 s before the timer, webhook not yet in
    await ts_env.sleep(timedelta(minutes=1))
    final = await run.handle.result()
    assert final.status == "signed"
    assert (await mandates.events(db, run.mandate.id))[-1].cause == "checked at expiry"


async def test_decline_then_delete_then_regenerate(ts_env, settings, db, emulator, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.delete)
    assert "only a draft, expired, refused or failed" in refused.value.cause.message
    emulator.state.decline_signer(state.signer_id, "Je ne souhaite pas")
    await deliver(emulator, run, state.signature_request_id, "signer.declined")
    await run.wait_for("refused")
    assert (await mandates.get_mandate(db, run.mandate.id)).refused_at is not None

    await run.handle.execute_update(MandateWorkflow.delete)
    assert (await run.handle.result()).status == "deleted"
    again = await generate_mandate(ts_env.client, settings, db, dossier)
    assert again.mandate.seq == 2 and again.mandate.workflow_id.endswith("-2")
    assert (await again.wait_generated()).status == "draft"
    await replay_and_keep(run.handle, "mandate_refused_deleted")


async def test_a_refused_mandate_left_undeleted_closes_its_run_and_is_deleted_in_the_store(
    ts_env, settings, db, emulator, dossier, workers
):
    from starter import mandate_actions
    from workflows.mandate import SETTLED_RUN_KEPT_OPEN

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    emulator.state.decline_signer(state.signer_id, "Je ne souhaite pas")
    await deliver(emulator, run, state.signature_request_id, "signer.declined")
    await run.wait_for("refused")
    # The firm leaves it there: after a while its run closes, nothing lost (the store has it all).
    await ts_env.sleep(SETTLED_RUN_KEPT_OPEN + timedelta(days=1))
    assert (await run.handle.result()).status == "refused"
    await replay_and_keep(run.handle, "mandate_refused_closed")
    with pytest.raises(mandate_actions.RunGone, match="delete it and generate a new one"):
        await mandate_actions.remind(db, ts_env.client, dossier.firm_id, dossier.id)
    # Deleted later all the same, in the store (all the run's delete would do), to start over.
    await mandate_actions.delete(db, ts_env.client, dossier.firm_id, dossier.id, now=datetime.now(UTC))
    deleted = await mandates.get_mandate(db, run.mandate.id)
    assert deleted.status == "deleted" and deleted.refused_at is not None
    assert (await mandates.events(db, run.mandate.id))[-1].cause == "deleted by the firm"
    assert (await generate_mandate(ts_env.client, settings, db, dossier)).mandate.seq == 2


async def test_a_draft_left_unsent_is_deleted_and_its_run_ends(ts_env, settings, db, dossier, workers):
    from store import dossiers
    from workflows.mandate import UNSENT_DRAFT_KEPT

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.wait_generated()
    await ts_env.sleep(UNSENT_DRAFT_KEPT - timedelta(days=1))
    assert (await run.state()).status == "draft"  # a day before, still there to send
    await ts_env.sleep(timedelta(days=2))
    assert (await run.handle.result()).status == "deleted"
    assert (await mandates.events(db, run.mandate.id))[-1].cause == "draft not sent within 90 days"
    # The dossier is ready for a new mandate, dated the day it goes out.
    refreshed, _ = await dossiers.get_dossier(db, dossier.firm_id, dossier.id)
    assert refreshed.einvoicing_status == "ready_for_mandate"
    assert (await generate_mandate(ts_env.client, settings, db, dossier)).mandate.seq == 2
    await replay_and_keep(run.handle, "mandate_draft_unsent_deleted")


async def test_a_delete_while_the_refusal_is_being_recorded_comes_after_it(
    ts_env, settings, db, emulator, yousign, dossier
):
    # The workflow adopts `refused` at once, so a delete is accepted while the refusal's record is
    # still on its way to the database: the deletion must land after it, not race it.
    real = MandateActivities(db, None)
    refusal_held, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name="record_mandate_status")
    async def slow_refusal_record(change: RecordStatusInput) -> None:
        if change.status == "refused":
            refusal_held.set()
            await release.wait()
        await real.record_mandate_status(change)

    async with running_workers(ts_env.client, settings, db, yousign, replace=[slow_refusal_record]):
        run = await generate_mandate(ts_env.client, settings, db, dossier)
        state = await send_and_wait_pending(run)
        emulator.state.decline_signer(state.signer_id, "Non")
        await deliver(emulator, run, state.signature_request_id, "signer.declined")
        try:  # released whatever happens: a held activity would hold the workers' shutdown for ever
            await asyncio.wait_for(refusal_held.wait(), 15)
            deleting = asyncio.ensure_future(run.handle.execute_update(MandateWorkflow.delete))

            async def delete_taken_and_settled() -> bool:
                # The workflow took the delete (the send was the first update) while the refusal is
                # held, and whatever the delete set going has run: only the held record is pending.
                events = [e.event_type async for e in run.handle.fetch_history_events()]
                accepted = events.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
                pending = (await run.handle.describe()).raw_description.pending_activities
                return accepted == 2 and len(pending) == 1

            await eventually(delete_taken_and_settled)
        finally:
            release.set()
        assert (await deleting).status == "deleted"
        assert (await run.handle.result()).status == "deleted"
    assert [e.to_status for e in await mandates.events(db, run.mandate.id)][-2:] == ["refused", "deleted"]
    assert (await mandates.get_mandate(db, run.mandate.id)).status == "deleted"


async def test_duplicate_foreign_and_late_events_have_no_effect(
    ts_env, settings, db, emulator, dossier, workers
):
    from workflows.mandate_models import YouSignEvent

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    sr_id = state.signature_request_id

    def event(event_id, name, signature_request_id=sr_id):
        return YouSignEvent(event_id=event_id, event_name=name, signature_request_id=signature_request_id)

    await run.handle.signal(MandateWorkflow.yousign_event, event("e1", "signer.done", "another-request"))
    await run.handle.signal(MandateWorkflow.yousign_event, event("e2", "signature_request.activated"))
    assert (await run.state()).status == "pending"
    await run.handle.signal(MandateWorkflow.yousign_event, event("e3", "signer.declined"))
    await run.wait_for("refused")
    await run.handle.signal(MandateWorkflow.yousign_event, event("e3", "signer.declined"))  # replayed
    await run.handle.signal(MandateWorkflow.yousign_event, event("e4", "signer.done"))  # late, out of order
    assert (await run.state()).status == "refused"
    log = await mandates.events(db, run.mandate.id)
    assert [e.to_status for e in log] == ["draft", "sending", "pending", "refused"]


async def test_only_a_draft_can_be_sent(ts_env, settings, db, dossier, workers):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await send_and_wait_pending(run)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.send)
    assert refused.value.cause.message == "the mandate is pending; only a draft can be sent"
    draft = await generate_mandate(ts_env.client, settings, db, await _another_dossier(db, dossier))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await draft.handle.execute_update(MandateWorkflow.remind)
    assert refused.value.cause.type == "InvalidState"
    assert "only a pending one can be reminded" in refused.value.cause.message


async def _another_dossier(db, dossier):
    from store import dossiers

    return await dossiers.create_dossier(
        db,
        dossier.firm_id,
        name="Autre SAS",
        siret="55208131766522",
        legal_representative=dossier.legal_representative,
    )


async def test_worker_dying_after_create_resumes_without_a_second_request(
    ts_env, settings, db, emulator, yousign, dossier
):
    real = YouSignActivities(db, yousign)

    @activity.defn(name="send_mandate_for_signature")
    async def dies_after_creating(request: SendMandateInput) -> SendMandateOutput:
        if activity.info().attempt == 1:
            # The request reaches YouSign, then the worker dies before storing its id. (Its
            # expiration is short, as if the retry came long after: an outage, a big batch.)
            await yousign.create_signature_request(
                NewSignatureRequest(
                    name="Mandat",
                    external_id=str(request.mandate_id),
                    expiration_date=date.today() + timedelta(days=5),
                )
            )
            raise RuntimeError("worker killed")
        return await real.send_mandate_for_signature(request)

    async with running_workers(ts_env.client, settings, db, yousign, replace=[dies_after_creating]):
        run = await generate_mandate(ts_env.client, settings, db, dossier)
        state = await send_and_wait_pending(run)
    created = [
        sr for sr in emulator.state.signature_requests.values() if sr.external_id == str(run.mandate.id)
    ]
    assert [sr.id for sr in created] == [state.signature_request_id]
    # Extended before activation: YouSign closes it the day after our timer fires, not weeks before.
    assert created[0].expiration_date == paris_day(state.expires_at) + timedelta(days=1)


async def test_a_retried_send_makes_at_most_four_calls_per_attempt(
    ts_env, settings, db, emulator, dossier, workers
):
    # Attempt 1: the create fails (503) and the look-up after it finds nothing. Attempt 2 must look
    # up again before creating: look-up, create, upload, signer is four calls, so activation waits
    # for attempt 3, which reads the request it recorded and activates it.
    emulator.state.add_fault(method="POST", path_regex=r"^/v3/signature_requests$", kind="503", times=1)
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    first = len(emulator.state.recorded_requests)
    state = await send_and_wait_pending(run)
    sent = [(r.method, r.path.removeprefix("/v3")) for r in emulator.state.recorded_requests[first:]]
    sr = state.signature_request_id
    assert sent == [
        ("POST", "/signature_requests"),  # 503
        ("GET", "/signature_requests"),  # the look-up after an unknown outcome: nothing
        ("GET", "/signature_requests"),  # attempt 2
        ("POST", "/signature_requests"),
        ("POST", f"/signature_requests/{sr}/documents"),
        ("POST", f"/signature_requests/{sr}/signers"),
        ("GET", f"/signature_requests/{sr}"),  # attempt 3
        ("POST", f"/signature_requests/{sr}/activate"),
    ]
    assert emulator.state.signature_requests[sr].status == "ongoing"


async def test_a_429_is_retried_after_the_time_yousign_asks(ts_env, settings, db, emulator, dossier, workers):
    # The 429 says Retry-After: 40; the policy's own first back-off would be 2 s.
    emulator.state.add_fault(method="POST", path_regex=r"/activate$", kind="429", times=1, delay_seconds=40)
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.handle.execute_update(MandateWorkflow.send)

    async def throttled():
        return [r for r in emulator.state.rejected_requests if r.injected]

    await eventually(throttled)
    await ts_env.sleep(45)  # the test server's clock: the retry is due 40 s after the 429
    await run.wait_for("pending")
    events = [e async for e in run.handle.fetch_history_events()]
    [scheduled] = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "send_mandate_for_signature"
    ]
    [started] = [
        e.activity_task_started_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id == scheduled.event_id
    ]
    assert started.attempt == 2 and [r.injected for r in emulator.state.rejected_requests][-1:] == [True]
    started_at = next(e.event_time for e in events if e.activity_task_started_event_attributes == started)
    waited = started_at.ToDatetime() - scheduled.event_time.ToDatetime()
    assert timedelta(seconds=40) <= waited < timedelta(seconds=60)
    assert [sr.external_id for sr in emulator.state.signature_requests.values()].count(
        str(run.mandate.id)
    ) == 1


async def test_final_yousign_error_fails_the_mandate_with_its_reason(
    ts_env, settings, db, emulator, dossier, workers
):
    emulator.state.add_fault(method="POST", path_regex=r"/signers$", kind="400", times=1)
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.handle.execute_update(MandateWorkflow.send)
    state = await run.wait_for("failed")
    assert "400" in state.failure_reason
    assert (await mandates.get_mandate(db, run.mandate.id)).failure_reason == state.failure_reason


async def test_a_mandate_that_cannot_be_printed_fails_with_why_instead_of_retrying(
    ts_env, settings, db, dossier, workers
):
    # Stored before the API refused characters the PDF cannot print (the API now answers 422).
    await db.execute("UPDATE dossiers SET rep_last_name = 'Kowalski-山田' WHERE id = $1", dossier.id)
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await run.wait_for("failed")
    assert "cannot be printed" in state.failure_reason and "山田" in state.failure_reason
    row = await mandates.get_mandate(db, run.mandate.id)
    assert (row.status, row.failure_reason) == ("failed", state.failure_reason)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(MandateWorkflow.send)
    assert (
        refused.value.cause.type == "InvalidState"
        and "only a draft can be sent" in refused.value.cause.message
    )
    await run.handle.execute_update(MandateWorkflow.delete)  # then the firm corrects and starts over


async def test_a_bulk_mandate_is_rendered_sent_and_recorded_in_one_activity(
    ts_env, settings, db, firm, emulator, workers
):
    dossier = await verified_firm_with_dossier(db, firm)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    await start_bulk_send_workflow(ts_env.client, settings, batch)

    async def pending():
        rows = await db.fetch("SELECT * FROM mandates WHERE bulk_send_id = $1", batch.id)
        return rows[0] if rows and rows[0]["status"] == "pending" else None

    mandate = await eventually(pending)
    assert await mandates.get_document(db, mandate["id"], "generated")  # rendered by the send
    child = ts_env.client.get_workflow_handle(mandate["workflow_id"])

    async def waiting_for_signature():  # the row says `pending` a moment before the workflow has
        events = [e async for e in child.fetch_history_events()]
        return events if events[-1].event_type == EventType.EVENT_TYPE_TIMER_STARTED else None

    events = await eventually(waiting_for_signature)
    # Started, a task, the send, a task, the status upsert, the expiry timer: as lean as a bare
    # workflow of that shape (bench/bulk_send.py b counts the same).
    assert [e.event_type for e in events].count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 1
    assert len(events) == 12 and events[-1].event_type == EventType.EVENT_TYPE_TIMER_STARTED
    # Behind everything else on the YouSign queue (a firm's single send, reminders, expiries).
    assert scheduled_priorities(events) == {"send_mandate_for_signature": [4]}
    described = await child.describe()
    assert described.typed_search_attributes[MANDATE_STATUS] == "pending"


async def test_a_bulk_mandate_activated_before_a_failed_attempt_is_recorded_not_failed(
    ts_env, settings, db, firm, emulator, yousign
):
    from domain.models import Platform
    from store import firms
    from store import mandates as store_mandates

    dossier = await verified_firm_with_dossier(db, firm)
    real = YouSignActivities(db, yousign)

    async def database_gone(*args, **kwargs):
        raise ConnectionResetError("connection lost")

    @activity.defn(name="send_mandate_for_signature")
    async def activates_then_loses_its_record(request: SendMandateInput) -> SendMandateOutput:
        if activity.info().attempt == 1:
            # YouSign e-mails the client, then recording `pending` fails; before the retry, the
            # firm designates another platform (what a bulk mandate's rendering would refuse).
            transition, store_mandates.transition = store_mandates.transition, database_gone
            try:
                return await real.send_mandate_for_signature(request)
            finally:
                store_mandates.transition = transition
                await firms.set_platform(db, firm.id, Platform(name="Autre PA", matricule="0815"))
        return await real.send_mandate_for_signature(request)

    async with running_workers(
        ts_env.client, settings, db, yousign, replace=[activates_then_loses_its_record]
    ):
        batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
        await start_bulk_send_workflow(ts_env.client, settings, batch)

        async def settled():
            row = await db.fetchrow("SELECT * FROM mandates WHERE bulk_send_id = $1", batch.id)
            return row if row and row["status"] in ("pending", "failed") else None

        mandate = await eventually(settled)
    assert (mandate["status"], mandate["failure_reason"]) == ("pending", None)  # the client can sign it
    ours = [s for s in emulator.state.signature_requests.values() if s.external_id == str(mandate["id"])]
    assert [(s.id, s.status) for s in ours] == [(mandate["signature_request_id"], "ongoing")]
    assert (await bulk.outcome_counts(db, batch.id))["sent"] == 1
    # Sent when YouSign activated it (its expiry counts from then, as YouSign's own date does), not
    # when the retry recorded it (on this server's clock, skipped ahead).
    assert abs(mandate["sent_at"] - ours[0].activated_at) < timedelta(seconds=1)


async def test_a_batch_goes_on_when_an_adopted_draft_was_deleted_before_its_signal(
    ts_env, settings, db, firm, yousign
):
    dossier = await verified_firm_with_dossier(db, firm)
    draft = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    # Adopted by the batch, then deleted by the firm (its run over) before the batch's signal.
    await db.execute("UPDATE mandates SET bulk_send_id = $2 WHERE id = $1", draft.id, batch.id)
    await mandates.transition(
        db, draft.id, MandateStatus.DELETED, cause="deleted by the firm", at=draft.created_at
    )

    @activity.defn(name="reserve_bulk_page")
    async def adopts_the_draft(page: BulkPageInput) -> BulkPage:
        adopted = MandateToStart(
            mandate_id=draft.id,
            number=draft.number,
            firm_id=firm.id,
            dossier_id=dossier.id,
            workflow_id=draft.workflow_id,
            draft=True,
        )
        return BulkPage(mandates=[adopted], more=False)

    async with running_workers(ts_env.client, settings, db, yousign, replace=[adopts_the_draft]):
        await start_bulk_send_workflow(ts_env.client, settings, batch)
        await ts_env.client.get_workflow_handle(bulk_workflow_id(batch.id)).result()  # not failed
    assert (await mandates.get_mandate(db, draft.id)).status == "deleted"
    assert (await bulk.get_bulk_send(db, firm.id, batch.id)).finished_at is not None


async def test_a_run_whose_mandate_was_set_aside_meanwhile_ends_without_failing(
    ts_env, settings, db, dossier, workers
):
    # The gateway took the start for failed (its answer lost) and set the reservation aside; the
    # start had happened all the same.
    mandate = await mandates.reserve_mandate(db, dossier.firm_id, dossier.id, issued_on=date.today())
    await mandates.discard_reservation(db, mandate.id, datetime.now(UTC))
    handle = await start_mandate_workflow(ts_env.client, settings, mandate)
    assert (await handle.result()).status == "deleted"  # not a run failed for operators to look at
    assert (await mandates.get_mandate(db, mandate.id)).status == "deleted"


async def test_a_request_an_earlier_attempt_activated_never_outlives_yousigns_date(
    ts_env, settings, db, dossier, workers, yousign
):
    from clients.yousign_models import NewSignatureRequest
    from domain.calendar import PARIS
    from tests.test_yousign_client import SIGNER
    from yousign_emulator import sample_pdf

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.wait_for("draft")
    # An earlier attempt created and activated the request (its date set from its own clock, say
    # just before a month-end midnight), then its answer was lost: YouSign closes it sooner.
    closes_on = date.today() + timedelta(days=10)
    sr = await yousign.create_signature_request(
        NewSignatureRequest(name="Mandat", external_id=str(run.mandate.id), expiration_date=closes_on)
    )
    document = await yousign.upload_document(sr.id, "mandat.pdf", sample_pdf())
    await yousign.add_signer(sr.id, document.id, SIGNER)
    await yousign.activate(sr.id)
    assert await mandates.claim_signature_request(db, run.mandate.id, sr.id)
    state = await send_and_wait_pending(run)
    assert state.signature_request_id == sr.id
    # It expires when YouSign closes the request (the end of that day), not a month on: no pending
    # mandate that nobody can sign.
    closes_at = (await yousign.get_signature_request(sr.id)).expiration_date
    assert state.expires_at == closes_at and closes_at.astimezone(PARIS).date() == closes_on
