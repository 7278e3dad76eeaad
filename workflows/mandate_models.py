"""Messages of the mandate workflow: its input, its state and the YouSign events it hears of."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from clients.yousign_models import SignatureFieldPlacement, StoredReason
from domain.status import MandateStatus


class YouSignEvent(BaseModel):
    """A YouSign webhook, reduced to what the workflow decides on (no personal data)."""

    event_id: str
    event_name: str
    signature_request_id: str | None
    occurred_at: datetime | None = None
    decline_reason: StoredReason | None = None
    source: str = "webhook"  # or "reconciliation": the sweep that stands in for a lost webhook


class MandateState(BaseModel):
    status: MandateStatus = MandateStatus.DRAFT
    signature_field: SignatureFieldPlacement | None = None
    signature_request_id: str | None = None
    signer_id: str | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    reminders: list[datetime] = Field(default_factory=list)
    failure_reason: str | None = None
    seen_event_ids: list[str] = Field(default_factory=list)
    early_events: list[YouSignEvent] = Field(default_factory=list)


class MandateOptions(BaseModel):
    """How every mandate runs, from the settings; a bulk send hands them on to its children."""

    validity: str = "P1M"
    yousign_task_queue: str = "yousign"


class MandateWorkflowInput(BaseModel):
    mandate_id: UUID
    firm_id: UUID
    dossier_id: UUID
    options: MandateOptions = Field(default_factory=MandateOptions)
    send_on_start: bool = False
    bulk_send_id: UUID | None = None


class ReminderAccepted(BaseModel):
    sent_at: datetime
    next_reminder_allowed_at: datetime
