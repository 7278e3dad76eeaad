"""The mandate workflow when YouSign fails it at the edges: expiry, archiving, a decline's reason,
a webhook ahead of the send's result. Time-skipping server, real activities, store and emulator."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError

from activities.models import SendMandateInput, SendMandateOutput
from activities.yousign import YouSignActivities
from domain.status import MandateStatus
from starter.webhook_events import mandate_signal
from store import mandates
from tests.helpers import CLIENT_REP, eventually, truthy_or_none
from tests.workflow_support import (
    deliver,
    events_for,
    generate_mandate,
    replay_and_keep,
    running_workers,
    send_and_wait_pending,
)
from workflows.mandate import MandateWorkflow
from workflows.mandate_models import YouSignEvent


def request_read(sr_id: str) -> str:
    """The one GET the expiry and the decline-reason look-up make of a request."""
    return rf"^/v3/signature_requests/{sr_id}$"


async def test_validity_elapsing_while_yousign_is_unreachable_expires_the_mandate_all_the_same(
    ts_env, settings, db, emulator, dossier, workers
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    sr = state.signature_request_id
    outage = emulator.state.add_fault(method="GET", path_regex=request_read(sr), kind="503", times=None)
    # Past the expiry, then past the week the expiry's YouSign activity keeps retrying.
    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now + timedelta(days=7, minutes=30))
    await run.wait_for("expired", within=60)
    last = (await mandates.events(db, run.mandate.id))[-1]
    assert (last.to_status, last.cause) == ("expired", "validity elapsed; YouSign unreachable")
    # Expired when its validity ended, not a week later when YouSign gave up answering.
    assert (await mandates.get_mandate(db, run.mandate.id)).expired_at == state.expires_at
    # Never cancelled: YouSign closes it itself, a day after our validity.
    assert outage.fired > 1 and emulator.state.signature_requests[sr].status == "ongoing"


@pytest.mark.parametrize(
    ("late", "yousign_keeps_its_time"), [("signed", True), ("declined", True), ("signed", False)]
)
async def test_a_signature_or_decline_after_the_validity_ended_leaves_the_mandate_expired(
    ts_env, settings, db, emulator, dossier, workers, late, yousign_keeps_its_time
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    sr = state.signature_request_id
    # YouSign unreachable at expiry: its request stays open, and the client acts an hour late.
    outage = emulator.state.add_fault(method="GET", path_regex=request_read(sr), kind="503", times=None)
    now = await ts_env.get_current_time()
    await ts_env.sleep(state.expires_at - now + timedelta(minutes=5))
    after = state.expires_at + timedelta(hours=1)  # YouSign's clock, not the emulator's real one
    if late == "signed":
        emulator.state.sign_signer(state.signer_id)
        # Without it in YouSign's reading at expiry, the webhook's time tells it was late.
        emulator.state.signature_requests[sr].completed_at = after if yousign_keeps_its_time else None
        event = YouSignEvent(
            event_id="e-late", event_name="signer.done", signature_request_id=sr, occurred_at=after
        )
    else:
        emulator.state.decline_signer(state.signer_id)
        emulator.state.signature_requests[sr].decline_information["declined_at"] = after.isoformat()
        event = YouSignEvent(
            event_id="e-late", event_name="signer.declined", signature_request_id=sr, occurred_at=after
        )
    await run.handle.signal(MandateWorkflow.yousign_event, event)  # its webhook: too late, ignored
    assert (await run.state()).status == "pending"
    emulator.state.faults.clear()
    await ts_env.sleep(timedelta(minutes=11))  # the expiry's next attempt (at most 10 min apart)
    final = await run.wait_for("expired", within=60)  # its reading of YouSign finds it late too
    last = (await mandates.events(db, run.mandate.id))[-1]
    assert (last.to_status, last.cause) == ("expired", f"validity elapsed; {late} at YouSign after it")
    assert f"the client {late} at YouSign on " in last.detail["reason"]
    stored = await mandates.get_mandate(db, run.mandate.id)
    assert (stored.expired_at, stored.signed_at, stored.refused_at) == (state.expires_at, None, None)
    assert final.status == "expired" and outage.fired > 0
    if yousign_keeps_its_time:
        await replay_and_keep(run.handle, f"mandate_{late}_after_expiry")


async def test_a_signed_mandate_whose_download_keeps_failing_stays_signed_and_is_confirmed_anyway(
    ts_env, settings, db, emulator, yousign, dossier, smtp_sink
):
    async with running_workers(ts_env.client, settings, db, yousign, smtp_url=smtp_sink.url):
        run = await generate_mandate(ts_env.client, settings, db, dossier)
        state = await send_and_wait_pending(run)
        sr = state.signature_request_id
        outage = emulator.state.add_fault(
            method="GET",
            path_regex=rf"^/v3/signature_requests/{sr}/documents/download$",
            kind="503",
            times=None,
        )
        emulator.state.sign_signer(state.signer_id)
        await deliver(emulator, run, sr, "signer.done")
        final = await run.handle.result()  # skips the week the archiving is retried
    assert final.status == "signed" and outage.fired > 1
    log = await mandates.events(db, run.mandate.id)
    assert [(e.to_status, e.cause) for e in log][-1] == ("signed", "webhook signer.done")
    assert (await mandates.get_mandate(db, run.mandate.id)).status == "signed"
    # Nothing archived: the copy stays at YouSign (the audit trail is never asked for).
    assert await mandates.get_document(db, run.mandate.id, "signed") is None
    assert await mandates.get_document(db, run.mandate.id, "audit_trail") is None
    # The client is told all the same, once, without the PDF that could not be had.
    [mail] = [
        m
        for m in smtp_sink.to(CLIENT_REP.email)
        if run.mandate.number in m.get_body(("plain",)).get_content()
    ]
    assert list(mail.iter_attachments()) == []
    text = mail.get_body(("plain",)).get_content()
    assert "pièce jointe" not in text and "qui vous l'adressera sur demande" in text


async def test_a_decline_whose_reason_cannot_be_looked_up_is_recorded_refused_without_one(
    ts_env, settings, db, emulator, dossier, workers
):
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    state = await send_and_wait_pending(run)
    sr = state.signature_request_id
    emulator.state.decline_signer(state.signer_id, "pas d'accord")
    # The webhook comes without the reason (as the sweep's does), and YouSign cannot be read.
    [webhook] = events_for(emulator, sr, "signer.declined")
    event = mandate_signal(webhook).model_copy(update={"decline_reason": None})
    outage = emulator.state.add_fault(method="GET", path_regex=request_read(sr), kind="503", times=None)
    await run.handle.signal(MandateWorkflow.yousign_event, event)
    await ts_env.sleep(timedelta(hours=1, minutes=10))  # past the look-up's hour of retries
    await run.wait_for("refused")
    last = (await mandates.events(db, run.mandate.id))[-1]
    assert (last.to_status, last.cause, last.detail) == ("refused", "webhook signer.declined", {})
    assert outage.fired > 1  # it was looked up, and failed
    row = await mandates.get_mandate(db, run.mandate.id)
    assert row.refused_at == event.occurred_at  # the webhook's time: the look-up gave no better one
    assert await mandates.outcome_reason(db, run.mandate.id, MandateStatus.REFUSED) is None


async def test_a_signature_webhook_ahead_of_the_send_result_is_kept_and_signs_the_mandate(
    ts_env, settings, db, emulator, yousign, dossier
):
    # The send activity has activated the request (the client is e-mailed and signs at once), but
    # its result is held until the webhook has reached the workflow: deterministic, unlike a
    # delayed YouSign answer racing the test.
    real, activated, release = YouSignActivities(db, yousign), asyncio.Event(), asyncio.Event()

    @activity.defn(name="send_mandate_for_signature")
    async def result_held(request: SendMandateInput) -> SendMandateOutput:
        sent = await real.send_mandate_for_signature(request)
        activated.set()
        await release.wait()
        return sent

    async with running_workers(ts_env.client, settings, db, yousign, replace=[result_held]):
        try:  # released whatever happens: a held activity would hold the workers' shutdown for ever
            run = await generate_mandate(ts_env.client, settings, db, dossier)
            await run.handle.execute_update(MandateWorkflow.send)
            await asyncio.wait_for(activated.wait(), 15)
            sr = (await mandates.get_mandate(db, run.mandate.id)).signature_request_id
            [signer] = [s for s in emulator.state.signers.values() if s.signature_request_id == sr]
            emulator.state.sign_signer(signer.id)
            await deliver(emulator, run, sr, "signer.done")

            async def kept():  # the signal is taken: the event is kept, not applied (nor dropped)
                state = await run.state()
                return state if state.early_events else None

            early = await eventually(kept)
            assert (early.status, early.signature_request_id) == ("sending", None)
            assert [e.event_name for e in early.early_events] == ["signer.done"]
        finally:
            release.set()
        final = await run.handle.result()
    assert final.status == "signed" and final.early_events == []
    # Signed by the kept webhook, not by the expiry's last look at YouSign a month later.
    last = (await mandates.events(db, run.mandate.id))[-1]
    assert (last.to_status, last.cause) == ("signed", "webhook signer.done")


def scheduled_activities(events) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def sent_until_failed(ts_env, settings, db, dossier):
    """A new mandate sent by the firm, once its send has failed: the run and its state."""
    run = await generate_mandate(ts_env.client, settings, db, dossier)
    await run.handle.execute_update(MandateWorkflow.send)
    return run, await run.wait_for("failed")


async def delete_and_finish(run) -> list[str]:
    """The firm deletes the failed mandate; the run ends once its send is over: what it scheduled."""
    await run.handle.execute_update(MandateWorkflow.delete)
    await run.handle.result()
    return scheduled_activities([e async for e in run.handle.fetch_history_events()])


async def test_a_send_failing_once_yousign_e_mailed_the_client_cancels_the_request(
    ts_env, settings, db, emulator, yousign, dossier
):
    real = YouSignActivities(db, yousign)

    async def set_aside(*args, **kwargs):
        raise ApplicationError("the mandate was set aside", type="Conflict", non_retryable=True)

    @activity.defn(name="send_mandate_for_signature")
    async def activates_then_cannot_record(request: SendMandateInput) -> SendMandateOutput:
        # YouSign creates, fills and activates the request (the client is e-mailed), then the store
        # refuses `pending`: the send fails for good.
        transition, mandates.transition = mandates.transition, set_aside
        try:
            return await real.send_mandate_for_signature(request)
        finally:
            mandates.transition = transition

    async with running_workers(ts_env.client, settings, db, yousign, replace=[activates_then_cannot_record]):
        run, state = await sent_until_failed(ts_env, settings, db, dossier)
        assert "set aside" in state.failure_reason
        sr_id = (await mandates.get_mandate(db, run.mandate.id)).signature_request_id
        sr = emulator.state.signature_requests[sr_id]
        # The client cannot sign a mandate the firm reads as failed (and will replace).
        await eventually(lambda: truthy_or_none(sr.status == "canceled"))
        assert sr.cancel_information == {
            "reason": "contractualization_aborted",
            "custom_note": "Envoi du mandat interrompu",
        }
        assert "withdraw_signature_request" in await delete_and_finish(run)
        await replay_and_keep(run.handle, "mandate_failed_send_withdrawn")


async def test_a_request_yousign_never_e_mailed_is_left_as_a_draft_when_the_send_fails(
    ts_env, settings, db, emulator, dossier, workers
):
    emulator.state.add_fault(method="POST", path_regex=r"/signers$", kind="400", times=1)
    run, _ = await sent_until_failed(ts_env, settings, db, dossier)
    sr_id = (await mandates.get_mandate(db, run.mandate.id)).signature_request_id
    assert "withdraw_signature_request" in await delete_and_finish(run)
    sr = emulator.state.signature_requests[sr_id]
    assert (sr.status, sr.cancel_information) == ("draft", None)


async def test_a_send_yousign_refused_at_once_has_nothing_to_withdraw(
    ts_env, settings, db, emulator, dossier, workers
):
    emulator.state.add_fault(method="POST", path_regex=r"^/v3/signature_requests$", kind="400", times=1)
    run, _ = await sent_until_failed(ts_env, settings, db, dossier)
    scheduled = await delete_and_finish(run)
    # No request recorded: nothing is asked of YouSign (no turn taken on its capped queue).
    assert "recorded_signature_request" in scheduled and "withdraw_signature_request" not in scheduled


async def test_an_attempt_that_outlived_a_failed_send_does_not_activate_its_request(
    ts_env, settings, db, emulator, yousign, dossier, workers
):
    from temporalio.testing import ActivityEnvironment

    run = await generate_mandate(ts_env.client, settings, db, dossier)
    generated = await run.wait_generated()
    await db.execute("UPDATE mandates SET status = 'sending' WHERE id = $1", run.mandate.id)
    # YouSign takes the signer but answers late; meanwhile a later attempt gave up: the mandate failed.
    emulator.state.add_fault(
        method="POST", path_regex=r"/signers$", kind="timeout_after_processing", delay_seconds=1, times=1
    )
    request = SendMandateInput(
        mandate_id=run.mandate.id, validity="P1M", signature_field=generated.signature_field
    )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, started_time=datetime.now(UTC))
    sending = YouSignActivities(db, yousign).send_mandate_for_signature
    stale = asyncio.ensure_future(env.run(sending, request))

    async def signer_added():
        ours = [
            s.id for s in emulator.state.signature_requests.values() if s.external_id == str(run.mandate.id)
        ]
        return [s for s in emulator.state.signers.values() if s.signature_request_id in ours]

    await eventually(signer_added)
    await db.execute("UPDATE mandates SET status = 'failed' WHERE id = $1", run.mandate.id)
    with pytest.raises(ApplicationError, match="no longer being sent") as refused:
        await stale
    assert refused.value.non_retryable
    [sr] = [s for s in emulator.state.signature_requests.values() if s.external_id == str(run.mandate.id)]
    assert sr.status == "draft"  # never activated: the client is not e-mailed


async def test_a_send_refused_before_calling_yousign_withdraws_nothing(
    ts_env, settings, db, emulator, dossier, workers
):
    # Stored before the API held names to YouSign's rule: printable, refused by the send.
    await db.execute("UPDATE dossiers SET rep_first_name = 'J.-P.' WHERE id = $1", dossier.id)
    run, state = await sent_until_failed(ts_env, settings, db, dossier)
    assert "correct the dossier" in state.failure_reason
    assert "recorded_signature_request" not in await delete_and_finish(run)
    assert not [s for s in emulator.state.signature_requests.values() if s.external_id == str(run.mandate.id)]
