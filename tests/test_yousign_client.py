"""The YouSign client against the emulator over real HTTP: lifecycle, typed errors, faults, conformance."""

from __future__ import annotations

import asyncio
import io
import socket
from datetime import date, timedelta
from urllib.parse import parse_qs
from uuid import uuid4

import httpx
import pytest
import uvicorn
from PIL import Image

from clients.yousign import YouSignClient
from clients.yousign_errors import YouSignFinalError, YouSignRetryableError
from clients.yousign_models import (
    DateMention,
    MentionPlacement,
    NewSignatureRequest,
    NewSigner,
    SignatureFieldPlacement,
)
from clients.yousign_webhooks import SIGNATURE_HEADER, WebhookEvent, signature_is_valid
from tests.conftest import WEBHOOK_SECRET
from tests.emulator.flows import api_client, limits_on_a_manual_clock, ready_draft, upload
from tests.helpers import eventually
from tests.support.yousign_openapi import YousignOpenApi, default_spec_path
from yousign_emulator import EmulatorSettings, running_emulator, sample_pdf

FIELD = SignatureFieldPlacement(page=1, x=100, y=600, width=200, height=80)
SIGNED_ON = DateMention(
    text="Signé le %date%", placement=MentionPlacement(page=1, x=100, y=684, width=200, height=24)
)
SIGNER = NewSigner(
    first_name="Jeanne", last_name="Martin", email="jeanne@acme.example", field=FIELD, date_mention=SIGNED_ON
)


def new_request() -> NewSignatureRequest:
    return NewSignatureRequest(
        name="Mandat ACME", external_id=str(uuid4()), expiration_date=date.today() + timedelta(days=31)
    )


def image(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


async def send_for_signature(yousign: YouSignClient):
    sr = await yousign.ensure_signature_request(new_request())
    document = await yousign.upload_document(sr.id, "mandat.pdf", sample_pdf())
    signer = await yousign.add_signer(sr.id, document.id, SIGNER)
    activated = await yousign.activate(sr.id)
    return activated, signer


@pytest.fixture(scope="module")
def openapi() -> YousignOpenApi:
    return YousignOpenApi.load(default_spec_path())


async def test_every_request_the_client_sends_conforms_to_yousigns_openapi(yousign, emulator, openapi):
    first = len(emulator.state.recorded_requests)
    draft = await yousign.create_signature_request(new_request())
    later = date.today() + timedelta(days=60)
    assert (await yousign.update_expiration_date(draft.id, later)).expiration_date.date() >= later
    activated, signer = await send_for_signature(yousign)
    assert (await yousign.find_signature_request(activated.external_id)).id == activated.id
    await yousign.send_reminder(activated.id, signer.id)
    await yousign.list_documents(activated.id)
    emulator.state.sign_signer(signer.id)
    assert (await yousign.get_signature_request(activated.id)).status == "done"
    yesterday = date.today() - timedelta(days=1)
    assert activated.id in [
        sr.id for sr in (await yousign.list_settled_signature_requests("done", yesterday))[0]
    ]
    assert (await yousign.download_signed_documents(activated.id)).startswith(b"%PDF")
    assert (await yousign.download_audit_trail(activated.id)).startswith(b"%PDF")
    other, _ = await send_for_signature(yousign)
    assert (
        await yousign.cancel(other.id, "contractualization_aborted", "Mandat expiré")
    ).status == "canceled"
    verification = await yousign.create_identity_verification(
        first_name="Paul",
        last_name="Expert",
        document_type="id_card",
        file=("front.jpg", image(640, 400), "image/jpeg"),
        additional_file=("back.jpg", image(640, 400), "image/jpeg"),
    )
    await yousign.create_identity_verification(
        first_name="Paul",
        last_name="Expert",
        document_type=None,  # driving licence: no YouSign type
        file=("permis.jpg", image(640, 400), "image/jpeg"),
    )
    assert (await yousign.get_identity_verification(verification.id)).id == verification.id

    sent = emulator.state.recorded_requests[first:]
    operations = {openapi.find_operation(r.method, r.path).operation_id for r in sent}
    assert len(operations) >= 13
    assert openapi.validate_all(sent) == len(sent)


async def test_create_is_exactly_once_after_a_timeout(emulator):
    # YouSign creates the request but the answer comes too late: the client's retry finds it.
    emulator.state.add_fault(
        method="POST",
        path_regex=r"^/v3/signature_requests$",
        kind="timeout_after_processing",
        delay_seconds=2,
    )
    request = new_request()
    async with YouSignClient(emulator.api_base_url, "test-key", timeout=0.5) as impatient:
        with pytest.raises(YouSignRetryableError, match="timed out") as lost:
            await impatient.create_signature_request(new_request())
        assert lost.value.maybe_done  # the answer was lost, not the request
        emulator.state.add_fault(
            method="POST",
            path_regex=r"^/v3/signature_requests$",
            kind="timeout_after_processing",
            delay_seconds=2,
        )
        sr = await impatient.ensure_signature_request(request)
        again = await impatient.ensure_signature_request(request)
    same = [s for s in emulator.state.signature_requests.values() if s.external_id == request.external_id]
    assert [s.id for s in same] == [sr.id] and again.id == sr.id


async def test_a_call_budget_stops_the_request_beyond_it_unsent(yousign, emulator):
    activated, _ = await send_for_signature(yousign)
    before = len(emulator.state.recorded_requests)
    with yousign.call_budget(2):
        await yousign.get_signature_request(activated.id)
        await yousign.get_signature_request(activated.id)
        with pytest.raises(YouSignRetryableError, match="call budget is spent"):
            await yousign.get_signature_request(activated.id)
    assert len(emulator.state.recorded_requests) == before + 2
    await yousign.get_signature_request(activated.id)  # outside the block: no budget
    assert len(emulator.state.recorded_requests) == before + 3


async def test_settled_requests_are_listed_page_by_page(yousign, emulator):
    first, first_signer = await send_for_signature(yousign)
    second, second_signer = await send_for_signature(yousign)
    emulator.state.sign_signer(first_signer.id)
    emulator.state.sign_signer(second_signer.id)
    yesterday = date.today() - timedelta(days=1)
    page, cursor = await yousign.list_settled_signature_requests("done", yesterday, limit=1)
    assert [sr.id for sr in page] == [second.id] and cursor  # newest first
    page, _ = await yousign.list_settled_signature_requests("done", yesterday, after=cursor, limit=1)
    assert [sr.id for sr in page] == [first.id]


async def test_5xx_is_retryable_and_the_caller_retries(yousign, emulator):
    activated, _ = await send_for_signature(yousign)
    emulator.state.add_fault(method="GET", path_regex=rf"/signature_requests/{activated.id}$", kind="503")
    with pytest.raises(YouSignRetryableError) as failed:
        await yousign.get_signature_request(activated.id)
    assert failed.value.status == 503 and failed.value.maybe_done  # a 5xx may come after the work
    assert (await yousign.get_signature_request(activated.id)).status == "ongoing"


async def test_the_signed_copy_before_the_request_is_done_is_not_yet_not_never(yousign, emulator):
    # A signer's `done` can come a moment before the request's: archiving then waits and retries.
    activated, signer = await send_for_signature(yousign)
    with pytest.raises(YouSignRetryableError) as early:
        await yousign.download_signed_documents(activated.id)
    assert early.value.error_type == "document.unable_to_download_signature_request_not_in_done"
    emulator.state.sign_signer(signer.id)
    assert (await yousign.download_signed_documents(activated.id)).startswith(b"%PDF")


async def test_final_errors_carry_yousigns_reason_and_are_sent_once(yousign, emulator):
    activated, _ = await send_for_signature(yousign)
    before = len(emulator.state.recorded_requests)
    with pytest.raises(YouSignFinalError) as refused:
        await yousign.add_signer(activated.id, activated.documents[0].id, SIGNER)  # not a draft any more
    assert refused.value.status == 400 and refused.value.error_type
    assert len(emulator.state.recorded_requests) == before + 1
    with pytest.raises(YouSignFinalError) as missing:
        await yousign.get_signature_request(str(uuid4()))
    assert (missing.value.status, missing.value.error_type) == (404, "resource.not_found")
    assert "404" in missing.value.describe()


async def test_validation_errors_name_the_parameter(yousign):
    sr = await yousign.ensure_signature_request(new_request())
    document = await yousign.upload_document(sr.id, "mandat.pdf", sample_pdf())
    out_of_page = SIGNER.model_copy(update={"field": FIELD.model_copy(update={"page": 9})})
    with pytest.raises(YouSignFinalError) as refused:
        await yousign.add_signer(sr.id, document.id, out_of_page)
    assert refused.value.error_type == "validation.error"
    assert any("page" in p["name"] for p in refused.value.invalid_params)


async def test_a_wrong_api_key_is_retried_until_it_is_set_right(emulator):
    async with YouSignClient(emulator.api_base_url, "wrong-key") as misconfigured:
        with pytest.raises(YouSignRetryableError, match="YOUSIGN_API_KEY") as refused:
            await misconfigured.find_signature_request("x")
    assert refused.value.status == 401 and not refused.value.maybe_done


async def test_429_is_honoured_with_retry_after():
    limits = EmulatorSettings(api_key="k", requests_per_minute=2)
    async with running_emulator(limits) as limited, YouSignClient(limited.api_base_url, "k") as yousign:
        clock = limits_on_a_manual_clock(limited, 2)
        await yousign.find_signature_request("a")
        await yousign.find_signature_request("b")
        clock.advance(20)
        with pytest.raises(YouSignRetryableError) as throttled:
            await yousign.find_signature_request("c")
        assert throttled.value.status == 429 and throttled.value.retry_after == 40  # the minute's rest
        assert not throttled.value.maybe_done  # refused before any work
        clock.advance(throttled.value.retry_after)
        assert await yousign.find_signature_request("c") is None  # waited as told: accepted
        assert len(limited.state.rejected_requests) == 1


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"RateLimit-Reset": "12"}, 12.0),
        # As YouSign's docs show a 429: only its budgets; the spent one says how long at most.
        ({"x-ratelimit-remaining-hour": "1197", "x-ratelimit-remaining-minute": "0"}, 60.0),
        ({"x-ratelimit-remaining-hour": "0", "x-ratelimit-remaining-minute": "0"}, 600.0),
        ({}, None),  # nothing said: the retry policy's own growing interval
    ],
)
def test_a_429_waits_as_long_as_its_headers_say(headers, wait):
    from clients.yousign import _retry_after, retry_after_seconds

    assert _retry_after(httpx.Response(429, headers=headers)) == wait
    error = YouSignRetryableError("429", retry_after=_retry_after(httpx.Response(429, headers=headers)))
    assert retry_after_seconds(error) == (None if wait is None else int(wait))


async def test_downloads_ask_for_one_pdf_and_refuse_anything_else(yousign, emulator):
    activated, signer = await send_for_signature(yousign)
    emulator.state.sign_signer(signer.id)
    before = len(emulator.state.recorded_requests)
    await yousign.download_signed_documents(activated.id)
    await yousign.download_audit_trail(activated.id)
    downloads = emulator.state.recorded_requests[before:]
    assert [parse_qs(r.query) for r in downloads] == [
        {"version": ["completed"], "archive": ["false"]},
        {"merge": ["true"]},
    ]
    # The PDF, or YouSign's JSON error when it is not ready yet (not a 406 that hides it).
    assert {r.headers.get("accept") for r in downloads} == {"application/pdf, application/json"}
    # A request with two documents (not one of ours) downloads as a ZIP even when asked for no archive.
    async with api_client(emulator) as api:
        draft, _, [person] = await ready_draft(api)
        await upload(api, draft["id"])
        assert (await api.post(f"/signature_requests/{draft['id']}/activate")).status_code == 201
    emulator.state.sign_signer(person["id"])
    with pytest.raises(YouSignFinalError) as refused:
        await yousign.download_signed_documents(draft["id"])
    assert refused.value.describe() == (
        "YouSign 200 not_a_pdf - the signed document came as application/zip, not a PDF"
    )  # what the activity's failure, and the operator, read


async def test_connection_errors_are_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with YouSignClient(f"http://127.0.0.1:{port}/v3", "k", timeout=1) as yousign:
        with pytest.raises(YouSignRetryableError, match="ConnectError") as unreached:
            await yousign.find_signature_request("x")
        assert not unreached.value.maybe_done  # never sent


async def test_webhooks_verify_with_the_documented_recipe(yousign, emulator):
    received: list[tuple[bytes, str | None]] = []

    async def receiver(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        received.append((body, headers.get(SIGNATURE_HEADER.lower())))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started))
    emulator.state.set_webhook_urls([f"http://127.0.0.1:{port}/hook"])
    try:
        activated, signer = await send_for_signature(yousign)
        emulator.state.sign_signer(signer.id)
        events = await eventually(
            lambda: asyncio.sleep(
                0, [b for b, _ in received if activated.id.encode() in b and b"signer.done" in b]
            )
        )
    finally:
        emulator.state.set_webhook_urls([])
        server.should_exit = True
        await task
    assert all(signature_is_valid(WEBHOOK_SECRET, body, header) for body, header in received)
    assert not signature_is_valid("another-secret", received[0][0], received[0][1])
    assert not signature_is_valid(WEBHOOK_SECRET, received[0][0] + b" ", received[0][1])
    assert not signature_is_valid(WEBHOOK_SECRET, received[0][0], None)
    event = WebhookEvent.model_validate_json(events[0])
    assert event.external_id == activated.external_id and isinstance(event.event_time, str)


async def test_worker_metrics_count_yousign_calls_by_outcome(emulator):
    import httpx

    from tests.helpers import free_port, test_settings
    from worker import metrics_runtime, yousign_client

    address = f"127.0.0.1:{free_port()}"
    settings = test_settings(yousign_base_url=emulator.api_base_url, yousign_api_key="test-key")
    runtime = metrics_runtime(settings.model_copy(update={"worker_metrics_address": address}))
    async with yousign_client(settings, runtime) as yousign:
        await yousign.find_signature_request("x")
        with pytest.raises(YouSignFinalError):
            await yousign.get_signature_request(str(uuid4()))

    async def scraped():
        async with httpx.AsyncClient() as prometheus:
            text = (await prometheus.get(f"http://{address}/metrics")).text
        return text if 'outcome="404"' in text else None

    text = await eventually(scraped)
    assert 'yousign_requests_total{method="GET",outcome="200"' in text


def test_a_long_yousign_reason_is_cut_to_what_temporal_keeps():
    from temporalio.exceptions import ApplicationError

    from activities.yousign import MAX_FAILURE_MESSAGE, yousign_errors

    with pytest.raises(ApplicationError) as failed, yousign_errors():
        raise YouSignRetryableError("POST signature_requests: " + "invalid parameter; " * 500)
    assert len(failed.value.message) == MAX_FAILURE_MESSAGE and failed.value.__cause__ is None


async def test_a_yousign_timeout_fails_the_attempt_with_a_failure_temporal_keeps_whole(emulator):
    """Temporal keeps an activity's last failure only up to a few KiB (bigger ones become "Failure
    exceeds size limit." in the UI): the retry reason of a YouSign outage stays readable there, as
    one short error, not with the chain of httpx and httpcore errors (and their stacks) behind it."""
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    from activities.yousign import yousign_errors
    from config.settings import Settings
    from config.temporal import data_converter

    emulator.state.add_fault(
        method="POST",
        path_regex=r"^/v3/signature_requests$",
        kind="timeout_after_processing",
        delay_seconds=1,
    )
    async with YouSignClient(emulator.api_base_url, "test-key", timeout=0.2) as impatient:
        with pytest.raises(Exception) as failed:
            with yousign_errors():
                await impatient.create_signature_request(new_request())
    key = "k1:" + "A" * 43 + "="  # a 32-byte key, as PAYLOAD_ENCRYPTION_KEYS holds them
    converter = data_converter(Settings(payload_encryption_keys=key, payload_encryption_key_id="k1"))
    failure = Failure()
    await converter.encode_failure(failed.value, failure)
    assert isinstance(failed.value, ApplicationError) and failed.value.type == "YouSignRetryableError"
    assert failure.ByteSize() < 2048, failure.ByteSize()  # the server warns from 2 KiB on
    assert not failure.HasField("cause")
    decoded = await converter.decode_failure(failure)
    assert decoded.message == "POST signature_requests: timed out (ReadTimeout)", decoded.message


def test_a_request_is_named_with_the_company_in_letters_digits_and_plain_punctuation():
    from clients.yousign_models import signature_request_name

    prefix = "Mandat facturation électronique - "
    assert signature_request_name("Boulangerie L'Épi d'Or (SARL)") == prefix + "Boulangerie L'Épi d'Or (SARL)"
    # No address or markup YouSign's "Safe String" might refuse.
    assert signature_request_name("L’Épi S.A.R.L.") == prefix + "L’Épi S.A.R.L."
    assert signature_request_name("https://acme.fr SAS") == prefix + "https acme.fr SAS"
    assert signature_request_name("<b>Durand</b> & Fils") == prefix + "b Durand b & Fils"
    assert signature_request_name("contact@durand.fr") == prefix + "contact durand.fr"
    long = signature_request_name("Société " + "très " * 40)
    assert len(long) <= 128 and long == long.rstrip() and long.startswith(prefix + "Société très")
    assert signature_request_name("@@@") == "Mandat facturation électronique"
