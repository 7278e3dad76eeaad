"""What YouSign's events and statuses mean for a mandate and for a KYC check (pure rules)."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.status import MandateStatus

# Webhook events that settle a pending mandate. Others (activated, notified, reminders) only inform.
_EVENT_OUTCOMES: dict[str, MandateStatus] = {
    "signer.done": MandateStatus.SIGNED,
    "signature_request.done": MandateStatus.SIGNED,
    "signer.declined": MandateStatus.REFUSED,
    "signature_request.declined": MandateStatus.REFUSED,
    "signature_request.expired": MandateStatus.EXPIRED,
    "signature_request.canceled": MandateStatus.FAILED,
    # YouSign's internal error while signing: it cancels the request itself (the client cannot sign).
    "signer.error": MandateStatus.FAILED,
}

# A signature request's status, as read when reconciling or at expiry.
_STATUS_OUTCOMES: dict[str, MandateStatus] = {
    "done": MandateStatus.SIGNED,
    "declined": MandateStatus.REFUSED,
    "expired": MandateStatus.EXPIRED,
    "canceled": MandateStatus.FAILED,
    "deleted": MandateStatus.FAILED,
    "rejected": MandateStatus.FAILED,
}


def outcome_of_event(event_name: str) -> MandateStatus | None:
    return _EVENT_OUTCOMES.get(event_name)


def outcome_of_status(signature_request_status: str) -> MandateStatus | None:
    return _STATUS_OUTCOMES.get(signature_request_status)


# YouSign's clock and Temporal's (which set the expiry) may differ by a few seconds: a signature
# YouSign stamps that much after the end was given in time.
CLOCK_TOLERANCE = timedelta(minutes=1)


def settled_after_validity(
    status: MandateStatus | None, at: datetime | None, expires_at: datetime | None
) -> bool:
    """A signature or decline YouSign took after the mandate's validity ended does not count: the
    mandate expired first. (YouSign keeps the request open to the end of the next Paris day, and
    longer while our cancel cannot reach it.) A moment YouSign did not give is taken as in time."""
    late = at is not None and expires_at is not None and at > expires_at + CLOCK_TOLERANCE
    return late and status in (MandateStatus.SIGNED, MandateStatus.REFUSED)


KYC_FINAL_STATUSES = frozenset({"verified", "failed", "inconclusive"})

# YouSign's identity-document status codes, in words the firm can act on.
_KYC_CODE_TEXT = {
    "IDDV_1103": "le fichier est illisible ou d'un format non pris en charge",
    "IDDV_1104": "l'image est trop petite (au moins 320 x 256 pixels)",
    "IDDV_1105": "la résolution est trop grande (au plus 20 mégapixels)",
    "IDDV_1106": "le fichier est trop volumineux",
    "IDDV_1107": "le document a trop de pages",
    "IDDV_1200": "l'image est floue",
    "IDDV_1201": "l'image manque de contraste",
    "IDDV_1202": "aucun texte n'a été détecté sur le document",
    "IDDV_1203": "la résolution est trop faible",
}


def explain_kyc_codes(status: str, codes: list[str]) -> str | None:
    """A sentence for the firm; None when verified. Unknown codes are quoted as they are."""
    if status == "verified":
        return None
    reasons = [_KYC_CODE_TEXT.get(code, f"code YouSign {code}") for code in codes]
    lead = {
        "inconclusive": "La vérification n'a pas pu aboutir, envoyez un nouveau document",
        "failed": "Le document d'identité n'a pas été validé",
    }.get(status, f"Vérification {status}")
    return f"{lead} : {'; '.join(reasons)}." if reasons else f"{lead}."


# Our document types, and YouSign's `type` for each (a driving licence has none).
YOUSIGN_DOCUMENT_TYPES: dict[str, str | None] = {
    "identity_card": "id_card",
    "passport": "passport",
    "residence_permit": "residence_permit",
    "driving_licence": None,
}
