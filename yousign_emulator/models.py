"""In-memory records of the emulator. Serialisation to YouSign's JSON lives in serializers.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class RecordedRequest:
    """One request received under /v3, kept verbatim so another helper can check it against the OpenAPI."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RequestStamp:
    """One admitted request or one 429, with both clocks so a benchmark can compute achieved rates."""

    wall_time: float
    monotonic_time: float
    method: str
    path: str
    injected: bool = False


@dataclass
class AuditEntry:
    at: datetime
    text: str
    signer_id: str | None = None


@dataclass
class SignerField:
    id: str
    document_id: str
    signer_id: str
    type: str
    page: int
    x: int
    y: int
    width: int | None
    height: int | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Document:
    id: str
    signature_request_id: str
    filename: str
    nature: str
    content_type: str
    content: bytes
    sha256: str
    total_pages: int | None
    page_sizes: list[tuple[float, float]]
    created_at: datetime
    signed_content: bytes | None = None


@dataclass
class Signer:
    id: str
    signature_request_id: str
    info: dict[str, Any]
    signature_level: str
    signature_authentication_mode: str | None
    fields: list[SignerField]
    created_at: datetime
    delivery_mode: str | None = None
    redirect_urls: dict[str, str | None] = field(
        default_factory=lambda: {"success": None, "error": None, "decline": None}
    )
    custom_text: dict[str, str | None] = field(
        default_factory=lambda: {
            "request_subject": None,
            "request_body": None,
            "reminder_subject": None,
            "reminder_body": None,
        }
    )
    status: str = "initiated"
    signature_link: str | None = None
    signature_link_expiration_date: datetime | None = None
    notified_at: datetime | None = None
    signed_at: datetime | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = None
    reminders_sent: int = 0


@dataclass
class SignatureRequest:
    id: str
    name: str
    delivery_mode: str
    created_at: datetime
    timezone: str
    expiration_date: date
    options: dict[str, Any]
    status: str = "draft"
    external_id: str | None = None
    signers_allowed_to_decline: bool = False
    ordered_signers: bool = False
    activated_at: datetime | None = None
    completed_at: datetime | None = None
    decline_information: dict[str, Any] | None = None
    cancel_information: dict[str, Any] | None = None
    document_ids: list[str] = field(default_factory=list)
    signer_ids: list[str] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


@dataclass
class IdentityDocument:
    id: str
    workspace_id: str
    created_at: datetime
    updated_at: datetime
    first_name: str | None
    last_name: str | None
    type: str | None
    planned_status: str
    planned_codes: list[str]
    status: str = "pending"
    status_codes: list[str] = field(default_factory=list)


@dataclass
class WebhookEvent:
    """An event as sent: the body bytes are frozen so a replay is byte-identical (same HMAC)."""

    event_id: str
    event_name: str
    event_time: str
    body: bytes
    payload: dict[str, Any]


@dataclass
class WebhookDelivery:
    event_id: str
    event_name: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    sent_at: float
    duration_seconds: float


@dataclass
class Email:
    id: str
    to: str
    subject: str
    body: str
    kind: str
    sent_at: datetime
    link: str | None = None
    signature_request_id: str | None = None
    signer_id: str | None = None
