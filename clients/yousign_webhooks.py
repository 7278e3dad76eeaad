"""YouSign webhook deliveries: signature check (HMAC-SHA256 over the raw body) and parsing."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

SIGNATURE_HEADER = "X-Yousign-Signature-256"


def sign_body(secret: str, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, raw_body: bytes, header_value: str | None) -> bool:
    """Constant-time comparison of the header with our own HMAC of the exact bytes received."""
    if not header_value or not secret:
        return False
    return hmac.compare_digest(header_value.strip().encode(), sign_body(secret, raw_body).encode())


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# What the database can store and index: no NUL character, no unbounded id.
MAX_ID_LENGTH = 200
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00]*$")]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and "\x00" not in value and len(value) <= MAX_ID_LENGTH else None


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Identifier
    event_name: Identifier
    event_time: str
    data: dict[str, Any]

    # Signed by YouSign, yet read defensively: a part of another shape reads as absent.

    @property
    def signature_request(self) -> dict[str, Any]:
        return _object(self.data.get("signature_request"))

    @property
    def signature_request_id(self) -> str | None:
        return _text(self.signature_request.get("id"))

    @property
    def external_id(self) -> str | None:
        return _text(self.signature_request.get("external_id"))

    @property
    def identity_document(self) -> dict[str, Any]:
        return _object(self.data.get("identity_document"))

    @property
    def identity_document_id(self) -> str | None:
        return _text(self.identity_document.get("id"))
