"""The firm representative's identity verification, on the time-skipping server with the emulator."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image

from clients.yousign_webhooks import WebhookEvent
from domain.models import LegalRepresentative
from starter.kyc_runs import start_kyc_workflow
from starter.webhook_events import kyc_signal
from store import kyc
from store.records import KycFile
from tests.helpers import eventually
from tests.workflow_support import current_details, replay_and_keep
from workflows.kyc import KycWorkflow, KycWorkflowInput, kyc_workflow_id


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


async def submit(db, firm, last_name: str, image: bytes, document_type: str = "identity_card"):
    rep = LegalRepresentative(first_name="Paul", last_name=last_name, email="paul@cabinet.example")
    files = [KycFile(side="front", content_type="image/png", content=image)]
    if document_type == "identity_card":
        files.append(KycFile(side="back", content_type="image/png", content=image))
    return await kyc.create_submission(db, firm.id, rep, document_type, files)


async def deliver_done_webhook(emulator, handle) -> None:
    """Forward the emulator's `verification.identity_document.done` to the workflow, as the gateway does."""
    verification_id = await eventually(lambda: handle.query(KycWorkflow.verification_id))

    async def done_events():
        return [
            WebhookEvent.model_validate(e.payload)
            for e in emulator.state.webhook_events
            if e.event_name == "verification.identity_document.done"
            and e.payload["data"]["identity_document"]["id"] == verification_id
        ]

    for event in await eventually(done_events):
        await handle.signal(KycWorkflow.verification_done, kyc_signal(event))


async def test_verified_through_the_webhook_signal(ts_env, settings, db, emulator, firm, workers):
    submission = await submit(db, firm, "Expert", png(640, 400))
    handle = await start_kyc_workflow(ts_env.client, settings, submission)
    verification_id = await eventually(lambda: handle.query(KycWorkflow.verification_id))
    # Operators read whose check it is and when the run asks YouSign itself (a minute on).
    details = await current_details(handle)
    assert details.startswith(f"Submission {submission.id}: YouSign checks the document (verification")
    assert verification_id in details and " UTC unless its webhook tells first" in details
    # YouSign has the document as soon as it is taken: ours is gone, not kept until its answer.
    assert await kyc.load_files(db, submission.id) == []
    await deliver_done_webhook(emulator, handle)
    assert (await handle.result()).status == "verified"
    stored = await kyc.get_submission(db, submission.id)
    assert (stored.status, stored.reason) == ("verified", None)
    assert stored.verification_id == await handle.query(KycWorkflow.verification_id)
    await replay_and_keep(handle, "kyc_verified")


async def test_failed_found_by_polling(ts_env, settings, db, firm, workers):
    submission = await submit(db, firm, "FAILED", png(640, 400), document_type="driving_licence")
    handle = await start_kyc_workflow(ts_env.client, settings, submission)
    result = await handle.result()  # no signal: the workflow's polling finds the outcome
    assert result.status == "failed"
    stored = await kyc.get_submission(db, submission.id)
    assert stored.status == "failed" and stored.reason.startswith("Le document d'identité n'a pas été validé")


async def test_inconclusive_explains_the_codes(ts_env, settings, db, firm, workers):
    submission = await submit(db, firm, "Expert", png(100, 80), document_type="passport")
    result = await (await start_kyc_workflow(ts_env.client, settings, submission)).result()
    assert (result.status, result.status_codes) == ("inconclusive", ["IDDV_1104"])
    stored = await kyc.get_submission(db, submission.id)
    assert "320 x 256" in stored.reason


async def test_a_new_submission_supersedes_a_pending_one(ts_env, settings, db, emulator, firm, workers):
    first = await submit(db, firm, "Expert", png(640, 400))
    first_handle = await start_kyc_workflow(ts_env.client, settings, first)
    second = await submit(db, firm, "Expert", png(640, 400))
    second_handle = await start_kyc_workflow(ts_env.client, settings, second)
    # The test server stops skipping time while the terminated run's activity is out: signal instead.
    await deliver_done_webhook(emulator, second_handle)
    assert (await second_handle.result()).status == "verified"
    assert (await first_handle.describe()).status.name in ("TERMINATED", "COMPLETED")
    assert (await kyc.get_submission(db, first.id)).status == "superseded"
    assert (await kyc.current_submission(db, firm.id)).id == second.id


async def test_a_document_yousign_refuses_to_take_fails_with_why(
    ts_env, settings, db, emulator, firm, workers
):
    emulator.state.add_fault(method="POST", path_regex=r"/verifications/identity_documents$", kind="400")
    submission = await submit(db, firm, "Expert", png(640, 400))
    result = await (await start_kyc_workflow(ts_env.client, settings, submission)).result()
    assert result.status == "failed"
    stored = await kyc.get_submission(db, submission.id)
    assert stored.status == "failed" and stored.reason.startswith("YouSign did not take the document")


async def test_a_verification_yousign_never_concludes_ends_and_says_so(
    ts_env, settings, db, emulator, firm, workers
):
    submission = await submit(db, firm, "Expert", png(640, 400))
    handle = await ts_env.client.start_workflow(
        KycWorkflow.run,
        KycWorkflowInput(
            submission_id=submission.id,
            firm_id=firm.id,
            yousign_task_queue=settings.yousign_task_queue,
            give_up_after=timedelta(hours=3),
        ),
        id=kyc_workflow_id(firm.id),
        task_queue=settings.temporal_task_queue,
    )
    verification_id = await eventually(lambda: handle.query(KycWorkflow.verification_id))
    emulator.state.cancel_scheduled(f"kyc:{verification_id}")  # YouSign stays silent
    assert (await handle.result()).status == "failed"
    stored = await kyc.get_submission(db, submission.id)
    assert (stored.status, stored.reason) == ("failed", "YouSign gave no result: submit the document again")


async def test_a_verification_yousign_cannot_report_on_fails_and_lets_the_files_go(
    ts_env, settings, db, emulator, firm, workers
):
    submission = await submit(db, firm, "FAILED", png(640, 400), document_type="driving_licence")
    # The check is taken, then reading it is a final error (YouSign lost it): no retry helps.
    emulator.state.add_fault(
        method="GET", path_regex=r"/verifications/identity_documents/", kind="404", times=None
    )
    try:
        result = await (await start_kyc_workflow(ts_env.client, settings, submission)).result()
    finally:
        emulator.state.clear_faults()
    assert result.status == "failed"
    stored = await kyc.get_submission(db, submission.id)
    assert stored.status == "failed" and stored.reason.startswith("YouSign could not say how the check went")
    assert await kyc.load_files(db, submission.id) == []  # no identity document kept for nothing


async def test_an_attempt_overlapping_one_that_uploaded_takes_its_verification(
    db, firm, yousign, emulator, monkeypatch
):
    from temporalio.testing import ActivityEnvironment

    from activities.models import KycSubmissionRef
    from activities.yousign import YouSignActivities

    submission = await submit(db, firm, "Expert", png(640, 400))
    # The attempt reads the submission before an earlier, slow attempt stores its verification
    # (which lets the files go), and reads the files after.
    read, reads = kyc.get_submission, []

    async def stale_first(*args):
        reads.append(1)
        return submission if len(reads) == 1 else await read(*args)

    monkeypatch.setattr(kyc, "get_submission", stale_first)
    await kyc.set_verification_id(db, submission.id, "ver-earlier")
    before = len(emulator.state.recorded_requests)
    taken = await ActivityEnvironment().run(
        YouSignActivities(db, yousign).submit_identity_document, KycSubmissionRef(submission_id=submission.id)
    )
    assert taken.verification_id == "ver-earlier"  # not "its files are gone", and no second upload
    assert emulator.state.recorded_requests[before:] == []


async def test_a_check_whose_start_was_lost_is_started_by_the_sweep(
    ts_env, settings, db, emulator, firm, workers
):
    from tests.test_mandate_workflow import sweep

    # Stored, then the gateway stopped before starting its check: no run, no verification.
    lost = await submit(db, firm, "FAILED", png(640, 400), document_type="passport")
    await db.execute(
        "UPDATE kyc_submissions SET created_at = now() - interval '11 minutes' WHERE id = $1", lost.id
    )
    await sweep(ts_env, settings)
    started = ts_env.client.get_workflow_handle(kyc_workflow_id(firm.id))
    handle = ts_env.client.get_workflow_handle_for(
        KycWorkflow.run, started.id, run_id=(await started.describe()).run_id
    )
    await deliver_done_webhook(emulator, handle)  # (a run started by an activity: no time skipping)
    assert (await handle.result()).status == "failed"  # checked by YouSign, as any other
    assert (await kyc.get_submission(db, lost.id)).status == "failed"
    # A newer one, stored a moment ago, is left to the gateway that is starting it.
    recent = await submit(db, firm, "Expert", png(640, 400), document_type="passport")
    run_id = (await handle.describe()).run_id
    await sweep(ts_env, settings)
    assert (await handle.describe()).run_id == run_id
    assert (await kyc.get_submission(db, recent.id)).status == "pending"
