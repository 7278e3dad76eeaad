"""What operators rely on: runs searchable in visibility, payloads they can decode, the sweep's schedule."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest
from google.protobuf import json_format
from structlog.testing import capture_logs
from temporalio import activity
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.worker import Worker

from config.codec import EncryptionCodec
from config.startup import Unreachable
from config.temporal import data_converter
from starter.api.__main__ import stop_if_namespace_taken
from starter.deployment import (
    installation_id,
    refuse_foreign_namespace,
    warn_if_yousign_cap_differs,
    yousign_poll_marks,
)
from starter.workflows import RECONCILIATION_SUMMARY, ensure_reconciliation_schedule
from store import dossiers
from tests.api_support import api_stack, firm_client
from tests.helpers import (
    CLIENT_REP,
    FIRM_REP,
    TEST_ENCRYPTION_KEYS,
    eventually,
    free_port,
    test_settings,
    verified_firm_with_dossier,
)
from tests.test_api import mandate_reaches
from workflows.reconciliation import RECONCILIATION_SCHEDULE_ID, YouSignReconciliationWorkflow

ROOT = Path(__file__).resolve().parent.parent
CODEC_TOKEN = "codec-test-token"
INSTALLATION = uuid4()  # another deployment's database


async def test_runs_are_found_by_status_and_by_bulk_send(dev_env, db, firm, emulator, yousign, smtp_sink):
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink) as api:
        firm_api = await firm_client(db, api, firm)
        async with firm_api.http as client:
            single = await verified_firm_with_dossier(db, firm)
            await client.post(f"/v1/dossiers/{single.id}/mandate")
            await client.post(f"/v1/dossiers/{single.id}/mandate/send")
            await mandate_reaches(client, single.id, "pending")
            batched = await dossiers.create_dossier(
                db, firm.id, name="Autre SAS", siret="55208131766522", legal_representative=CLIENT_REP
            )
            batch = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(batched.id)]})
            bulk_id = batch.json()["id"]

            # "All pending mandates of firm X" and "everything from batch Y": one query each.
            pending = f"FirmId = '{firm.id}' AND MandateStatus = 'pending'"
            by_batch = f"BulkSendId = '{bulk_id}'"
            expected = {f"mandate-{single.id}-1", f"mandate-{batched.id}-1"}
            assert await eventually(lambda: _matches(dev_env.client, pending, expected))
            in_batch = {f"mandate-{batched.id}-1", f"bulk-{bulk_id}"}  # the batch's own run too
            assert await eventually(lambda: _matches(dev_env.client, by_batch, in_batch))
            # Everything of the firm: its mandates and its batch.
            of_firm = expected | {f"bulk-{bulk_id}"}
            assert await eventually(lambda: _matches(dev_env.client, f"FirmId = '{firm.id}'", of_firm))

    batch_run = await dev_env.client.get_workflow_handle(f"bulk-{bulk_id}").describe()
    assert await batch_run.static_summary() == "Bulk send of 1 dossier(s)"
    described = await dev_env.client.get_workflow_handle(f"mandate-{batched.id}-1").describe()
    attributes = {key.name: value for key, value in described.typed_search_attributes}
    ours = {"FirmId", "DossierId", "MandateStatus", "BulkSendId", "MandateExpiresAt"}
    assert ours <= set(attributes) <= ours | {"BuildIds"}  # BuildIds: set by Temporal itself
    assert attributes["DossierId"] == str(batched.id)  # ids, status and expiry only: no personal data


async def _matches(client, query: str, expected: set[str]) -> bool:
    return {w.id async for w in client.list_workflows(query)} == expected


def _all_payloads(events) -> list:
    """Every payload stored in these history events, wherever it sits in them."""
    found = []

    def walk(message):
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:  # e.g. search attributes: name -> payload
                items = list(value.values())
            else:
                items = [value] if hasattr(value, "ListFields") else list(value)  # one, or repeated
            for item in items:
                if not hasattr(item, "ListFields"):  # a map's scalar values
                    continue
                if item.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
                    found.append(item)
                else:
                    walk(item)

    for event in events:
        walk(event)
    return found


async def test_history_is_encrypted_and_the_codec_server_decodes_it(
    dev_env, db, firm, emulator, yousign, smtp_sink
):
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink, codec_auth_token=CODEC_TOKEN) as api:
        firm_api = await firm_client(db, api, firm)
        async with firm_api.http as client:
            dossier = await verified_firm_with_dossier(db, firm)
            mandate = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
            await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")
            await mandate_reaches(client, dossier.id, "pending")
            await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")

        # The raw history, as Temporal stores it: no name, no email, no SIRET in clear.
        history = await dev_env.client.get_workflow_handle(f"mandate-{dossier.id}-1").fetch_history()
        raw = history.to_json()
        stored = _all_payloads(history.events)  # their bytes are base64 in the JSON: looked at one by one
        for secret in (
            CLIENT_REP.email,
            CLIENT_REP.first_name,
            CLIENT_REP.last_name,
            FIRM_REP.email,
            "73282932000074",
        ):
            assert secret not in raw and not [p for p in stored if secret.encode() in p.data]
        # Everything is sealed but the search attributes (ids and statuses, for the UI's filters) and
        # the SDK's own patch markers (a patch's name: the SDK's core writes them, past our codec).
        patch_markers = _all_payloads(
            [e for e in history.events if e.marker_recorded_event_attributes.marker_name == "core_patch"]
        )
        assert patch_markers  # a draft's wait is gated by a patch
        assert all(p.metadata["encoding"] == b"json/plain" and b'"id":' in p.data for p in patch_markers)
        payloads = [p for p in stored if "type" not in p.metadata and p not in patch_markers]
        assert payloads and {p.metadata["encoding"] for p in payloads} == {b"binary/encrypted"}
        assert mandate["id"] not in raw  # even ids are inside the sealed payloads

        body = json_format.MessageToDict(Payloads(payloads=payloads))
        async with httpx.AsyncClient(base_url=api) as operator:
            refused = await operator.post("/codec/decode", json=body)
            assert refused.status_code == 401
            decoded = await operator.post(
                "/codec/decode",
                json=body,
                headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"},
            )
            assert decoded.status_code == 200
            clear = json_format.ParseDict(decoded.json(), Payloads()).payloads
            assert len(clear) == len(payloads)
            assert {p.metadata["encoding"] for p in clear} <= {b"json/plain", b"binary/null"}
            assert any(mandate["id"].encode() in p.data for p in clear)
            preflight = await operator.options(
                "/codec/decode",
                headers={"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"},
            )
            assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"


async def test_the_codec_says_what_it_takes_in_its_own_words():
    from starter.api.app import create_app

    app = create_app(test_settings())  # the codec needs neither database nor Temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as ui:
        shape = await ui.post("/codec/decode", json={"payloads": [[1]]})
        assert (shape.status_code, shape.json()["title"]) == (422, "Invalid request")
        assert shape.json()["detail"].startswith('payloads: not Temporal\'s payloads ({"payloads": [{')
        key = base64.b64encode(b"\xff").decode()
        not_text = {
            "payloads": [{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": key}}]
        }
        unreadable = await ui.post("/codec/decode", json=not_text)
        assert unreadable.json()["detail"] == "payloads: a metadata value is not UTF-8 text"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://evil.example"
    ) as far:
        assert (await far.post("/codec/decode", json={"payloads": []})).json()["title"] == "Forbidden"


async def test_only_the_codec_answers_the_temporal_ui_across_origins():
    from starter.api.app import create_app

    app = create_app(test_settings())  # a preflight needs neither database nor Temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as browser:

        async def allowed_origin(path: str) -> str | None:
            preflight = await browser.options(
                path,
                headers={
                    "Origin": "http://localhost:8233",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            return preflight.headers.get("access-control-allow-origin")

        assert await allowed_origin("/codec/decode") == "http://localhost:8233"
        # The firms' API is no page's to call from the operator's browser, key or not.
        assert await allowed_origin("/v1/dossiers") is None
        assert await allowed_origin("/v1/bulk-sends") is None
        assert await allowed_origin("/codecs") is None  # the codec's own paths only
        ui = {"Origin": "http://localhost:8233"}
        # The UI reads the codec's refusals too (here: no token, from a host that is not loopback's).
        refused = await browser.post("/codec/decode", json={"payloads": []}, headers=ui)
        assert refused.status_code == 403
        assert refused.headers["access-control-allow-origin"] == "http://localhost:8233"
        answered = await browser.get("/v1/dossiers", headers=ui)
        assert answered.status_code == 401 and "access-control-allow-origin" not in answered.headers


async def test_without_a_token_the_codec_answers_loopback_callers_under_its_own_names_only():
    from starter.api.app import create_app

    body = json_format.MessageToDict(
        Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    )

    async def encode(peer: str, host: str, **settings) -> int:
        app = create_app(test_settings(**settings))  # the codec needs neither database nor Temporal
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as browser:
            answer = await browser.post("/codec/encode", json=body, headers={"Host": host})
        return answer.status_code

    # make run: the UI in the operator's browser, on this machine.
    assert await encode("127.0.0.1", "127.0.0.1:8000") == 200
    assert await encode("::1", "[::1]:8000") == 200
    # A page of attacker.example whose name now resolves to 127.0.0.1 (DNS rebinding): refused.
    assert await encode("127.0.0.1", "attacker.example:8000") == 403
    assert await encode("127.0.0.1", "[::1") == 403  # no host at all
    assert await encode("127.0.0.1", "evil@localhost") == 403  # not a Host a browser sends
    # Another machine: refused, unless allowed (docker compose: the browser comes through Docker's
    # network), and then still only under the codec's own names.
    assert await encode("172.18.0.1", "localhost:8000") == 403
    assert await encode("172.18.0.1", "localhost:8000", codec_allow_any_client=True) == 200
    assert await encode("172.18.0.1", "attacker.example", codec_allow_any_client=True) == 403
    named = {"codec_allow_any_client": True, "codec_allowed_hosts": "ops.cabinet.internal"}
    assert await encode("10.0.0.7", "OPS.cabinet.internal:8000", **named) == 200
    # With a token, the token decides.
    assert await encode("10.0.0.7", "anything.example", codec_auth_token=CODEC_TOKEN) == 401


async def test_a_payload_that_does_not_decrypt_is_a_value_error_not_a_crash():
    codec = EncryptionCodec({"k": os.urandom(32)}, "k")
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    for data in (sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]), os.urandom(64), b"short"):
        with pytest.raises(ValueError, match="does not decrypt with key id 'k'"):
            await codec.decode([Payload(metadata=sealed.metadata, data=data)])
    assert (await codec.decode([sealed]))[0].data == b'"x"'


async def test_a_process_does_not_start_on_a_namespace_it_cannot_use(dev_env):
    from datetime import timedelta

    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
    from temporalio.client import Client

    from config.startup import Unreachable, _namespace_ready

    await _namespace_ready(dev_env.client, "default")  # the dev server has them all
    bare = f"bare-{uuid4().hex[:6]}"
    target = dev_env.client.service_client.config.target_host
    with pytest.raises(Unreachable, match="no namespace 'nowhere' \\(TEMPORAL_NAMESPACE\\)"):
        await _namespace_ready(await Client.connect(target, namespace="nowhere"), "nowhere")
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=bare, workflow_execution_retention_period=retention)
    )
    with pytest.raises(Unreachable, match="lacks the search attributes FirmId, DossierId, MandateStatus"):
        await _namespace_ready(await Client.connect(target, namespace=bare), bare)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def schedule(dev_env):
    """The namespace's sweep schedule (each test sets it up its own way, and deletes it)."""
    return dev_env.client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)


async def _delete(handle) -> None:
    with contextlib.suppress(RPCError):  # not there: nothing to delete
        await handle.delete()


async def test_the_reconciliation_schedule_is_created_once_and_follows_the_settings(dev_env, schedule):
    settings = test_settings()
    try:
        await ensure_reconciliation_schedule(dev_env.client, settings, INSTALLATION)
        # Every worker runs this at start: the second finds the schedule and updates it in place.
        queue = settings.temporal_task_queue
        slower = test_settings(reconciliation_interval="PT3H", temporal_task_queue=queue)
        await ensure_reconciliation_schedule(dev_env.client, slower, INSTALLATION)
        described = await schedule.describe()
        assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(hours=3)]
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        action = described.schedule.action
        assert action.workflow == YouSignReconciliationWorkflow.__name__
        assert action.task_queue == slower.temporal_task_queue
        # The sweep's runs are titled (sealed like every payload; the UI reads it through the codec).
        assert await dev_env.client.data_converter.decode([action.static_summary], [str]) == [
            RECONCILIATION_SUMMARY
        ]
        assert action.static_summary.ByteSize() < 400  # Temporal refuses a summary over 400 bytes
        # An operator paused it: a worker starting after does not resume it.
        await schedule.pause(note="YouSign maintenance")
        await ensure_reconciliation_schedule(dev_env.client, settings, INSTALLATION)
        state = (await schedule.describe()).schedule.state
        assert (state.paused, state.note) == (True, "YouSign maintenance")
    finally:
        await _delete(schedule)


async def test_a_process_on_another_database_refuses_the_namespace(dev_env, db, schedule, database_url):
    ours = await installation_id(db)
    try:
        assert await refuse_foreign_namespace(dev_env.client, db) == ours  # a new namespace: accepted
        # An API started then keeps an eye on it: nothing to say while no worker marked it.
        api = SimpleNamespace(should_exit=False)
        watching = stop_if_namespace_taken(api, dev_env.client, ours, every=0.01)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(watching, 0.3)
        assert not api.should_exit
        # A worker of another deployment (its own database) set the namespace's sweep up.
        await ensure_reconciliation_schedule(dev_env.client, test_settings(), INSTALLATION)
        refused = f"served by another database \\(installation {INSTALLATION}; DATABASE_URL here is"
        with pytest.raises(Unreachable, match=refused):
            await refuse_foreign_namespace(dev_env.client, db)
        # ...and the API already running stops, saying so.
        taken = await asyncio.wait_for(stop_if_namespace_taken(api, dev_env.client, ours, every=0.01), 5)
        assert api.should_exit and "is served by another database" in str(taken)
        # ...and so does a worker of ours setting the schedule (two deployments starting at once).
        with pytest.raises(Unreachable, match=refused.replace(str(INSTALLATION), ".*")):
            await ensure_reconciliation_schedule(dev_env.client, test_settings(), ours)
        # The processes themselves stop at once, saying so in one line.
        target = dev_env.client.service_client.config.target_host
        for program in (["worker.py"], ["-m", "starter.api"]):
            started = await asyncio.to_thread(_run_against, program, target, database_url)
            assert started.returncode == 1, started.stderr
            assert "is served by another database" in started.stderr and "Traceback" not in started.stderr
        # Written with keys this process does not have: another deployment's too, or a key missing.
        other_keys = "other:" + base64.b64encode(os.urandom(32)).decode()
        stranger = Client(
            dev_env.client.service_client,
            namespace=dev_env.client.namespace,
            data_converter=data_converter(
                test_settings(payload_encryption_keys=other_keys, payload_encryption_key_id="other")
            ),
        )
        await _delete(schedule)
        await ensure_reconciliation_schedule(stranger, test_settings(), INSTALLATION)
        with pytest.raises(Unreachable, match="set up with encryption keys this process does not have"):
            await refuse_foreign_namespace(dev_env.client, db)
        # Its own deployment's schedule (or one set by a version before the mark): accepted.
        await _delete(schedule)
        await ensure_reconciliation_schedule(dev_env.client, test_settings(), ours)
        assert await refuse_foreign_namespace(dev_env.client, db) == ours
    finally:
        await _delete(schedule)


def _run_against(program: list[str], temporal: str, database_url: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal,
        "DATABASE_URL": database_url,
        "PAYLOAD_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
        "PAYLOAD_ENCRYPTION_KEY_ID": "test",
        "WORKER_METRICS_ADDRESS": "",
        "API_PORT": str(free_port()),
    }
    return subprocess.run(
        [sys.executable, *program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_the_sweep_follows_a_renamed_task_queue_and_says_so(dev_env, db, schedule):
    ours = await installation_id(db)
    try:
        before = test_settings()
        await ensure_reconciliation_schedule(dev_env.client, before, ours)
        renamed = test_settings()
        with capture_logs() as logs:
            await ensure_reconciliation_schedule(dev_env.client, renamed, ours)
        assert (await schedule.describe()).schedule.action.task_queue == renamed.temporal_task_queue
        [warning] = [e for e in logs if e["log_level"] == "warning"]
        assert warning["schedule_queue"] == before.temporal_task_queue
        assert "TEMPORAL_TASK_QUEUE" in warning["event"]
    finally:
        await _delete(schedule)


async def test_a_worker_with_other_yousign_limits_is_reported(dev_env):
    queue = f"yousign-{uuid4().hex[:6]}"

    @activity.defn(name="noop")
    async def noop() -> None: ...

    async def polled_since(marks) -> bool:
        return any(await _live(dev_env.client, queue, marks))

    capped = {"activities": [noop], "max_task_queue_activities_per_second": 2.5}
    at_start = await yousign_poll_marks(dev_env.client, queue)
    assert at_start == {}  # nobody polled it yet
    async with Worker(dev_env.client, task_queue=queue, **capped):
        assert await eventually(lambda: polled_since(at_start))
        with capture_logs() as same:
            await warn_if_yousign_cap_differs(dev_env.client, queue, 2.5, at_start)
        with capture_logs() as other:
            await warn_if_yousign_cap_differs(dev_env.client, queue, 0.25, at_start)
    # All the workers replaced at once with new limits: the old ones, not seen since, are not compared.
    await asyncio.sleep(0.5)  # (the stopped worker's last polls are stamped as they end)
    replaced_at = await yousign_poll_marks(dev_env.client, queue)
    assert replaced_at
    with capture_logs() as replaced:
        await warn_if_yousign_cap_differs(dev_env.client, queue, 0.25, replaced_at)
    assert same == [] and replaced == []
    [error] = other
    assert error["log_level"] == "error" and error["others_per_second"] == [2.5]
    assert "YOUSIGN_REQUESTS_PER_MINUTE" in error["event"]


async def _live(client, queue: str, marks: dict) -> list[str]:
    now_marks = await yousign_poll_marks(client, queue)
    return [who for who, at in now_marks.items() if who not in marks or at > marks[who]]


async def test_the_workers_later_checks_stop_it_on_a_foreign_namespace_and_log_their_own_bugs(
    dev_env, monkeypatch
):
    import worker

    monkeypatch.setattr(worker, "LIVE_POLLER", timedelta(0))
    settings = test_settings()
    foreign = Unreachable("Temporal namespace 'default' (TEMPORAL_NAMESPACE) is served by another database")

    async def taken() -> None:
        raise foreign

    async def buggy() -> None:
        raise ValueError("a bug")

    stop = asyncio.Event()
    # The schedule was not set at start (Temporal failed then): tried again, found another's: stop.
    assert await worker._checks_once_polled(dev_env.client, settings, {}, False, taken, stop) is foreign
    assert stop.is_set()
    stop.clear()
    with capture_logs() as logs:
        assert await worker._checks_once_polled(dev_env.client, settings, {}, False, buggy, stop) is None
    assert not stop.is_set() and [e["event"] for e in logs] == ["start-up checks failed"]
    # Set at start: not tried again.
    assert await worker._checks_once_polled(dev_env.client, settings, {}, True, taken, stop) is None
