"""YouSign's webhook: authenticated by its HMAC, de-duplicated by event id, handed to a workflow."""

from __future__ import annotations

from uuid import UUID

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from clients.yousign_webhooks import SIGNATURE_HEADER, WebhookEvent, signature_is_valid
from domain.errors import NotFound
from starter.api.deps import AppSettings, Db, Temporal
from starter.api.problems import database_unavailable, problem, problem_responses
from starter.api.routes.metrics import WEBHOOK_SECONDS, WEBHOOKS
from starter.api.schemas import WebhookAck
from starter.webhook_events import kyc_signal, mandate_signal
from store import kyc, mandates, webhooks
from store.database import DATABASE_FAILURES
from workflows.kyc import KycWorkflow, kyc_workflow_id
from workflows.mandate import MandateWorkflow

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def _mandate_workflow_id(db, event: WebhookEvent) -> str | None:
    mandate = None
    if event.signature_request_id:
        mandate = await mandates.mandate_for_signature_request(db, event.signature_request_id)
    if mandate is None and event.external_id:  # the request id may not be stored yet
        try:
            mandate = await mandates.get_mandate(db, UUID(event.external_id))
        except (ValueError, NotFound):  # not one of our ids
            mandate = None
    return mandate.workflow_id if mandate else None


async def _route(db, temporal: Client, event: WebhookEvent) -> bool:
    """Signal the workflow the event is about; False when it is about nothing of ours."""
    if event.event_name == "verification.identity_document.done":
        verification_id = event.identity_document_id
        submission = verification_id and await kyc.submission_for_verification(db, verification_id)
        if not submission:
            return False
        handle = temporal.get_workflow_handle(kyc_workflow_id(submission.firm_id))
        await handle.signal(KycWorkflow.verification_done, kyc_signal(event))
        return True
    workflow_id = await _mandate_workflow_id(db, event)
    if workflow_id is None:
        return False
    await temporal.get_workflow_handle(workflow_id).signal(
        MandateWorkflow.yousign_event, mandate_signal(event)
    )
    return True


@router.post(
    "/yousign",
    response_model=WebhookAck,
    responses=problem_responses(
        400, 401, 408, 413, 503, meanings={401: "The X-Yousign-Signature-256 signature is missing or wrong"}
    ),
)
async def yousign_webhook(request: Request, db: Db, temporal: Temporal, settings: AppSettings):
    """For YouSign only (the URL to subscribe its webhook to): no API key, but the
    `X-Yousign-Signature-256` HMAC of the body with the subscription's secret. Each event (a
    signature, a decline, an identity check's result) goes to its mandate or check, once."""
    with WEBHOOK_SECONDS.time():
        try:
            answer = await _handle(request, db, temporal, settings)
        except HTTPException as refused:  # its body refused as it came in (too large, stalled)
            WEBHOOKS.labels(str(refused.status_code)).inc()
            raise
    WEBHOOKS.labels(answer.status if isinstance(answer, WebhookAck) else str(answer.status_code)).inc()
    return answer


async def _handle(request: Request, db, temporal: Client, settings) -> WebhookAck | JSONResponse:
    body = await request.body()
    secret = settings.yousign_webhook_secret.get_secret_value()
    if not signature_is_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
        return problem(401, "Unauthorized", f"missing or wrong {SIGNATURE_HEADER}")
    try:
        event = WebhookEvent.model_validate_json(body)
    except ValidationError:
        return problem(400, "Bad request", "the body is not a YouSign webhook event")
    # Recorded once handed on, not before: an event is never taken for a duplicate of one that a
    # restart or an outage kept from its workflow (which drops a second delivery itself).
    try:
        return await _hand_on(db, temporal, event)
    except DATABASE_FAILURES as error:
        return database_unavailable(error)


async def _hand_on(db, temporal: Client, event: WebhookEvent) -> WebhookAck | JSONResponse:
    if await webhooks.seen_webhook_event(db, event.event_id):
        return WebhookAck(status="duplicate")
    try:
        routed = await _route(db, temporal, event)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:  # not handed on: YouSign's retry will be
            return problem(503, "Service unavailable", error.message, headers={"Retry-After": "5"})
        log.info("webhook for a closed workflow", event_name=event.event_name, event_id=event.event_id)
        routed = None
    except ValidationError:
        # A part of the event has another shape than YouSign's (a signal model refused it).
        return problem(400, "Bad request", "the event's data is not what YouSign sends for it")
    await webhooks.record_webhook_event(db, event.event_id, event.event_name, event.signature_request_id)
    if routed is False:
        log.info("webhook for nothing of ours", event_name=event.event_name, event_id=event.event_id)
    return WebhookAck(status="accepted" if routed else "ignored")
