"""The API's request and response bodies (the public contract of api.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from domain.calendar import next_reminder_allowed_at
from domain.models import ClientRepresentative, CompanyName, PlainText, Platform, Siret
from domain.status import DossierStatus, MandateStatus
from store.records import Dossier, Firm, KycSubmission, Mandate


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlatformIn(Platform):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# The directory's "fictive" platform: the default line every company starts with (domain notes 2.1).
PLACEHOLDER_MATRICULE = "9998"


class DesignatedPlatformIn(PlatformIn):
    """The platform a firm designates for its clients: its name, and its SIREN or its 4-digit
    matricule (at least one); a real one, not the directory's placeholder (matricule 9998)."""

    @field_validator("matricule")
    @classmethod
    def _not_the_placeholder(cls, matricule: str | None) -> str | None:
        if matricule == PLACEHOLDER_MATRICULE:
            raise ValueError("9998 is the directory's placeholder for 'no platform yet', not a platform")
        return matricule


PREVIOUS_PLATFORM = Field(
    default=None,
    description="The platform that received the company's invoices until now, if any (block 5 of the"
    " DGFiP accord formel; null: none)",
)


# The firm's reference, blank: none (null), as when it is left out.
ExternalRef = Annotated[PlainText | None, AfterValidator(lambda ref: ref or None)]

NEXT_CURSOR = "Pass it as `cursor` for the next page; null on the last page"
# The cursor of a list the store numbers (a bulk send's items, a dossier's mandates): a position.
PositionCursor = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,9}$", description="`next_cursor` of the previous page")
]
NAME = "The company's name, as the mandate prints it"
SIRET = (
    "The company's SIRET (14 digits, spaces allowed; checked with Luhn as INSEE numbers them, La"
    " Poste's establishments apart); its first 9 digits are the SIREN"
)
CLIENT_REPRESENTATIVE = "Who signs the mandate for the company (no identity document needed)"


class DossierCreate(_Body):
    name: CompanyName = Field(description=NAME)
    siret: Siret | None = Field(default=None, description=SIRET)
    legal_representative: ClientRepresentative | None = Field(default=None, description=CLIENT_REPRESENTATIVE)
    external_ref: ExternalRef = Field(
        default=None, max_length=200, description="The firm's own reference for the client (free text)"
    )
    previous_platform: PlatformIn | None = PREVIOUS_PLATFORM


class DossierPatch(_Body):
    """Only the fields given change; `null` removes a SIRET, a representative, a previous platform or
    the firm's reference. An object given (the representative, the previous platform) replaces the
    stored one whole: send all its fields."""

    name: CompanyName | None = Field(default=None, description=NAME)
    siret: Siret | None = Field(default=None, description=SIRET)
    legal_representative: ClientRepresentative | None = Field(default=None, description=CLIENT_REPRESENTATIVE)
    previous_platform: PlatformIn | None = PREVIOUS_PLATFORM
    external_ref: ExternalRef = Field(
        default=None,
        max_length=200,
        description="The firm's own reference for the client: not printed, so it changes whatever the"
        " mandate's state",
    )


# Answers carry what is stored as plain values: a rule tightened since (what the PDF can print) must
# not turn reading an older row into a 500. The input models above apply the rules.


class PersonOut(BaseModel):
    first_name: str = Field(description="First name(s)")
    last_name: str = Field(description="Last name")
    birth_name: str | None = Field(default=None, description="Birth name, when given")
    email: str = Field(description="E-mail address")
    position: str | None = Field(default=None, description="Their position in the company, when given")


class PlatformOut(BaseModel):
    name: str = Field(description="The Plateforme Agréée's name")
    siren: str | None = Field(default=None, description="Its SIREN")
    matricule: str | None = Field(default=None, description="Its 4-digit matricule in the directory")


MANDATE_NUMBER = "The mandate's reference, printed on it: the company's SIREN, the platform and the date"
SENT_AT = "When YouSign sent it to the client"
EXPIRES_AT = "Until when the client can sign it (one month after sending, by default)"


class MandateSummary(BaseModel):
    id: UUID = Field(description="The mandate's id")
    number: str = Field(description=MANDATE_NUMBER)
    status: MandateStatus
    sent_at: datetime | None = Field(description=SENT_AT)
    expires_at: datetime | None = Field(description=EXPIRES_AT)

    @classmethod
    def of(cls, mandate: Mandate) -> MandateSummary:
        return cls.model_validate(mandate.model_dump())


class ReminderOut(BaseModel):
    sent_at: datetime = Field(description="When the reminder was sent")


class MandateOut(BaseModel):
    id: UUID = Field(description="The mandate's id")
    number: str = Field(description=MANDATE_NUMBER)
    status: MandateStatus
    created_at: datetime = Field(description="When it was generated")
    sent_at: datetime | None = Field(description=SENT_AT)
    expires_at: datetime | None = Field(description=EXPIRES_AT)
    signed_at: datetime | None = Field(description="When the client signed it")
    refused_at: datetime | None = Field(description="When the client declined it")
    expired_at: datetime | None = Field(description="When its validity ended unsigned")
    deleted_at: datetime | None = Field(description="When it was deleted (in the dossier's history)")
    refusal_reason: str | None = Field(description="What the client wrote when declining, if anything")
    expiry_reason: str | None = Field(
        description="What else happened when it expired, if anything: the client signed or declined at"
        " YouSign after its validity ended (it does not count)"
    )
    reminders: list[ReminderOut] = Field(description="The reminders sent, oldest first")
    next_reminder_allowed_at: datetime | None = Field(
        description="While pending and reminded at least once: from when the next reminder is allowed"
        " (one a day, Paris time; a time past means now); null otherwise"
    )
    failure_reason: str | None = Field(description="Why it failed (status `failed`): what to do is said")

    @classmethod
    def of(
        cls,
        mandate: Mandate,
        reminders: list[datetime],
        refusal_reason: str | None = None,
        expiry_reason: str | None = None,
    ) -> MandateOut:
        computed = {"reminders", "next_reminder_allowed_at", "refusal_reason", "expiry_reason"}
        return cls(
            **mandate.model_dump(include=set(cls.model_fields) - computed),
            refusal_reason=refusal_reason,
            expiry_reason=expiry_reason,
            reminders=[ReminderOut(sent_at=r) for r in reminders],
            # Only a pending mandate can be reminded: for the others there is no "next" one.
            next_reminder_allowed_at=next_reminder_allowed_at(reminders[-1])
            if reminders and mandate.status == MandateStatus.PENDING
            else None,
        )


class MandateHistory(BaseModel):
    items: list[MandateOut] = Field(
        description="The dossier's mandates, newest first: the current one and the deleted ones"
        " (status `deleted`: their dates, `refusal_reason`, `expiry_reason` and `failure_reason` tell how"
        " each ended)"
    )
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class DossierOut(BaseModel):
    id: UUID = Field(description="The dossier's id")
    name: str = Field(description=NAME)
    siret: str | None = Field(description="The company's SIRET (14 digits)")
    siren: str | None = Field(description="The company's SIREN: the SIRET's first 9 digits")
    legal_representative: PersonOut | None = Field(description=CLIENT_REPRESENTATIVE)
    previous_platform: PlatformOut | None = Field(
        description="The platform that received the company's invoices until now, if any"
    )
    external_ref: str | None = Field(description="The firm's own reference for the client")
    einvoicing_status: DossierStatus
    einvoicing_status_label: str = Field(description="The status in French, as the firm's users read it")
    mandate: MandateSummary | None = Field(description="Its current mandate (not deleted), if any")
    archived_at: datetime | None = Field(description="When it was archived (a client who left), if it is")
    created_at: datetime = Field(description="When the dossier was created")
    updated_at: datetime = Field(description="When its data, status or mandate last changed")

    @classmethod
    def of(cls, dossier: Dossier, mandate: Mandate | None) -> DossierOut:
        return cls(
            **dossier.model_dump(exclude={"firm_id"}),
            einvoicing_status_label=dossier.einvoicing_status.label,
            mandate=MandateSummary.of(mandate) if mandate else None,
        )


class DossierPage(BaseModel):
    items: list[DossierOut] = Field(description="A page of dossiers, oldest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


VerificationStatus = Literal["not_submitted", "pending", "verified", "failed", "inconclusive"]


class Verification(BaseModel):
    """The identity check of the firm's legal representative, through YouSign."""

    status: VerificationStatus = Field(
        description="`not_submitted`; `pending` (being checked); `verified` (mandates can be generated);"
        " `failed`; `inconclusive` (the document could not be read: submit a better one)"
    )
    reason: str | None = Field(default=None, description="Why it failed or was inconclusive")
    status_codes: list[str] = Field(default_factory=list, description="YouSign's codes (IDDV_...)")
    submitted_at: datetime | None = Field(default=None, description="When the document was submitted")
    completed_at: datetime | None = Field(default=None, description="When YouSign gave its answer")


class FirmRepresentativeOut(BaseModel):
    """The firm's legal representative as last submitted (no identity document is ever returned)."""

    first_name: str | None = Field(default=None, description="First name(s)")
    last_name: str | None = Field(default=None, description="Last name")
    birth_name: str | None = Field(default=None, description="Birth name, when given")
    email: str | None = Field(default=None, description="E-mail address")
    document_type: str | None = Field(default=None, description="The kind of identity document submitted")
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
    id: UUID = Field(description="The firm's id")
    name: str = Field(description="The firm's name, as mandates print it")
    siren: str = Field(description="The firm's SIREN")
    address: str | None = Field(description="The firm's address, as mandates print it")
    platform: PlatformOut | None = Field(
        description="The Plateforme Agréée the firm designates for its clients; required to generate mandates"
    )
    legal_representative: FirmRepresentativeOut

    @classmethod
    def of(cls, firm: Firm, submission: KycSubmission | None) -> FirmOut:
        return cls(
            **firm.model_dump(include={"id", "name", "siren", "address", "platform"}),
            legal_representative=FirmRepresentativeOut.of(submission),
        )


class ReminderAcceptedOut(BaseModel):
    sent_at: datetime = Field(description="When the reminder was sent")
    next_reminder_allowed_at: datetime = Field(
        description="From when the next one is allowed (Paris midnight)"
    )


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"] = Field(
        description="`accepted`: handed to its mandate or check; `duplicate`: seen before;"
        " `ignored`: about nothing this service still follows (another app's request, an ended mandate)"
    )
