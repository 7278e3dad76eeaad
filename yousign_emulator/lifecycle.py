"""Signature request lifecycle outside signing: create, add documents/signers, cancel, delete, expire.

SR: draft -> ongoing -> done | declined | expired | canceled; draft/done/declined/expired/canceled -> deleted.
The signing part (activate, notify, sign, decline, remind) is in signing.py.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .errors import ApiError, status_not_compatible
from .models import AuditEntry, Document, SignatureRequest, Signer, SignerField, new_id
from .pdfs import page_sizes
from .timeutil import add_months, end_of_day, now_utc, today_in
from .uploads import DocumentUpload

if TYPE_CHECKING:
    from .state import EmulatorState

NOT_DELETABLE = ("ongoing", "approval")
CANCELABLE = ("ongoing", "approval")


def audit(sr: SignatureRequest, text: str, signer_id: str | None = None) -> None:
    sr.audit.append(AuditEntry(now_utc(), text, signer_id))


def require_status(sr: SignatureRequest, allowed: tuple[str, ...], action: str) -> None:
    if sr.status not in allowed:
        raise status_not_compatible("signature_request", sr.id, sr.status, action)


def create_signature_request(state: EmulatorState, payload: dict[str, Any]) -> SignatureRequest:
    created = now_utc()
    tz_name = payload["timezone"]
    expiration = payload["expiration_date"] or add_months(today_in(tz_name), 6)  # default: 6 months
    option_keys = (
        "ordered_approvers",
        "custom_recipient_order",
        "reminder_settings",
        "email_custom_note",
        "branding_id",
        "custom_experience_id",
        "audit_trail_locale",
        "email_notification",
        "workflow_session_id",
        "previous_attempt_id",
    )
    options = {key: payload.get(key) for key in option_keys}
    options["workspace_id"] = payload.get("workspace_id") or state.settings.workspace_id
    sr = SignatureRequest(
        id=new_id(),
        name=payload["name"],
        delivery_mode=payload["delivery_mode"],
        created_at=created,
        timezone=tz_name,
        expiration_date=expiration,
        options=options,
        external_id=payload.get("external_id"),
        signers_allowed_to_decline=payload.get("signers_allowed_to_decline", False),
        ordered_signers=payload.get("ordered_signers", False),
    )
    audit(sr, f"Demande de signature « {sr.name} » créée")
    state.signature_requests[sr.id] = sr
    return sr


def add_document(state: EmulatorState, sr: SignatureRequest, upload: DocumentUpload) -> Document:
    require_status(sr, ("draft",), "add a document")
    if len(sr.document_ids) >= 50:
        raise ApiError(
            400, "signature_request.too_many_documents", "A signature request has at most 50 documents."
        )
    try:
        sizes = page_sizes(upload.content)
    except ValueError as exc:
        raise ApiError(400, "document.analyze_error", f"The document could not be analysed: {exc}") from exc
    document = Document(
        id=new_id(),
        signature_request_id=sr.id,
        filename=upload.filename,
        nature=upload.nature,
        content_type="application/pdf",
        content=upload.content,
        sha256=hashlib.sha256(upload.content).hexdigest(),
        total_pages=len(sizes),
        page_sizes=sizes,
        created_at=now_utc(),
    )
    state.documents[document.id] = document
    sr.document_ids.append(document.id)
    audit(sr, f"Document « {document.filename} » ajouté ({document.total_pages} page(s))")
    return document


def add_signer(state: EmulatorState, sr: SignatureRequest, payload: dict[str, Any]) -> Signer:
    require_status(sr, ("draft",), "add a signer")
    if len(sr.signer_ids) >= 100:
        raise ApiError(
            400, "signature_request.too_many_signers", "A signature request has at most 100 signers."
        )
    signer_id = new_id()
    fields = [
        SignerField(
            id=new_id(),
            signer_id=signer_id,
            document_id=f["document_id"],
            type=f["type"],
            page=f["page"],
            x=f["x"],
            y=f["y"],
            width=f["width"],
            height=f["height"],
            extra=f["extra"],
        )
        for f in payload["fields"]
    ]
    signer = Signer(
        id=signer_id,
        signature_request_id=sr.id,
        info=payload["info"],
        signature_level=payload["signature_level"],
        signature_authentication_mode=payload["signature_authentication_mode"],
        fields=fields,
        created_at=now_utc(),
        delivery_mode=payload["delivery_mode"],
    )
    signer.redirect_urls.update(payload.get("redirect_urls") or {})
    signer.custom_text.update(payload.get("custom_text") or {})
    state.signers[signer.id] = signer
    sr.signer_ids.append(signer.id)
    audit(sr, f"Signataire {display_name(signer)} <{signer.info['email']}> ajouté", signer.id)
    return signer


def display_name(signer: Signer) -> str:
    return f"{signer.info['first_name']} {signer.info['last_name']}"


def cancel(state: EmulatorState, sr: SignatureRequest, reason: str, note: str | None) -> None:
    require_status(sr, CANCELABLE, "cancel")
    sr.status = "canceled"
    sr.cancel_information = {"reason": reason, "custom_note": note}
    audit(sr, f"Demande annulée ({reason})")
    state.emit("signature_request.canceled", {"signature_request": state.sr_json(sr)})


def delete(state: EmulatorState, sr: SignatureRequest, permanent: bool) -> None:
    if sr.status in NOT_DELETABLE or (sr.status == "deleted" and not permanent):
        raise status_not_compatible("signature_request", sr.id, sr.status, "delete")
    if not permanent:
        sr.status = "deleted"
        return
    for document_id in sr.document_ids:
        state.documents.pop(document_id, None)
    for signer_id in sr.signer_ids:
        state.signers.pop(signer_id, None)
    del state.signature_requests[sr.id]


def expire(state: EmulatorState, sr: SignatureRequest) -> None:
    require_status(sr, ("ongoing", "approval"), "expire")
    sr.status = "expired"
    audit(sr, "Demande expirée")
    state.emit("signature_request.expired", {"signature_request": state.sr_json(sr)})


def check_expiry(state: EmulatorState, sr: SignatureRequest) -> bool:
    """Expire an ongoing request whose expiration day (in its time zone) is over. True if it expired now."""
    if sr.status in ("ongoing", "approval") and now_utc() > end_of_day(sr.expiration_date, sr.timezone):
        expire(state, sr)
        return True
    return False
