"""The parts of YouSign v3 payloads this service sends and reads (unknown keys are ignored)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SignatureRequestStatus = Literal[
    "draft", "ongoing", "done", "deleted", "expired", "canceled", "approval", "rejected", "declined", "paused"
]
CancelReason = Literal["contractualization_aborted", "errors_in_document", "other"]
IdentityDocumentType = Literal["id_card", "passport", "residence_permit"]
VerificationStatus = Literal["pending", "awaiting_data", "verified", "failed", "inconclusive"]


MAX_REASON_LENGTH = 1_000  # a signer's decline reason, as the firm reads it
MAX_CODE_LENGTH = 50  # an identity check's status code (IDDV_1104...)
MAX_CODES = 20


def stored(text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """What the database keeps of a text YouSign gives: without NUL (PostgreSQL's text cannot hold
    it: the record would fail on every try) and at most `limit` characters."""
    return text.replace("\x00", "")[:limit]


def stored_codes(codes: list[str]) -> list[str]:
    return [stored(code, MAX_CODE_LENGTH) for code in codes[:MAX_CODES]]


# On the models that hand YouSign's texts to the workflows, hence to the store (webhooks and API alike).
StoredReason = Annotated[str, AfterValidator(stored)]
StoredCodes = Annotated[list[str], AfterValidator(stored_codes)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SignerRef(_Payload):
    id: str
    status: str
    signature_link: str | None = None


class DocumentRef(_Payload):
    id: str
    nature: str


class DeclineInformation(_Payload):
    signer_id: str | None = None
    reason: str | None = None
    declined_at: datetime | None = None


class SignatureRequest(_Payload):
    id: str
    status: SignatureRequestStatus
    name: str
    external_id: str | None = None
    expiration_date: datetime | None = None
    created_at: datetime | None = None
    activated_at: datetime | None = None
    completed_at: datetime | None = None
    signers: list[SignerRef] = Field(default_factory=list)
    documents: list[DocumentRef] = Field(default_factory=list)
    decline_information: DeclineInformation | None = None


class Document(_Payload):
    id: str
    nature: str
    total_pages: int | None = None
    sha256: str | None = None


class Signer(_Payload):
    id: str
    status: str
    signed_at: datetime | None = None


class IdentityVerification(_Payload):
    id: str
    status: VerificationStatus
    status_codes: list[str] = Field(default_factory=list)


def signature_request_name(company: str) -> str:
    """The request's name in YouSign (its dashboard, its e-mails): the mandate and the company.

    The name is a "Safe String", which YouSign's OpenAPI does not define: a company name carrying a
    web or e-mail address (https://..., contact@...) or markup may be refused, after the mandate was
    numbered. Only letters, digits and plain punctuation go (S.A.R.L. and L’Épi keep theirs).
    """
    kept = "".join(c if c.isalnum() or c in " '’.-&,()" else " " for c in company)
    return " ".join(f"Mandat facturation électronique - {kept}".split())[:128].rstrip(" -,(&'")


class NewSignatureRequest(BaseModel):
    """What we ask YouSign to create; `external_id` is our mandate id (our exactly-once key)."""

    name: str = Field(min_length=1, max_length=128)
    external_id: str = Field(max_length=255, pattern=r"^[\w\-@.%+]+$")
    expiration_date: date


class SignatureFieldPlacement(BaseModel):
    page: int = Field(ge=1)
    x: int = Field(ge=0, le=32767)
    y: int = Field(ge=0, le=32767)
    width: int = Field(ge=85, le=2000)
    height: int = Field(ge=37, le=1000)


class MentionPlacement(BaseModel):
    page: int = Field(ge=1)
    x: int = Field(ge=0, le=32767)
    y: int = Field(ge=0, le=32767)
    width: int = Field(ge=24)
    height: int = Field(ge=24)  # YouSign: 24, or a multiple of 15 above it


class DateMention(BaseModel):
    """Text YouSign writes on the document when the signer signs; `%date%` becomes that day."""

    text: str = Field(min_length=1, max_length=255)
    placement: MentionPlacement


class NewSigner(BaseModel):
    first_name: str
    last_name: str
    email: str
    field: SignatureFieldPlacement
    date_mention: DateMention | None = None
