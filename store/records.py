"""What the store returns: typed records built from rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.models import ClientRepresentative, LegalRepresentative, Platform
from domain.status import DossierStatus, MandateStatus


class Record(BaseModel):
    """A row as stored. Values the API validated are read back unvalidated (`model_construct`): a rule
    tightened since (say, what the PDF can print) must not make an existing row unreadable."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_row(cls, row: Any) -> Any:
        return cls.model_validate(dict(row))


def _platform(data: dict[str, Any], prefix: str) -> Platform | None:
    """The platform stored in `<prefix>name`, `<prefix>siren` and `<prefix>matricule` (popped)."""
    name, siren, matricule = (data.pop(prefix + k) for k in ("name", "siren", "matricule"))
    return Platform.model_construct(name=name, siren=siren, matricule=matricule) if name else None


class Firm(Record):
    id: UUID
    name: str
    siren: str
    address: str | None
    platform: Platform | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Firm:
        data = dict(row)
        data["platform"] = _platform(data, "platform_")
        return cls.model_validate(data)


class KycSubmission(Record):
    id: UUID
    firm_id: UUID
    first_name: str
    last_name: str
    birth_name: str | None
    email: str
    document_type: str
    status: str
    reason: str | None
    status_codes: list[str]
    verification_id: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def representative(self) -> LegalRepresentative:
        return LegalRepresentative.model_construct(
            first_name=self.first_name, last_name=self.last_name, birth_name=self.birth_name, email=self.email
        )


class KycFile(Record):
    side: str
    content_type: str
    content: bytes


class Mandate(Record):
    id: UUID
    dossier_id: UUID
    firm_id: UUID
    seq: int
    number: str
    workflow_id: str
    status: MandateStatus
    signature_request_id: str | None
    signer_id: str | None
    failure_reason: str | None
    bulk_send_id: UUID | None
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None
    signed_at: datetime | None
    refused_at: datetime | None
    expired_at: datetime | None
    deleted_at: datetime | None
    updated_at: datetime


class Dossier(Record):
    id: UUID
    firm_id: UUID
    name: str
    siret: str | None
    siren: str | None
    legal_representative: ClientRepresentative | None
    previous_platform: Platform | None  # block 5 of the accord formel
    external_ref: str | None
    einvoicing_status: DossierStatus
    archived_at: datetime | None = None  # a client who left: out of the list, kept with its history
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Dossier:
        data = {k: v for k, v in dict(row).items() if not k.startswith("rep_")}
        data["previous_platform"] = _platform(data, "previous_platform_")
        rep = None
        if row["rep_first_name"] is not None:
            rep = ClientRepresentative.model_construct(
                first_name=row["rep_first_name"],
                last_name=row["rep_last_name"],
                birth_name=row["rep_birth_name"],
                email=row["rep_email"],
                position=row["rep_position"],
            )
        return cls.model_validate({**data, "legal_representative": rep})


class MandateEvent(Record):
    id: int
    mandate_id: UUID
    occurred_at: datetime
    from_status: str | None
    to_status: str
    cause: str
    detail: dict[str, Any]
