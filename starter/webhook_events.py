"""Turning a verified YouSign webhook into the signal its workflow expects."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.models import VerificationState
from clients.yousign_webhooks import WebhookEvent
from workflows.mandate_models import YouSignEvent


def _event_time(event: WebhookEvent) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(event.event_time), tz=UTC)
    except (ValueError, OverflowError, OSError):  # not a time, or out of the calendar's range
        return None


def mandate_signal(event: WebhookEvent) -> YouSignEvent:
    decline = event.signature_request.get("decline_information")
    return YouSignEvent(
        event_id=event.event_id,
        event_name=event.event_name,
        signature_request_id=event.signature_request_id,
        occurred_at=_event_time(event),
        decline_reason=decline.get("reason") if isinstance(decline, dict) else None,
    )


def kyc_signal(event: WebhookEvent) -> VerificationState:
    document = event.identity_document
    return VerificationState(
        verification_id=document.get("id", ""),
        status=document.get("status", "pending"),
        status_codes=document.get("status_codes") or [],
    )
