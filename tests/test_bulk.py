"""Bulk sends through the API, with child mandate workflows on the real dev server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from temporalio.service import RPCError, RPCStatusCode

from domain.identifiers import spaced_siret
from domain.models import Platform
from domain.pacing import MAX_CALLS_PER_ACTIVITY, activity_rate_limit
from starter.bulk_runs import start_bulk_send_workflow
from store import bulk, dossiers, firms, kyc, mandates
from store.records import KycFile
from tests.api_support import api_stack, firm_client
from tests.helpers import (
    CLIENT_REP,
    FIRM_REP,
    answer_lost,
    establishment_siret,
    eventually,
    test_settings,
    verified_firm_with_dossier,
)
from tests.workflow_support import replay_and_keep, running_workers
from workflows.bulk import bulk_workflow_id


@pytest.fixture
async def api(dev_env, db, emulator, yousign, smtp_sink):
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink, bulk_page_size=2) as base_url:
        yield base_url


async def ready_dossiers(db, firm, count: int) -> list:
    first = await verified_firm_with_dossier(db, firm)
    more = [
        await dossiers.create_dossier(
            db, firm.id, name=f"Client {i}", siret=establishment_siret(i + 1), legal_representative=CLIENT_REP
        )
        for i in range(count - 1)
    ]
    return [first, *more]


async def stored_before_the_siren_rule(db, firm):
    """A ready dossier whose SIRET passes Luhn over 14 digits but whose first 9 are no SIREN."""
    dossier = await dossiers.create_dossier(
        db, firm.id, name="Ancien SIRET", siret=establishment_siret(900), legal_representative=CLIENT_REP
    )
    await db.execute("UPDATE dossiers SET siret = '12345678900007' WHERE id = $1", dossier.id)
    return dossier


async def finished(client, bulk_id: str) -> dict:
    async def done():
        progress = (await client.get(f"/v1/bulk-sends/{bulk_id}")).json()
        return progress if progress["done"] else None

    return await eventually(done, within=60, interval=0.2)


def reasons(progress: dict) -> dict[str, str]:
    return {i["dossier_id"]: i["reason"] for i in progress["items"] if i["outcome"] == "skipped"}


async def test_eligible_are_sent_and_ineligible_skipped_with_their_reason(client, db, firm, dev_env):
    ready = await ready_dossiers(db, firm, 3)
    incomplete = await dossiers.create_dossier(
        db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
    )
    other_firm = await firms.create_firm(db, name="Autre", siren="552081317")
    foreign = await dossiers.create_dossier(
        db, other_firm.id, name="Pas à nous", siret=None, legal_representative=None
    )
    legacy = await stored_before_the_siren_rule(db, firm)
    gone = await dossiers.create_dossier(  # a client who left
        db, firm.id, name="Parti", siret=establishment_siret(50), legal_representative=CLIENT_REP
    )
    await dossiers.archive_dossier(db, firm.id, gone.id)
    ids = [str(d.id) for d in [*ready, incomplete, foreign, legacy, gone]] + [str(uuid4())]

    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [*ids, ids[0]]})  # a duplicate id too
    assert created.status_code == 202 and created.json()["total"] == 8
    assert created.headers["location"] == f"/v1/bulk-sends/{created.json()['id']}"
    progress = await finished(client, created.json()["id"])
    assert (progress["sent"], progress["skipped"], progress["failed"], progress["in_progress"]) == (
        3,
        5,
        0,
        0,
    )
    assert progress["eta"] is None
    skipped = reasons(progress)
    assert skipped[str(gone.id)].startswith("the dossier is archived")
    assert "missing_information" in skipped[str(incomplete.id)]
    assert skipped[str(foreign.id)] == "dossier not found"
    # Each item names its dossier as the firm knows it; another firm's is as unknown as a random id.
    named = {item["dossier_id"]: (item["name"], item["siret"]) for item in progress["items"]}
    assert named[str(incomplete.id)] == ("Sans SIRET", None)
    assert named[str(ready[0].id)] == (ready[0].name, ready[0].siret)
    assert named[str(foreign.id)] == named[ids[-1]] == (None, None)
    assert "siren cannot number a mandate" in skipped[str(legacy.id)]
    for dossier in ready:
        _, mandate = await dossiers.get_dossier(db, firm.id, dossier.id)
        assert mandate.status == "pending" and mandate.bulk_send_id is not None
    # 8 items in pages of 2: four runs, each continued as new from the one before, and every child
    # outlived its run.
    workflow_id, runs, run_id = bulk_workflow_id(created.json()["id"]), 0, None
    while True:
        handle = dev_env.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        # Each run replays: the last one finishes the batch, the others start a page and continue as new.
        await replay_and_keep(handle, f"bulk_send_run_{'last' if runs == 0 else 'page'}")
        runs += 1
        if not (
            run_id := history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        ):
            break
    assert runs == 4


async def test_a_draft_the_firm_previewed_is_sent_as_it_was_previewed(client, db, firm, emulator):
    ready = await ready_dossiers(db, firm, 3)
    draft = (await client.post(f"/v1/dossiers/{ready[0].id}/mandate")).json()
    previewed = await eventually(lambda: _preview(client, ready[0].id))
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id) for d in ready]})
    progress = await finished(client, created.json()["id"])
    assert (progress["sent"], progress["skipped"], progress["failed"]) == (3, 0, 0)
    _, mandate = await dossiers.get_dossier(db, firm.id, ready[0].id)
    # The same mandate, number and document: no second one generated behind the firm's back.
    assert (str(mandate.id), mandate.number, mandate.status) == (draft["id"], draft["number"], "pending")
    assert str(mandate.bulk_send_id) == created.json()["id"]
    assert (await client.get(f"/v1/dossiers/{ready[0].id}/mandate/document")).content == previewed
    requests = [s for s in emulator.state.signature_requests.values() if s.external_id == str(mandate.id)]
    assert len(requests) == 1 and requests[0].status == "ongoing"


async def test_a_draft_whose_workflow_is_gone_fails_saying_so(client, db, firm, dev_env):
    ready = await ready_dossiers(db, firm, 1)
    draft = (await client.post(f"/v1/dossiers/{ready[0].id}/mandate")).json()
    await eventually(lambda: _preview(client, ready[0].id))
    workflow_id = await db.fetchval("SELECT workflow_id FROM mandates WHERE id = $1", draft["id"])
    await dev_env.client.get_workflow_handle(workflow_id).terminate("an operator's mistake")
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(ready[0].id)]})
    progress = await finished(client, created.json()["id"])
    assert progress["failed"] == 1
    assert "delete it and generate a new one" in progress["items"][0]["reason"]
    # And the firm can do as told: nothing was sent, so it goes without its run.
    assert (await client.delete(f"/v1/dossiers/{ready[0].id}/mandate")).status_code == 204
    assert (await client.post(f"/v1/dossiers/{ready[0].id}/mandate")).status_code == 201


async def test_a_mandate_reserved_by_a_batch_terminated_before_starting_it_can_be_deleted(
    client, db, firm, dev_env
):
    [dossier] = await ready_dossiers(db, firm, 1)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    run = await start_bulk_send_workflow(dev_env.client, test_settings(), batch)  # (a queue no one polls)
    # Its page reserved, then the run terminated before it started the mandate's own run.
    now = datetime.now(UTC)
    reserved, _ = await bulk.reserve_page(db, batch, start=0, size=10, at=now, issued_on=now.date())
    assert [m.dossier_id for m in reserved] == [dossier.id]
    path = f"/v1/dossiers/{dossier.id}/mandate"
    # While its batch runs, its next step starts the mandate's run: not "over", just not started yet.
    for refused in (await client.delete(path), await client.post(f"{path}/reminders")):
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith("the mandate is waiting for its bulk send to start it")
    await run.terminate("stopped by an operator")
    assert (await client.get(path)).json()["status"] == "sending"  # and would stay so for ever
    reminded = await client.post(f"{path}/reminders")
    assert reminded.status_code == 409
    assert reminded.json()["detail"].startswith("the mandate's bulk send ended before sending it: delete it")
    assert (await client.delete(path)).status_code == 204
    [item] = await bulk.items(db, batch.id)
    assert (item.outcome, item.reason) == ("skipped", "its bulk send's run ended before it was sent")
    assert (await client.post(path)).status_code == 201  # the dossier can have its mandate


async def _preview(client, dossier_id) -> bytes | None:
    answer = await client.get(f"/v1/dossiers/{dossier_id}/mandate/document")
    return answer.content if answer.status_code == 200 else None


async def test_a_start_whose_answer_was_lost_is_not_reported_as_failed(client, db, firm, monkeypatch):
    from starter.api.routes import bulk as bulk_route

    monkeypatch.setattr(
        bulk_route, "start_bulk_send_workflow", answer_lost(bulk_route.start_bulk_send_workflow)
    )
    ready = await ready_dossiers(db, firm, 2)
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id) for d in ready]})
    assert created.status_code == 202, created.text
    assert (await finished(client, created.json()["id"]))["sent"] == 2


async def test_a_start_temporal_cannot_confirm_keeps_its_batch(client, db, firm, monkeypatch):
    from temporalio.client import WorkflowHandle

    from starter.api.routes import bulk as bulk_route

    async def slow(*args, **kwargs):  # Temporal slow: neither the start nor the check is answered
        raise RPCError("Deadline Exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")

    monkeypatch.setattr(bulk_route, "start_bulk_send_workflow", slow)
    monkeypatch.setattr(WorkflowHandle, "describe", slow)
    ready = await ready_dossiers(db, firm, 1)
    refused = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(ready[0].id)]})
    assert refused.status_code == 503 and "may not have started" in refused.json()["detail"]
    # Kept as it is, not closed: its run may be under way; the sweep starts it if not.
    [batch] = (await client.get("/v1/bulk-sends", params={"limit": 1})).json()["items"]
    assert (batch["in_progress"], batch["skipped"], batch["done"]) == (1, 0, False)
    assert batch["id"] in refused.json()["detail"]
    # (Settled here, so that later tests' ETAs and sweeps do not count it.)
    await db.execute("UPDATE bulk_send_items SET outcome = 'skipped' WHERE bulk_send_id = $1", batch["id"])


async def test_a_failing_dossier_does_not_stop_the_others(client, db, firm, emulator):
    ready = await ready_dossiers(db, firm, 4)
    emulator.state.add_fault(method="POST", path_regex=r"/signers$", kind="400", times=1)
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id) for d in ready]})
    progress = await finished(client, created.json()["id"])
    assert (progress["sent"], progress["failed"]) == (3, 1)
    failed = next(i for i in progress["items"] if i["outcome"] == "failed")
    assert "400" in failed["reason"]


async def test_a_name_stored_before_yousigns_rule_fails_before_anything_reaches_yousign(
    client, db, firm, emulator
):
    ready = await ready_dossiers(db, firm, 2)
    await db.execute("UPDATE dossiers SET rep_last_name = 'Nguyễn' WHERE id = $1", ready[0].id)
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id) for d in ready]})
    progress = await finished(client, created.json()["id"])
    assert (progress["sent"], progress["failed"]) == (1, 1)
    failed = next(i for i in progress["items"] if i["outcome"] == "failed")
    assert "last name has characters YouSign refuses in a signer's name: 'ễ'" in failed["reason"]
    assert "correct the dossier" in failed["reason"]
    _, mandate = await dossiers.get_dossier(db, firm.id, ready[0].id)
    assert mandate.signature_request_id is None  # so a new batch or generate replaces it


async def test_a_new_batch_replaces_a_mandate_that_failed_before_yousign_had_it(
    client, db, firm, dev_env, emulator
):
    ready = await ready_dossiers(db, firm, 3)
    body = {"dossier_ids": [str(d.id) for d in ready]}
    emulator.state.add_fault(method="POST", path_regex=r"/signature_requests$", kind="400", times=1)
    first = await finished(client, (await client.post("/v1/bulk-sends", json=body)).json()["id"])
    assert (first["sent"], first["failed"]) == (2, 1)
    dossier_id = next(i["dossier_id"] for i in first["items"] if i["outcome"] == "failed")
    failed = await db.fetchrow("SELECT * FROM mandates WHERE dossier_id = $1", dossier_id)
    assert failed["signature_request_id"] is None  # nothing reached YouSign: nothing to withdraw

    # Sent again with the others: the failed one is replaced, the pending ones are left alone.
    second_id = (await client.post("/v1/bulk-sends", json=body)).json()["id"]
    second = await finished(client, second_id)
    assert (second["sent"], second["skipped"], second["failed"]) == (1, 2, 0)
    replacement = await client.get(f"/v1/dossiers/{dossier_id}/mandate")
    assert replacement.json()["status"] == "pending" and replacement.json()["id"] != str(failed["id"])
    events = await db.fetch(
        "SELECT cause FROM mandate_events WHERE mandate_id = $1 ORDER BY id", failed["id"]
    )
    assert events[-1]["cause"] == f"replaced by bulk send {second_id}"
    # The failed mandate's run, which waited to be deleted, ends.
    handle = dev_env.client.get_workflow_handle(failed["workflow_id"])
    state = await eventually(lambda: _closed(handle))
    assert state["status"] == "deleted"
    await replay_and_keep(handle, "mandate_replaced_by_bulk_send")


async def _closed(handle):
    description = await handle.describe()
    return await handle.result() if description.close_time is not None else None


async def test_the_cli_lists_what_failed_or_was_skipped_and_exits_1(api, db, firm, emulator, tmp_path):
    from typer.testing import CliRunner

    from starter.cli import app

    ready = await ready_dossiers(db, firm, 2)
    incomplete = await dossiers.create_dossier(
        db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
    )
    emulator.state.add_fault(method="POST", path_regex=r"/signers$", kind="400", times=1)
    listing = tmp_path / "clients.csv"
    rows = "".join(f"{d.id};Client\n" for d in [*ready, incomplete])
    listing.write_text(f"dossier_id;nom\n{rows}", encoding="cp1252")
    env = {"MANDATES_API_KEY": await firms.issue_api_key(db, firm.id), "MANDATES_API_URL": f"{api}/v1"}
    # The CLI is synchronous: in a thread, while this loop serves the API.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["bulk", "send", "--csv", str(listing)], env=env
    )
    assert result.exit_code == 1, result.output
    assert "Done: sent 1 · skipped 1 · failed 1" in result.output
    listed = re.finditer(r"^  (skipped|failed) +(.*)\(.*([0-9a-f-]{36})\)", result.output, re.M)
    problems = {match[3]: match[1] for match in listed}
    assert problems.get(str(incomplete.id)) == "skipped"
    assert f"skipped  {incomplete.name} (no SIRET, {incomplete.id})" in result.output  # as the firm knows it
    assert [problems.get(str(d.id)) for d in ready].count("failed") == 1


async def test_a_repeated_request_does_not_send_twice(client, db, firm, emulator):
    ready = await ready_dossiers(db, firm, 3)
    body = {"dossier_ids": [str(d.id) for d in ready]}
    first = await finished(client, (await client.post("/v1/bulk-sends", json=body)).json()["id"])
    second = await finished(client, (await client.post("/v1/bulk-sends", json=body)).json()["id"])
    assert first["sent"] == 3 and second["skipped"] == 3 and second["sent"] == 0
    assert all("mandate_pending" in r for r in reasons(second).values())
    for dossier in ready:
        _, mandate = await dossiers.get_dossier(db, firm.id, dossier.id)
        requests = [s for s in emulator.state.signature_requests.values() if s.external_id == str(mandate.id)]
        assert len(requests) == 1


async def test_a_batch_whose_start_was_lost_is_started_by_the_sweep(db, firm, dev_env, yousign, emulator):
    from workflows.reconciliation import ReconciliationInput, YouSignReconciliationWorkflow

    ready = await ready_dossiers(db, firm, 2)
    # Recorded, then the gateway stopped before starting its run (and the stack stayed down for
    # days); and one recorded a moment ago, which the gateway is starting now.
    lost = await bulk.create_bulk_send(db, firm.id, [d.id for d in ready])
    await db.execute("UPDATE bulk_sends SET created_at = now() - interval '3 days' WHERE id = $1", lost.id)
    recent = await bulk.create_bulk_send(db, firm.id, [ready[0].id])
    # And one an operator stopped before its first page: settled, never started again.
    stopped = await bulk.create_bulk_send(db, firm.id, [ready[1].id])
    await db.execute("UPDATE bulk_sends SET created_at = now() - interval '1 hour' WHERE id = $1", stopped.id)
    run = await start_bulk_send_workflow(dev_env.client, test_settings(), stopped)  # (a queue no one polls)
    await run.terminate("stopped by an operator")
    settings = test_settings()
    async with running_workers(dev_env.client, settings, db, yousign):
        swept = await dev_env.client.execute_workflow(
            YouSignReconciliationWorkflow.run,
            ReconciliationInput(yousign_task_queue=settings.yousign_task_queue),
            id=f"sweep-{uuid4()}",
            task_queue=settings.temporal_task_queue,
        )
        assert swept.bulk_sends_started == 1  # what operators read as the round's result

        async def sent():
            return (await bulk.outcome_counts(db, lost.id))["sent"] == 2

        await eventually(sent, within=60)
    with pytest.raises(RPCError) as unknown:  # left to the gateway
        await dev_env.client.get_workflow_handle(bulk_workflow_id(recent.id)).describe()
    assert unknown.value.status == RPCStatusCode.NOT_FOUND
    [item] = await bulk.items(db, stopped.id)
    assert (item.outcome, item.reason) == ("skipped", "the bulk send's run ended (terminated)")
    assert (await bulk.get_bulk_send(db, firm.id, stopped.id)).finished_at is not None


async def test_a_batch_terminated_mid_way_is_settled_by_the_sweep(db, firm, dev_env, yousign):
    from workflows.reconciliation import ReconciliationInput, YouSignReconciliationWorkflow

    *ready, other, forgotten_one = await ready_dossiers(db, firm, 7)
    now = datetime.now(UTC)
    # The firm previewed a draft for the third dossier: the batch adopts it rather than number another.
    draft = await mandates.reserve_mandate(db, firm.id, ready[2].id, issued_on=now.date())
    await mandates.save_document(db, draft.id, "generated", b"%PDF-1.4 previewed")
    batch = await bulk.create_bulk_send(db, firm.id, [d.id for d in ready])
    run = await start_bulk_send_workflow(dev_env.client, test_settings(), batch)  # (a queue no one polls)
    # Its first page reserved (four dossiers), then an operator terminated the run: it had started
    # the second and fourth mandates' runs (and terminated the second's too, by its BulkSendId), not
    # the first's, and had not signalled the draft. The fifth dossier is still queued.
    reserved, _ = await bulk.reserve_page(db, batch, start=0, size=4, at=now, issued_on=now.date())
    assert reserved[2].id == draft.id
    await run.terminate("stopped by an operator")
    for mandate in (reserved[1], reserved[3]):  # (a queue no one polls: they never get further)
        await dev_env.client.start_workflow("MandateWorkflow", id=mandate.workflow_id, task_queue="nobody")
    await dev_env.client.get_workflow_handle(reserved[1].workflow_id).terminate("stopped by an operator")
    # A batch whose run goes on (paced, or waiting for a worker): left alone.
    paced = await bulk.create_bulk_send(db, firm.id, [other.id])
    await start_bulk_send_workflow(dev_env.client, test_settings(), paced)  # (a queue no one polls)
    await bulk.reserve_page(db, paced, start=0, size=1, at=now, issued_on=now.date())
    # And one whose run Temporal no longer knows (closed past its retention) after its first page.
    forgotten = await bulk.create_bulk_send(db, firm.id, [forgotten_one.id])
    await bulk.reserve_page(db, forgotten, start=0, size=1, at=now, issued_on=now.date())
    await db.execute(
        "UPDATE bulk_sends SET created_at = now() - interval '1 hour' WHERE firm_id = $1", firm.id
    )
    settings = test_settings()
    async with running_workers(dev_env.client, settings, db, yousign):
        await dev_env.client.execute_workflow(
            YouSignReconciliationWorkflow.run,
            ReconciliationInput(yousign_task_queue=settings.yousign_task_queue),
            id=f"sweep-{uuid4()}",
            task_queue=settings.temporal_task_queue,
        )
    ended, unsent = "the bulk send's run ended (terminated)", bulk.RUN_ENDED_UNSENT
    assert [(i.outcome, i.reason) for i in await bulk.items(db, batch.id)] == [
        ("skipped", unsent),
        ("skipped", unsent),
        ("skipped", f"{ended}: the draft stays the firm's"),
        ("sending", None),  # its own run goes on: it settles the item
        ("skipped", ended),
    ]
    statuses = [(await mandates.get_mandate(db, m.id)).status for m in reserved]
    assert statuses == ["deleted", "deleted", "draft", "sending"]
    assert (await mandates.get_mandate(db, draft.id)).bulk_send_id is None  # the firm's draft again
    assert (await bulk.get_bulk_send(db, firm.id, batch.id)).finished_at is not None
    assert [(i.outcome, i.reason) for i in await bulk.items(db, forgotten.id)] == [("skipped", unsent)]
    assert (await bulk.get_bulk_send(db, firm.id, forgotten.id)).finished_at is not None
    assert [i.outcome for i in await bulk.items(db, paced.id)] == ["sending"]
    assert (await bulk.get_bulk_send(db, firm.id, paced.id)).finished_at is None
    # The dossiers set aside can have their mandate again; no batch counts them as left to send.
    for dossier in (ready[0], ready[1], ready[4], forgotten_one):
        refreshed, _ = await dossiers.get_dossier(db, firm.id, dossier.id)
        assert refreshed.einvoicing_status == "ready_for_mandate"


async def test_a_batch_of_unknown_ids_is_done_at_once_without_a_run(client, dev_env):
    created = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(uuid4()) for _ in range(3)]})
    assert created.status_code == 202 and created.json()["total"] == 3
    progress = (await client.get(created.headers["location"])).json()
    assert (progress["done"], progress["skipped"], progress["eta"]) == (True, 3, None)
    assert set(reasons(progress).values()) == {"dossier not found"}
    with pytest.raises(RPCError) as no_run:
        await dev_env.client.get_workflow_handle(bulk_workflow_id(created.json()["id"])).describe()
    assert no_run.value.status == RPCStatusCode.NOT_FOUND


async def test_unverified_firm_skips_everything(client, db, firm):
    await firms.set_platform(db, firm.id, Platform(name="PA", matricule="0042"))
    submission = await kyc.create_submission(
        db, firm.id, FIRM_REP, "passport", [KycFile(side="front", content_type="image/png", content=b"x")]
    )
    assert submission.status == "pending"
    dossier = await dossiers.create_dossier(
        db, firm.id, name="A", siret=establishment_siret(1), legal_representative=CLIENT_REP
    )
    progress = await finished(
        client, (await client.post("/v1/bulk-sends", json={"dossier_ids": [str(dossier.id)]})).json()["id"]
    )
    assert reasons(progress) == {str(dossier.id): "the firm's legal representative is not verified"}


async def test_progress_items_are_paginated_and_scoped_to_the_firm(client, api, db, firm):
    ready = await ready_dossiers(db, firm, 3)
    bulk_id = (await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id) for d in ready]})).json()[
        "id"
    ]
    first = (await client.get(f"/v1/bulk-sends/{bulk_id}", params={"limit": 2})).json()
    rest = (
        await client.get(f"/v1/bulk-sends/{bulk_id}", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [i["dossier_id"] for i in first["items"] + rest["items"]] == [str(d.id) for d in ready]
    assert rest["next_cursor"] is None
    # A page that ends exactly at the last item has no cursor to an empty page.
    whole = (await client.get(f"/v1/bulk-sends/{bulk_id}", params={"limit": 3})).json()
    assert (len(whole["items"]), whole["next_cursor"]) == (3, None)
    openapi = (await client.get("/openapi.json")).json()
    parameters = openapi["paths"]["/v1/bulk-sends/{bulk_send_id}"]["get"]["parameters"]
    assert next(p["schema"]["default"] for p in parameters if p["name"] == "limit") == 50  # as every list
    other = await firm_client(db, api, await firms.create_firm(db, name="Autre", siren="552081317"))
    async with other.http as intruder:
        assert (await intruder.get(f"/v1/bulk-sends/{bulk_id}")).status_code == 404
    await finished(client, bulk_id)


async def test_the_firms_batches_are_listed_newest_first_with_their_counts(client, api, db, firm):
    ready = await ready_dossiers(db, firm, 2)
    incomplete = await dossiers.create_dossier(
        db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
    )
    ids = [
        (await client.post("/v1/bulk-sends", json={"dossier_ids": [str(d.id)]})).json()["id"] for d in ready
    ]
    ids.append((await client.post("/v1/bulk-sends", json={"dossier_ids": [str(incomplete.id)]})).json()["id"])
    for bulk_id in ids:
        await finished(client, bulk_id)
    first = (await client.get("/v1/bulk-sends", params={"limit": 2})).json()
    rest = (await client.get("/v1/bulk-sends", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    listed = first["items"] + rest["items"]
    assert [b["id"] for b in listed][:3] == ids[::-1]  # newest first (earlier tests' batches after)
    assert {k: listed[0][k] for k in ("total", "sent", "skipped", "failed", "in_progress", "done")} == {
        "total": 1,
        "sent": 0,
        "skipped": 1,
        "failed": 0,
        "in_progress": 0,
        "done": True,
    }
    assert (listed[1]["sent"], listed[2]["sent"]) == (1, 1)
    assert (await client.get("/v1/bulk-sends", params={"cursor": "nope"})).status_code == 422
    # And from the CLI, as a firm whose `bulk send` lost the API's answer looks for its batch.
    from typer.testing import CliRunner

    from starter.cli import app

    env = {"MANDATES_API_KEY": await firms.issue_api_key(db, firm.id), "MANDATES_API_URL": f"{api}/v1"}
    result = await asyncio.to_thread(CliRunner().invoke, app, ["bulk", "list", "--limit", "3"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ids[::-1]
    assert lines[0].endswith("1 dossier(s): sent 0 · skipped 1 · failed 0 · done")
    other = await firm_client(db, api, await firms.create_firm(db, name="Autre", siren="552081317"))
    async with other.http as intruder:
        assert (await intruder.get("/v1/bulk-sends")).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dossier_ids": []}, "dossier_ids"),
        ({"dossier_ids": ["x"]}, "dossier_ids.0"),
        ({}, "dossier_ids"),
        ({"dossier_ids": [str(uuid4())], "dossier": "misspelt"}, "dossier"),
    ],
)
async def test_bad_bulk_requests_name_the_field(client, body, field):
    answer = await client.post("/v1/bulk-sends", json=body)
    assert answer.status_code == 422 and field in {e["field"] for e in answer.json()["errors"]}


async def test_too_many_dossiers_is_refused(client):
    answer = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(uuid4()) for _ in range(10_001)]})
    assert answer.status_code == 422


async def test_cli_sends_from_a_csv_and_reattaches(api, db, firm, tmp_path):
    import asyncio

    from typer.testing import CliRunner

    from starter.cli import app

    ready = await ready_dossiers(db, firm, 2)
    key = await firms.issue_api_key(db, firm.id)
    listing = tmp_path / "clients.csv"
    listing.write_text("dossier_id,name\n" + "".join(f"{d.id},{d.name}\n" for d in ready))
    env = {"MANDATES_API_URL": api, "MANDATES_API_KEY": key}
    runner = CliRunner()
    # The API runs on this event loop: the (blocking) CLI runs in a thread beside it.
    started = await asyncio.to_thread(
        runner.invoke, app, ["bulk", "send", "--csv", str(listing), "--detach"], env=env
    )
    assert started.exit_code == 0, started.output
    bulk_id = re.search(r"Bulk send ([0-9a-f-]{36}): 2 dossier\(s\)", started.output).group(1)
    assert f"python -m starter.cli bulk watch {bulk_id}" in started.output
    watched = await asyncio.to_thread(runner.invoke, app, ["bulk", "watch", bulk_id], env=env)
    assert watched.exit_code == 0 and "Done: sent 2 · skipped 0 · failed 0" in watched.output
    # Sent again (semicolons, as French Excel writes them, and the /v1 URL make run prints): each
    # dossier is skipped, and the watch ends by listing them with the reason.
    listing.write_text("Dossier ID;Nom\n" + "".join(f"{d.id};{d.name}\n" for d in ready))
    again = await asyncio.to_thread(
        runner.invoke,
        app,
        ["bulk", "send", "--csv", str(listing)],
        env={**env, "MANDATES_API_URL": f"{api}/v1"},
    )
    assert again.exit_code == 0 and "Done: sent 0 · skipped 2 · failed 0" in again.output, again.output
    assert all(
        f"skipped  {d.name} ({spaced_siret(d.siret)}, {d.id})  the dossier is mandate_pending" in again.output
        for d in ready
    ), again.output
    refused = await asyncio.to_thread(runner.invoke, app, ["bulk", "send", "not-a-uuid"], env=env)
    assert refused.exit_code == 2 and "not dossier ids: argument 1: 'not-a-uuid'" in refused.output


async def test_firms_take_turns_on_the_yousign_queue(dev_env, db, firm, emulator, yousign, smtp_sink):
    # About 4 sends a second: a firm's 16-dossier batch takes 4 s; another firm's 3-dossier batch,
    # asked for just after, is not kept waiting behind it (config.temporal.firm_fairness).
    limits = {"yousign_requests_per_minute": 960, "yousign_requests_per_hour": 57_600}
    big_firm = await firms.create_firm(db, name="Grand cabinet", siren="552081317")
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink, **limits) as base_url:
        big_api, small_api = await firm_client(db, base_url, big_firm), await firm_client(db, base_url, firm)
        big_ids = [str(d.id) for d in await ready_dossiers(db, big_firm, 16)]
        small_ids = [str(d.id) for d in await ready_dossiers(db, firm, 3)]
        async with big_api.http as big, small_api.http as small:
            big_batch = (await big.post("/v1/bulk-sends", json={"dossier_ids": big_ids})).json()["id"]

            async def big_under_way():  # its first sent: the others are waiting on the queue
                progress = (await big.get(f"/v1/bulk-sends/{big_batch}")).json()
                return progress["sent"] >= 1

            await eventually(big_under_way, within=30, interval=0.05)
            small_batch = (await small.post("/v1/bulk-sends", json={"dossier_ids": small_ids})).json()["id"]
            await finished(small, small_batch)
            await finished(big, big_batch)
    firm_of = {
        str(row["id"]): row["firm_id"]
        for row in await db.fetch(
            "SELECT id, firm_id FROM mandates WHERE bulk_send_id = ANY($1::uuid[])", [big_batch, small_batch]
        )
    }
    # YouSign's requests in the order they were made: their external_id is the mandate's id.
    made = [
        firm_of[sr.external_id]
        for sr in emulator.state.signature_requests.values()
        if sr.external_id in firm_of
    ]
    assert len(made) == 19
    last_small = max(i for i, firm_id in enumerate(made) if firm_id == firm.id)
    # In arrival order, the small batch would have waited for all 16: here most were still to go.
    assert made[:last_small].count(big_firm.id) <= 10, made


async def test_the_eta_is_the_sends_left_at_the_yousign_queues_cap(
    dev_env, db, firm, emulator, yousign, smtp_sink, monkeypatch
):
    # YouSign's production limits: about 300 sends an hour (4 calls each), just under.
    limits = {"yousign_requests_per_minute": 60, "yousign_requests_per_hour": 1200}
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink, **limits) as base_url:
        firm_api = await firm_client(db, base_url, firm)
        # Another firm's batch of 5, earlier: firms take turns on the YouSign queue, so 3 of its
        # sends go before our last one. Our own earlier batch's 2 go before ours, all of them.
        other = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
        await bulk.create_bulk_send(db, other.id, [d.id for d in await ready_dossiers(db, other, 5)])
        ready = await ready_dossiers(db, firm, 5)
        await bulk.create_bulk_send(db, firm.id, [d.id for d in ready[3:]])
        batch = await bulk.create_bulk_send(db, firm.id, [d.id for d in ready[:3]])  # recorded, not started
        own, others = await bulk.backlogs(db, batch)  # and any earlier test's other firms left unsent
        assert own == 5 and 5 in others
        async with firm_api.http as client:
            before = datetime.now(UTC)
            progress = (await client.get(f"/v1/bulk-sends/{batch.id}")).json()
            # Then nothing moves for 20 minutes, here or anywhere (YouSign down, say): it says since when.
            stopped = before - timedelta(minutes=20)

            async def nothing_since(db, bulk_send_id):
                assert bulk_send_id == batch.id
                return stopped, datetime.now(UTC)

            monkeypatch.setattr(bulk, "last_progress", nothing_since)
            stalled = (await client.get(f"/v1/bulk-sends/{batch.id}")).json()
    assert progress["in_progress"] == 3 and not progress["done"]
    assert progress["stalled_since"] is None  # just recorded: its items moved a moment ago
    assert datetime.fromisoformat(stalled["stalled_since"]) == stopped
    assert stalled["eta"] is None  # not a time that moves on while nothing does
    sends = 5 + sum(min(n, 5) for n in others)
    expected = timedelta(seconds=sends / activity_rate_limit(60, 1200, MAX_CALLS_PER_ACTIVITY))
    assert expected > timedelta(seconds=10 * 12)  # 10 of 300 an hour, and a little more
    eta = datetime.fromisoformat(progress["eta"])
    assert before + expected <= eta <= datetime.now(UTC) + expected
