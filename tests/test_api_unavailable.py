"""The API when Temporal does not answer, or answers in ways the happy path never meets.

Over real HTTP, with the dev server, PostgreSQL and the emulator behind it (as tests/test_api.py);
Temporal's failures are simulated on its client's handle, as tests/test_api.py and test_bulk.py do.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from uuid import UUID, uuid4

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

import config.temporal
from clients.yousign_webhooks import sign_body
from config.temporal import connect_temporal
from starter import mandate_actions
from store import database, mandates, webhooks
from store.database import create_pool
from tests.api_support import firm_client, serving_api
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import (
    answer_lost,
    establishment_siret,
    eventually,
    test_settings,
    verified_firm_with_dossier,
)
from tests.support.freezable_proxy import FreezableProxy, tcp
from tests.workflow_support import running_workers

UNAVAILABLE = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


def raising(error: BaseException):
    async def temporal_fails(*args, **kwargs):
        raise error

    return temporal_fails


async def draft_with_its_document(client, db, firm, siret: str = "73282932000074") -> tuple[str, dict]:
    """A dossier's draft, its workflow running and its PDF made (the run then waits for the firm)."""
    dossier = await verified_firm_with_dossier(db, firm, siret)
    generated = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    assert generated.status_code == 201, generated.text
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")).status_code == 200
    return str(dossier.id), generated.json()


async def stored(db, mandate_id: str) -> tuple:
    """What the store holds of a mandate: its row and its event log."""
    row = await db.fetchrow("SELECT * FROM mandates WHERE id = $1", UUID(mandate_id))
    return dict(row), await mandates.events(db, UUID(mandate_id))


async def test_a_mandate_whose_start_answer_was_lost_is_kept_and_generated(
    client, db, firm, dev_env, monkeypatch
):
    monkeypatch.setattr(
        mandate_actions, "start_mandate_workflow", answer_lost(mandate_actions.start_mandate_workflow)
    )
    dossier = await verified_firm_with_dossier(db, firm)
    generated = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    assert generated.status_code == 201, generated.text  # not the 503 of a start that did not happen
    assert generated.headers["location"] == f"/v1/dossiers/{dossier.id}/mandate"
    mandate = generated.json()
    assert mandate["status"] == "draft"
    # Not discarded: the dossier's current mandate is this one, and its run (started) makes its PDF.
    assert (await mandates.get_mandate(db, UUID(mandate["id"]))).status == "draft"
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()["id"] == mandate["id"]
    workflow_id = await db.fetchval("SELECT workflow_id FROM mandates WHERE id = $1", UUID(mandate["id"]))
    await dev_env.client.get_workflow_handle(workflow_id).describe()  # the run exists
    document = await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")
    assert document.status_code == 200 and document.content.startswith(b"%PDF")


async def test_send_remind_and_delete_are_503_and_change_nothing_when_temporal_does_not_answer(
    client, db, firm, monkeypatch
):
    dossier_id, mandate = await draft_with_its_document(client, db, firm)
    before = await stored(db, mandate["id"])
    base = f"/v1/dossiers/{dossier_id}/mandate"
    monkeypatch.setattr(WorkflowHandle, "start_update", raising(UNAVAILABLE))
    for answer in [
        await client.post(f"{base}/send"),
        await client.post(f"{base}/reminders"),
        await client.delete(base),
    ]:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["detail"] == "the workflow service did not answer: connection refused"
    assert await stored(db, mandate["id"]) == before  # still the draft, nothing logged

    # An update that failed for a reason no refusal names: a 503 too, never a 409 or a 500.
    unknown = WorkflowUpdateFailedError(ApplicationError("the handler broke", type="SomethingElse"))
    monkeypatch.setattr(WorkflowHandle, "start_update", raising(unknown))
    odd = await client.post(f"{base}/send")
    assert (odd.status_code, odd.json()["detail"]) == (503, "the handler broke")
    no_application_error = WorkflowUpdateFailedError(RuntimeError("cancelled"))
    monkeypatch.setattr(WorkflowHandle, "start_update", raising(no_application_error))
    odder = await client.delete(base)
    assert (odder.status_code, odder.json()["detail"]) == (503, "Workflow update failed")
    assert await stored(db, mandate["id"]) == before

    monkeypatch.undo()  # Temporal back: the draft was left as it was, and goes as any draft
    assert (await client.delete(base)).status_code == 204
    assert (await mandates.get_mandate(db, UUID(mandate["id"]))).status == "deleted"


async def test_a_send_or_delete_whose_answer_was_lost_is_answered_as_done(client, db, firm, monkeypatch):
    dossier_id, mandate = await draft_with_its_document(client, db, firm)
    other_dossier_id, other = await draft_with_its_document(client, db, firm, establishment_siret(2))
    base = f"/v1/dossiers/{dossier_id}/mandate"
    start_update = WorkflowHandle.start_update

    async def done_then_lost(self, *args, **kwargs):
        await (await start_update(self, *args, **kwargs)).result()
        # What the SDK raises when one of its calls times out (an RPCError is its cause).
        raise WorkflowUpdateRPCTimeoutOrCancelledError()

    monkeypatch.setattr(WorkflowHandle, "start_update", done_then_lost)
    sent = await client.post(f"{base}/send")
    assert sent.status_code == 202 and sent.json()["status"] in ("sending", "pending"), sent.text
    # Not a 503 that a retry would meet as a 409 ("already being sent"): it was sent.
    assert (await mandates.get_mandate(db, UUID(mandate["id"]))).status in ("sending", "pending")
    deleted = await client.delete(f"/v1/dossiers/{other_dossier_id}/mandate")
    assert deleted.status_code == 204, deleted.text  # not a 503 that a retry would meet as a 404
    assert (await mandates.get_mandate(db, UUID(other["id"]))).status == "deleted"


async def test_an_action_no_worker_takes_is_a_503_in_bounded_time_and_done_once_one_runs(
    dev_env, db, firm, emulator, yousign, monkeypatch
):
    """Temporal up, no worker: an update waits unaccepted for as long as its caller does. The firm
    is answered 503 within ACCEPT_WITHIN, told the send may still happen, and it does once one runs."""
    monkeypatch.setattr(mandate_actions, "ACCEPT_WITHIN", timedelta(seconds=1))
    settings = test_settings(yousign_webhook_secret=WEBHOOK_SECRET)  # task queues no worker polls yet
    dossier = await verified_firm_with_dossier(db, firm)
    base = f"/v1/dossiers/{dossier.id}/mandate"
    async with serving_api(settings, db, dev_env.client) as base_url:
        firm_api = await firm_client(db, base_url, firm)
        async with firm_api.http as client:
            generated = await client.post(base)  # a start needs no worker
            assert generated.status_code == 201, generated.text
            before = await stored(db, generated.json()["id"])
            started = time.monotonic()
            sent = await client.post(f"{base}/send")
            assert time.monotonic() - started < 15  # not held for as long as the caller waits
            assert sent.status_code == 503, sent.text
            assert sent.json()["detail"] == (
                "no worker took the request within 1 s (are the workers running?); it may still be"
                " carried out later: read the mandate before trying again"
            )
            assert await stored(db, generated.json()["id"]) == before  # still the draft
            async with running_workers(dev_env.client, settings, db, yousign):
                # The update Temporal held is taken by the first worker: the mandate is sent.
                async def pending() -> bool:
                    return (await mandates.get_mandate(db, UUID(generated.json()["id"]))).status == "pending"

                await eventually(pending, within=60)
                again = await client.post(f"{base}/send")
                assert again.status_code == 409, again.text  # as the docs tell: read it first


async def test_the_projects_client_makes_every_call_it_bounds(dev_env, monkeypatch):
    """Starts, descriptions, signals and history reads go through the deadline; a run's result (a
    long poll) does not get it."""
    deadlines = []
    bounded = config.temporal._bounded
    monkeypatch.setattr(
        config.temporal, "_bounded", lambda input: deadlines.append(type(input).__name__) or bounded(input)
    )
    settings = test_settings()
    address = dev_env.client.service_client.config.target_host
    temporal = await connect_temporal(settings.model_copy(update={"temporal_address": address}))
    handle = await temporal.start_workflow("NoWorkerRunsThis", id=f"bounded-{uuid4()}", task_queue="nobody")
    await handle.describe()
    await handle.signal("anything")
    last = (await handle.fetch_history()).events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    await handle.terminate("done")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert deadlines == [
        "StartWorkflowInput",
        "DescribeWorkflowInput",
        "SignalWorkflowInput",
        "FetchWorkflowHistoryEventsInput",
    ]


async def test_a_generate_temporal_hangs_on_is_a_503_within_the_call_deadline(
    api, dev_env, db, firm, monkeypatch
):
    """Temporal stops answering (its connections open): the start, then the check whether it happened
    all the same, each give up at CALL_DEADLINE; the reservation is set aside, and once Temporal is
    back the dossier gets its mandate (the start that Temporal took late works on nothing)."""
    monkeypatch.setattr(config.temporal, "CALL_DEADLINE", timedelta(seconds=1))
    settings = test_settings()
    host, port = dev_env.client.service_client.config.target_host.rsplit(":", 1)
    dossier = await verified_firm_with_dossier(db, firm)
    async with FreezableProxy(tcp(host, int(port))).running() as proxy:
        address = f"127.0.0.1:{proxy.port}"
        temporal = await connect_temporal(settings.model_copy(update={"temporal_address": address}))
        async with serving_api(settings, db, temporal) as base_url:
            firm_api = await firm_client(db, base_url, firm)
            async with firm_api.http as client:
                proxy.freeze()
                started = time.monotonic()
                generated = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
                assert time.monotonic() - started < 10  # a minute with the SDK's own deadline
                assert generated.status_code == 503, generated.text
                assert generated.json()["detail"].startswith(
                    "the workflow service did not accept the mandate"
                )
                listed = (await client.get(f"/v1/dossiers/{dossier.id}")).json()
                assert (listed["einvoicing_status"], listed["mandate"]) == ("ready_for_mandate", None)
                proxy.thaw()
    async with httpx.AsyncClient(base_url=api, headers=client.headers) as client:
        generated = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
        assert generated.status_code == 201, generated.text
        document = await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")
        assert document.status_code == 200, document.text


def database_proxy(database_url: str) -> tuple[FreezableProxy, Callable[[int], str]]:
    """A proxy to the test database (on a Unix socket, as the embedded one, or TCP), and the URL
    through it once it has its port."""
    url = urlsplit(database_url)
    query = parse_qs(url.query)
    socket_dir, port = query.pop("host", [None])[0], url.port or 5432
    if socket_dir:
        proxy = FreezableProxy(lambda: asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}"))
    else:
        proxy = FreezableProxy(tcp(url.hostname or "127.0.0.1", port))
    credentials = url.netloc.rpartition("@")[0]

    def through(proxy_port: int) -> str:
        netloc = f"{credentials}@127.0.0.1:{proxy_port}" if credentials else f"127.0.0.1:{proxy_port}"
        return urlunsplit((url.scheme, netloc, url.path, urlencode(query, doseq=True), ""))

    return proxy, through


async def test_a_database_that_stops_answering_is_a_503_within_the_query_timeout(
    dev_env, db, database_url, firm, monkeypatch
):
    """PostgreSQL hung (or its connections silent after a failover): the API's queries give up at
    QUERY_TIMEOUT with a 503, and it answers again once PostgreSQL does."""
    monkeypatch.setattr(database, "QUERY_TIMEOUT", 1.0)
    monkeypatch.setattr(database, "CONNECT_TIMEOUT", 1.0)
    proxy, through = database_proxy(database_url)
    async with proxy.running():
        proxied = await create_pool(through(proxy.port), max_size=2)
        try:
            async with serving_api(test_settings(), proxied, dev_env.client) as base_url:
                firm_api = await firm_client(db, base_url, firm)
                async with firm_api.http as client:
                    assert (await client.get("/v1/dossiers")).status_code == 200
                    proxy.freeze()
                    for _ in range(3):  # the pool's connections, then a new one, each give up
                        started = time.monotonic()
                        listed = await client.get("/v1/dossiers")
                        # The query's 1 s and its cancel's 1 s, or a new connection's 1 s; for ever before.
                        assert time.monotonic() - started < 5
                        assert listed.status_code == 503, listed.text
                        assert listed.json()["detail"] == (
                            "the database did not answer (TimeoutError): retry in a moment"
                        )
                    proxy.thaw()

                    async def answers() -> bool:
                        return (await client.get("/v1/dossiers")).status_code == 200

                    await eventually(answers, within=30, interval=0.5)
        finally:
            proxy.thaw()
            await proxied.close()


def webhook(mandate_id: str) -> tuple[str, bytes, dict[str, str]]:
    """A YouSign event about our mandate (named by its external id), validly signed."""
    event_id = uuid4().hex
    body = json.dumps(
        {
            "event_id": event_id,
            "event_name": "signer.done",
            "event_time": "1700000000",
            "data": {"signature_request": {"external_id": mandate_id}},
        }
    ).encode()
    return event_id, body, {"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, body)}


async def test_a_webhook_temporal_cannot_take_is_503_then_one_for_an_ended_run_is_recorded(
    api, client, db, firm, dev_env, monkeypatch
):
    _, mandate = await draft_with_its_document(client, db, firm)
    event_id, body, headers = webhook(mandate["id"])
    async with httpx.AsyncClient(base_url=api) as yousign_side:
        with monkeypatch.context() as down:
            down.setattr(WorkflowHandle, "signal", raising(UNAVAILABLE))
            refused = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert (refused.json()["title"], refused.json()["detail"]) == (
            "Service unavailable",
            "connection refused",
        )
        assert not await webhooks.seen_webhook_event(db, event_id)  # so that YouSign's retry is processed

        # The run has ended since (an operator terminated it): Temporal answers not found.
        workflow_id = await db.fetchval("SELECT workflow_id FROM mandates WHERE id = $1", UUID(mandate["id"]))
        await dev_env.client.get_workflow_handle(workflow_id).terminate("an operator's mistake")
        before = await stored(db, mandate["id"])
        retried = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert retried.status_code == 200 and retried.json() == {"status": "ignored"}, retried.text
        assert await webhooks.seen_webhook_event(db, event_id)  # recorded: a redelivery is a duplicate
        again = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert again.json() == {"status": "duplicate"}
    assert await stored(db, mandate["id"]) == before


async def test_a_draft_whose_document_never_comes_says_so_once_it_is_not_just_starting(
    client, db, firm, monkeypatch
):
    from datetime import date

    from starter.api.routes import mandate as mandate_route

    # A draft reserved and never started (the gateway stopped in between): no run makes its PDF.
    # The wait is shortened: whatever its length, nothing will produce the document.
    monkeypatch.setattr(mandate_route, "GENERATION_WAIT_SECONDS", 0.3)
    dossier = await verified_firm_with_dossier(db, firm)
    draft = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 2, 1))
    answer = await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")
    assert answer.status_code == 409, answer.text
    assert answer.json()["detail"] == "the mandate document is being generated; try again in a moment"
    assert (await mandates.get_mandate(db, draft.id)).status == "draft"
    # Once it is clearly not just being started, it says that no document will come, and what to do.
    await db.execute("UPDATE mandates SET created_at = now() - interval '2 minutes' WHERE id = $1", draft.id)
    stale = await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")
    assert stale.status_code == 409 and stale.json()["detail"] == (
        "the mandate's workflow is not running, so its document will not be made:"
        " delete it and generate a new one"
    )
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204


async def test_the_codec_is_404_when_payload_encryption_is_not_configured():
    from starter.api.app import create_app

    body = json_format.MessageToDict(
        Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    )

    async def call(path: str, peer: str = "127.0.0.1", headers=None, **settings) -> httpx.Response:
        app = create_app(test_settings(payload_encryption_keys=None, **settings))
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as operator:
            return await operator.post(path, json=body, headers=headers)

    for path in ("/codec/encode", "/codec/decode"):
        answer = await call(path)
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] == "payload encryption is not configured"
        authorized = await call(path, headers={"Authorization": "Bearer t"}, codec_auth_token="t")
        assert authorized.status_code == 404
    # Who may not use the codec is refused first: a caller learns nothing of its configuration.
    assert (await call("/codec/decode", codec_auth_token="t")).status_code == 401
    assert (await call("/codec/decode", peer="10.0.0.7")).status_code == 403
