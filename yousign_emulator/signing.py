"""Signing: activate, notify signers, sign, complete (signed PDFs), decline, remind.

Signer: initiated -> notified (on activation, or on their turn with ordered_signers) -> signed | declined.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import serializers
from .errors import ApiError, status_not_compatible
from .lifecycle import audit, display_name, require_status
from .models import Document, SignatureRequest, Signer
from .pdfs import Stamp, signed_pdf
from .timeutil import iso, now_utc

if TYPE_CHECKING:
    from .state import EmulatorState


def activate(state: EmulatorState, sr: SignatureRequest) -> None:
    require_status(sr, ("draft",), "activate")
    documents = state.sr_documents(sr)
    signers = state.sr_signers(sr)
    if not any(d.nature == "signable_document" for d in documents.values()):
        raise ApiError(
            400,
            "signature_request.missing_signable_document",
            f'The signature request "{sr.id}" needs at least one signable_document to be activated.',
        )
    if not signers:
        raise ApiError(
            400,
            "signature_request.missing_signer",
            f'The signature request "{sr.id}" needs at least one signer to be activated.',
        )
    for signer in signers:
        if not any(f.type == "signature" for f in signer.fields):
            raise ApiError(
                400,
                "signer.missing_signature_field",
                f'The signer "{signer.id}" needs at least one signature field.',
            )
    sr.status = "ongoing"
    sr.activated_at = now_utc()
    audit(sr, "Demande de signature activée")
    invited = signers[:1] if sr.ordered_signers else signers
    for signer in invited:  # statuses first, so the activated event already shows notified signers
        _mark_notified(state, sr, signer)
    state.emit("signature_request.activated", {"signature_request": state.sr_json(sr)})
    for signer in invited:
        _announce(state, sr, signer)


def _mark_notified(state: EmulatorState, sr: SignatureRequest, signer: Signer) -> None:
    signer.status = "notified"
    signer.notified_at = now_utc()
    signer.signature_link = f"{state.public_url}/sign/{signer.id}"
    validity = timedelta(hours=state.settings.signature_link_hours)
    signer.signature_link_expiration_date = signer.notified_at + validity
    audit(sr, f"{display_name(signer)} invité(e) à signer", signer.id)


def _announce(state: EmulatorState, sr: SignatureRequest, signer: Signer) -> None:
    """signer.notified webhook, and YouSign's e-mail with the link unless the delivery mode is none."""
    state.emit(
        "signer.notified", {"signature_request": state.sr_json(sr), "signer": serializers.signer(signer)}
    )
    if (signer.delivery_mode or sr.delivery_mode) == "email":
        state.send_email(
            signer.info["email"],
            signer.custom_text.get("request_subject") or f"Demande de signature : {sr.name}",
            f"Bonjour {display_name(signer)},\n\nVous êtes invité(e) à signer « {sr.name} ».\n"
            # An e-mailed link works as long as the request is open (the 48-hour `signature_link`
            # validity is for links an app hands out itself, delivery mode `none`).
            f"Signer le document : {signer.signature_link}\n\nCe lien reste valable tant que la"
            " demande de signature est ouverte.",
            "signature_request",
            link=signer.signature_link,
            signature_request_id=sr.id,
            signer_id=signer.id,
        )


def _require_signer_turn(sr: SignatureRequest, signer: Signer, action: str) -> None:
    require_status(sr, ("ongoing",), action)
    if signer.status != "notified":
        raise status_not_compatible("signer", signer.id, signer.status, action)


def sign(state: EmulatorState, signer: Signer) -> None:
    sr = state.signature_request(signer.signature_request_id)
    _require_signer_turn(sr, signer, "sign")
    signer.status = "signed"
    signer.signed_at = now_utc()
    audit(sr, f"{display_name(signer)} a signé", signer.id)
    state.emit("signer.done", {"signature_request": state.sr_json(sr), "signer": serializers.signer(signer)})
    signers = state.sr_signers(sr)
    if all(s.status == "signed" for s in signers):
        _complete(state, sr, signers)
    elif sr.ordered_signers:
        following = next((s for s in signers if s.status == "initiated"), None)
        if following is not None:
            _mark_notified(state, sr, following)
            _announce(state, sr, following)


def _complete(state: EmulatorState, sr: SignatureRequest, signers: list[Signer]) -> None:
    sr.status = "done"
    sr.completed_at = now_utc()
    for document in state.sr_documents(sr).values():
        if document.nature == "signable_document":
            document.signed_content = _signed_copy(sr, document, signers)
    audit(sr, "Demande de signature terminée : tous les signataires ont signé")
    state.emit("signature_request.done", {"signature_request": state.sr_json(sr)})
    for signer in signers:
        if (signer.delivery_mode or sr.delivery_mode) == "email":
            state.send_email(
                signer.info["email"],
                f"Document signé : {sr.name}",
                f"Bonjour {display_name(signer)},\n\nTous les signataires ont signé « {sr.name} ».\n"
                f"Document signé : {state.public_url}/sign/{signer.id}",
                "document_signed",
                link=f"{state.public_url}/sign/{signer.id}",
                signature_request_id=sr.id,
                signer_id=signer.id,
            )


def mention_text(mention: str, signed_at: datetime) -> str:
    """A mention as YouSign writes it on signing.

    `%date%` becomes "24-03-2025" and `%datetime%` "24-03-2025 10:30 UTC+0".
    """
    at = signed_at.astimezone(UTC)
    return mention.replace("%datetime%", f"{at:%d-%m-%Y %H:%M} UTC+0").replace("%date%", f"{at:%d-%m-%Y}")


def _signed_copy(sr: SignatureRequest, document: Document, signers: list[Signer]) -> bytes:
    stamps = []
    for signer in signers:
        when = signer.signed_at.strftime("%d/%m/%Y %H:%M UTC") if signer.signed_at else ""
        for f in signer.fields:
            if f.document_id != document.id:
                continue
            if f.type == "signature":
                text = f"Signé électroniquement par {display_name(signer)} le {when}"
                stamps.append(Stamp(f.page, f.x, f.y, f.width or 85, f.height or 37, text))
            elif f.type == "mention" and signer.signed_at:
                text = mention_text(f.extra.get("mention", ""), signer.signed_at)
                stamps.append(Stamp(f.page, f.x, f.y, f.width or 150, f.height or 24, text, framed=False))
    certificate = [
        f"Demande : {sr.name} ({sr.id})",
        f"Document : {document.filename}",
        f"Empreinte SHA-256 de l'original : {document.sha256}",
        "",
    ]
    certificate += [f"Signé par {display_name(s)} <{s.info['email']}> le {iso(s.signed_at)}" for s in signers]
    certificate += ["", "Émulateur YouSign : signature sans valeur juridique."]
    return signed_pdf(document.content, stamps, certificate)


def decline(state: EmulatorState, signer: Signer, reason: str) -> None:
    sr = state.signature_request(signer.signature_request_id)
    _require_signer_turn(sr, signer, "decline")
    if not sr.signers_allowed_to_decline:
        raise ApiError(
            400,
            "signer.decline_not_allowed",
            f'The signature request "{sr.id}" does not allow signers to decline.',
        )
    declined_at = now_utc()
    signer.status, signer.declined_at, signer.decline_reason = "declined", declined_at, reason
    sr.status = "declined"
    sr.decline_information = {"signer_id": signer.id, "reason": reason, "declined_at": iso(declined_at)}
    audit(sr, f"{display_name(signer)} a refusé de signer : {reason}", signer.id)
    data = {"signature_request": state.sr_json(sr), "signer": serializers.signer(signer)}
    state.emit("signer.declined", data)
    state.emit("signature_request.declined", data)


def remind(state: EmulatorState, sr: SignatureRequest, signer: Signer) -> None:
    require_status(sr, ("ongoing",), "send a reminder")
    if signer.status != "notified":
        raise status_not_compatible("signer", signer.id, signer.status, "receive a reminder")
    signer.reminders_sent += 1
    audit(sr, f"Relance envoyée à {display_name(signer)}", signer.id)
    state.emit(
        "signature_request.reminder_executed",
        {"signature_request": state.sr_json(sr), "signer": serializers.signer(signer)},
    )
    if (signer.delivery_mode or sr.delivery_mode) == "email":
        state.send_email(
            signer.info["email"],
            signer.custom_text.get("reminder_subject") or f"Rappel : signature en attente pour {sr.name}",
            f"Bonjour {display_name(signer)},\n\nLe document « {sr.name} » attend toujours votre signature.\n"
            f"Signer le document : {signer.signature_link}",
            "reminder",
            link=signer.signature_link,
            signature_request_id=sr.id,
            signer_id=signer.id,
        )
