"""The API's request and response bodies (the public contract of api.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.calendar import next_reminder_allowed_at
from domain.models import ClientRepresentative, PlainText, Platform, PrintedText, Siret
from domain.status import DossierStatus, MandateStatus
from store.records import Dossier, Firm, KycSubmission, Mandate


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlatformIn(Platform):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# The directory's "fictive" platform: the default line every company starts with (domain notes 2.1).
PLACEHOLDER_MATRICULE = "9998"


class DesignatedPlatformIn(PlatformIn):
    """The platform a firm designates for its clients: a real one, not the directory's placeholder."""

    @field_validator("matricule")
    @classmethod
    def _not_the_placeholder(cls, matricule: str | None) -> str | None:
        if matricule == PLACEHOLDER_MATRICULE:
            raise ValueError("9998 is the directory's placeholder for 'no platform yet', not a platform")
        return matricule


PREVIOUS_PLATFORM = Field(
    default=None,
    description="The platform that received the company's invoices until now, if any (block 5 of the"
    " DGFiP accord formel; absent: none)",
)


class DossierCreate(_Body):
    name: PrintedText = Field(min_length=1, max_length=200)
    siret: Siret | None = None
    legal_representative: ClientRepresentative | None = None
    external_ref: PlainText | None = Field(default=None, max_length=200)
    previous_platform: PlatformIn | None = PREVIOUS_PLATFORM


class DossierPatch(_Body):
    name: PrintedText | None = Field(default=None, min_length=1, max_length=200)
    siret: Siret | None = None
    legal_representative: ClientRepresentative | None = None
    previous_platform: PlatformIn | None = PREVIOUS_PLATFORM


# Answers carry what is stored as plain values: a rule tightened since (what the PDF can print) must
# not turn reading an older row into a 500. The input models above apply the rules.


class PersonOut(BaseModel):
    first_name: str
    last_name: str
    birth_name: str | None = None
    email: str


class PlatformOut(BaseModel):
    name: str
    siren: str | None = None
    matricule: str | None = None


class MandateSummary(BaseModel):
    id: UUID
    number: str
    status: MandateStatus
    sent_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, mandate: Mandate) -> MandateSummary:
        return cls.model_validate(mandate.model_dump())


class ReminderOut(BaseModel):
    sent_at: datetime


class MandateOut(BaseModel):
    id: UUID
    number: str
    status: MandateStatus
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None
    signed_at: datetime | None
    refused_at: datetime | None
    refusal_reason: str | None = Field(description="What the client wrote when declining, if anything")
    reminders: list[ReminderOut]
    next_reminder_allowed_at: datetime | None
    failure_reason: str | None

    @classmethod
    def of(cls, mandate: Mandate, reminders: list[datetime], refusal_reason: str | None = None) -> MandateOut:
        computed = {"reminders", "next_reminder_allowed_at", "refusal_reason"}
        return cls(
            **mandate.model_dump(include=set(cls.model_fields) - computed),
            refusal_reason=refusal_reason,
            reminders=[ReminderOut(sent_at=r) for r in reminders],
            # Only a pending mandate can be reminded: for the others there is no "next" one.
            next_reminder_allowed_at=next_reminder_allowed_at(reminders[-1])
            if reminders and mandate.status == MandateStatus.PENDING
            else None,
        )


class DossierOut(BaseModel):
    id: UUID
    name: str
    siret: str | None
    siren: str | None
    legal_representative: PersonOut | None
    previous_platform: PlatformOut | None
    external_ref: str | None
    einvoicing_status: DossierStatus
    einvoicing_status_label: str
    mandate: MandateSummary | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, dossier: Dossier, mandate: Mandate | None) -> DossierOut:
        return cls(
            **dossier.model_dump(exclude={"firm_id"}),
            einvoicing_status_label=dossier.einvoicing_status.label,
            mandate=MandateSummary.of(mandate) if mandate else None,
        )


class DossierPage(BaseModel):
    items: list[DossierOut]
    next_cursor: str | None


VerificationStatus = Literal["not_submitted", "pending", "verified", "failed", "inconclusive"]


class Verification(BaseModel):
    status: VerificationStatus
    reason: str | None = None
    status_codes: list[str] = Field(default_factory=list)
    submitted_at: datetime | None = None
    completed_at: datetime | None = None


class FirmRepresentativeOut(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    birth_name: str | None = None
    email: str | None = None
    document_type: str | None = None
    verification: Verification

    @classmethod
    def of(cls, submission: KycSubmission | None) -> FirmRepresentativeOut:
        if submission is None:
            return cls(verification=Verification(status="not_submitted"))
        return cls(
            **submission.model_dump(
                include={"first_name", "last_name", "birth_name", "email", "document_type"}
            ),
            verification=Verification(
                status=submission.status,
                reason=submission.reason,
                status_codes=submission.status_codes,
                submitted_at=submission.created_at,
                completed_at=submission.completed_at,
            ),
        )


class FirmOut(BaseModel):
    id: UUID
    name: str
    siren: str
    address: str | None
    platform: PlatformOut | None
    legal_representative: FirmRepresentativeOut

    @classmethod
    def of(cls, firm: Firm, submission: KycSubmission | None) -> FirmOut:
        return cls(
            **firm.model_dump(include={"id", "name", "siren", "address", "platform"}),
            legal_representative=FirmRepresentativeOut.of(submission),
        )


class ReminderAcceptedOut(BaseModel):
    sent_at: datetime
    next_reminder_allowed_at: datetime


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
