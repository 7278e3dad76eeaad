"""One input and one output model per activity, so adding a field never breaks a signature."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from clients.yousign_models import SignatureFieldPlacement, StoredCodes, StoredReason
from domain.status import MandateStatus


class MandateRef(BaseModel):
    mandate_id: UUID


class GeneratedDocument(BaseModel):
    sha256: str
    page_count: int
    signature_field: SignatureFieldPlacement


class RecordStatusInput(BaseModel):
    """A status change to write to the mandate, its event log and its dossier."""

    mandate_id: UUID
    status: MandateStatus
    cause: str
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    signed_at: datetime | None = None
    refused_at: datetime | None = None
    expired_at: datetime | None = None
    failure_reason: str | None = None

    def fields(self) -> dict[str, Any]:
        names = ("sent_at", "expires_at", "signed_at", "refused_at", "expired_at", "failure_reason")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class SendMandateInput(BaseModel):
    mandate_id: UUID
    validity: str  # ISO 8601, counted from the moment YouSign activates the request
    # Where the generated document's signature field is; None: render the document first (bulk).
    signature_field: SignatureFieldPlacement | None = None


class SendMandateOutput(BaseModel):
    """The request sent and the mandate recorded `pending` with these times."""

    signature_request_id: str
    signer_id: str
    sent_at: datetime
    expires_at: datetime


class SignatureRequestRef(BaseModel):
    signature_request_id: str


class SignatureRequestState(BaseModel):
    status: str
    signed_at: datetime | None = None
    decline_reason: StoredReason | None = None
    declined_at: datetime | None = None


class ReminderInput(BaseModel):
    mandate_id: UUID
    signature_request_id: str
    signer_id: str
    sent_at: datetime


class ArchiveInput(BaseModel):
    mandate_id: UUID
    signature_request_id: str


class KycSubmissionRef(BaseModel):
    submission_id: UUID


class VerificationRef(BaseModel):
    verification_id: str


class VerificationState(BaseModel):
    verification_id: str
    status: str
    status_codes: StoredCodes = Field(default_factory=list)


class KycOutcomeInput(BaseModel):
    submission_id: UUID
    status: str
    status_codes: list[str]
    at: datetime
    reason: str | None = None  # when not YouSign's codes: the submission itself failed


class BulkPageInput(BaseModel):
    bulk_send_id: UUID
    start: int
    size: int


class MandateToStart(BaseModel):
    mandate_id: UUID
    number: str
    firm_id: UUID
    dossier_id: UUID
    workflow_id: str
    draft: bool = False  # a draft the firm previewed: its workflow runs already and is told to send


class BulkPage(BaseModel):
    mandates: list[MandateToStart]
    more: bool
    # Runs of failed mandates the page's mandates replaced: each waits to be told it is deleted.
    replaced_workflow_ids: list[str] = []


class BulkRef(BaseModel):
    bulk_send_id: UUID


class SettledPageInput(BaseModel):
    status: Literal["done", "declined"]
    since: date  # requests settled after this day
    cursor: str | None = None


class SettledRequest(BaseModel):
    signature_request_id: str
    status: Literal["done", "declined"]
    at: datetime | None = None


class SettledPage(BaseModel):
    requests: list[SettledRequest]
    next_cursor: str | None
