"""Records -> YouSign v3 JSON: SignatureRequest(Activated), Signer, Document, IdentityDocument."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .models import Document, IdentityDocument, SignatureRequest, Signer, SignerField
from .timeutil import end_of_day, iso

# Keys of SignatureRequest that SignatureRequestActivated does not declare.
_NOT_IN_ACTIVATED = (
    "source",
    "sender",
    "workspace_id",
    "email_notification",
    "bulk_send_batch_id",
    "decline_information",
    "custom_properties",
)


def signature_request(
    sr: SignatureRequest, signers: Mapping[str, Signer], documents: Mapping[str, Document]
) -> dict[str, Any]:
    o = sr.options
    return {
        "id": sr.id,
        "status": sr.status,
        "name": sr.name,
        "delivery_mode": sr.delivery_mode,
        "created_at": iso(sr.created_at),
        "activated_at": iso(sr.activated_at),
        "completed_at": iso(sr.completed_at),
        "approved_at": None,
        "ordered_signers": sr.ordered_signers,
        "ordered_approvers": o.get("ordered_approvers", False),
        "reminder_settings": o.get("reminder_settings"),
        "timezone": sr.timezone,
        "email_custom_note": o.get("email_custom_note"),
        "expiration_date": iso(end_of_day(sr.expiration_date, sr.timezone)),
        "source": "public_api",
        "signers": [{"id": sid, "status": signers[sid].status} for sid in sr.signer_ids if sid in signers],
        "approvers": [],
        "labels": [],
        "documents": [
            {"id": did, "nature": documents[did].nature} for did in sr.document_ids if did in documents
        ],
        "sender": None,
        "external_id": sr.external_id,
        "branding_id": o.get("branding_id"),
        "custom_experience_id": o.get("custom_experience_id"),
        "signers_allowed_to_decline": sr.signers_allowed_to_decline,
        "workspace_id": o.get("workspace_id"),
        "audit_trail_locale": o.get("audit_trail_locale") or "en",
        "email_notification": _email_notification(o.get("email_notification")),
        "bulk_send_batch_id": None,
        "decline_information": sr.decline_information,
        "rejection_information": None,
        "workflow_session_id": o.get("workflow_session_id"),
        "previous_attempt_id": o.get("previous_attempt_id"),
        "custom_recipient_order": o.get("custom_recipient_order", False),
        "custom_properties": [],
    }


def _email_notification(given: dict[str, Any] | None) -> dict[str, Any]:
    sender = (given or {}).get("sender") or {}
    return {
        "sender": {"type": sender.get("type", "organization"), "custom_name": sender.get("custom_name")},
        "custom_note": (given or {}).get("custom_note"),
    }


def signature_request_activated(
    sr: SignatureRequest, signers: Mapping[str, Signer], documents: Mapping[str, Document]
) -> dict[str, Any]:
    body = signature_request(sr, signers, documents)
    for key in _NOT_IN_ACTIVATED:
        body.pop(key, None)
    body["signers"] = [
        {
            "id": s.id,
            "status": s.status,
            "signature_link": s.signature_link,
            "signature_link_expiration_date": iso(s.signature_link_expiration_date),
        }
        for s in (signers[sid] for sid in sr.signer_ids if sid in signers)
    ]
    return body


def field(f: SignerField) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f.id,
        "document_id": f.document_id,
        "signer_id": f.signer_id,
        "type": f.type,
        "page": f.page,
        "x": f.x,
        "y": f.y,
    }
    if f.type == "signature":
        body.update(
            width=f.width,
            height=f.height,
            reason=f.extra.get("reason"),
            display=f.extra.get("display") or {"layout": "minimal"},
        )
    else:
        body.update({k: v for k, v in f.extra.items() if k not in body})
    return body


def signer(s: Signer) -> dict[str, Any]:
    return {
        "id": s.id,
        "info": {
            "first_name": s.info["first_name"],
            "last_name": s.info["last_name"],
            "email": s.info["email"],
            "phone_number": s.info.get("phone_number"),
            "locale": s.info["locale"],
        },
        "status": s.status,
        "fields": [field(f) for f in s.fields],
        "signature_level": s.signature_level,
        "signature_authentication_mode": s.signature_authentication_mode,
        "signature_link": s.signature_link,
        "signature_link_expiration_date": iso(s.signature_link_expiration_date),
        "signature_image_preview": None,
        "redirect_urls": s.redirect_urls,
        "custom_text": s.custom_text,
        "delivery_mode": s.delivery_mode,
        "identification_attestation_id": None,
        "sms_notification": {"otp_message": {"custom_text": None}},
        "email_notification": {"disabled": []},
        "pre_identity_verification_required": False,
        "verified_identity_id": None,
        "recipient_stage_index": 0,
        "excluded_documents": [],
        "signed_at": iso(s.signed_at),
    }


def document(d: Document, *, signed: bool = False) -> dict[str, Any]:
    return {
        "id": d.id,
        "filename": d.filename,
        "nature": d.nature,
        "content_type": d.content_type,
        "sha256": d.sha256,
        "is_protected": False,
        "is_signed": signed and d.signed_content is not None,
        "created_at": iso(d.created_at),
        "total_pages": d.total_pages,
        "is_locked": False,
        "initials": None,
        "total_anchors": 0,
        "excluded_approvers": [],
        "excluded_signers": [],
    }


def identity_document_meta(v: IdentityDocument) -> dict[str, Any]:
    return {
        "id": v.id,
        "workspace_id": v.workspace_id,
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
        "status": v.status,
        "status_codes": list(v.status_codes),
        "data_anonymized": False,
        "workflow_session_id": None,
        "previous_attempt_id": None,
        "applicant_id": None,
    }


def identity_document_full(v: IdentityDocument) -> dict[str, Any]:
    verified = v.status == "verified"
    extracted: dict[str, Any] = {
        "first_name": (v.first_name or "Jean") if verified else None,
        "birth_name": (v.last_name or "Dupont") if verified else None,
        "last_name": (v.last_name or "Dupont") if verified else None,
        "born_on": "1980-01-01" if verified else None,
        "birth_location": "Paris" if verified else None,
        "gender": None,
        "full_address": None,
        "type": (v.type or "id_card") if verified else None,
        "issuing_country_code": "FR" if verified else None,
        "issued_on": "2020-01-01" if verified else None,
        "expired_on": "2030-01-01" if verified else None,
        "document_number": "EMU" + v.id[:6].upper() if verified else None,
        "mrz": {"line1": None, "line2": None, "line3": None},
        "national_identification_number": None,
    }
    return {**identity_document_meta(v), "data": {"extracted_from_document": extracted}}


def identity_document_webhook(v: IdentityDocument) -> dict[str, Any]:
    # The documented verification.identity_document.done example carries these seven keys only.
    meta = identity_document_meta(v)
    keys = ("id", "workspace_id", "created_at", "updated_at", "status", "status_codes", "data_anonymized")
    return {key: meta[key] for key in keys}
