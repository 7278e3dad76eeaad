"""Binary answers: document downloads (current / completed, PDF or ZIP) and audit trails."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter

from .errors import ApiError
from .models import Document, SignatureRequest, Signer
from .pdfs import audit_trail_pdf
from .state import EmulatorState
from .timeutil import iso


@dataclass
class Download:
    content: bytes
    media_type: str
    filename: str


def _zip(files: list[tuple[str, bytes]], name: str) -> Download:
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename, content in files:
            unique, n = filename, 1
            while unique in used:  # two documents may share a file name
                n += 1
                unique = f"{n}-{filename}"
            used.add(unique)
            archive.writestr(unique, content)
    return Download(buffer.getvalue(), "application/zip", name)


def _pdf_name(filename: str) -> str:
    return filename if filename.lower().endswith(".pdf") else filename + ".pdf"


def documents(state: EmulatorState, sr: SignatureRequest, version: str | None, archive: bool) -> Download:
    version = version or ("completed" if sr.status == "done" else "current")
    if version == "completed" and sr.status != "done":
        raise ApiError(
            400,
            "document.unable_to_download_signature_request_not_in_done",
            f'The signature request "{sr.id}" is {sr.status}, the completed documents are not available yet',
        )
    docs = list(state.sr_documents(sr).values())
    if not docs:
        raise ApiError(400, "document.not_found", f'The signature request "{sr.id}" has no document.')
    files = [(_pdf_name(d.filename), _content(d, version)) for d in docs]
    if len(files) == 1 and not archive:
        return Download(files[0][1], "application/pdf", files[0][0])
    return _zip(files, f"{sr.id}.zip")


def document(state: EmulatorState, sr: SignatureRequest, document_id: str) -> Download:
    doc = state.sr_documents(sr).get(document_id)
    if doc is None:
        raise ApiError(404, "resource.not_found", f'The document "{document_id}" was not found.')
    version = "completed" if sr.status == "done" else "current"
    return Download(_content(doc, version), "application/pdf", _pdf_name(doc.filename))


def _content(doc: Document, version: str) -> bytes:
    if version == "completed" and doc.signed_content is not None:
        return doc.signed_content
    return doc.content


def _signer_trail(state: EmulatorState, sr: SignatureRequest, signer: Signer) -> bytes:
    info = signer.info
    header = [
        f"Demande de signature : {sr.name}",
        f"Identifiant : {sr.id}",
        f"Signataire : {info['first_name']} {info['last_name']} <{info['email']}>",
        f"Niveau : {signer.signature_level}",
        f"Authentification : {signer.signature_authentication_mode or 'aucune'}",
        f"Signé le : {iso(signer.signed_at)}",
        "Documents : "
        + ", ".join(f"{d.filename} (sha256 {d.sha256})" for d in state.sr_documents(sr).values()),
    ]
    events = [(e.at, e.text) for e in sr.audit if e.signer_id in (None, signer.id)]
    return audit_trail_pdf("Piste d'audit (émulateur YouSign)", header, events)


def signer_audit_trail(state: EmulatorState, sr: SignatureRequest, signer: Signer) -> Download:
    if signer.status != "signed":
        raise ApiError(
            400,
            "audit_trail.not_ready_for_download",
            f'The signer "{signer.id}" has not signed: the audit trail is not ready.',
        )
    return Download(_signer_trail(state, sr, signer), "application/pdf", f"audit-trail-{signer.id}.pdf")


def audit_trails(state: EmulatorState, sr: SignatureRequest, merge: bool) -> Download:
    if sr.status != "done":
        raise ApiError(
            400,
            "audit_trail.not_ready_for_download",
            f'The signature request "{sr.id}" is {sr.status}: audit trails need status done.',
        )
    signers = state.sr_signers(sr)
    if len(signers) == 1 or merge:
        lines_by_signer = [_signer_trail(state, sr, s) for s in signers]
        if len(lines_by_signer) == 1:
            return Download(lines_by_signer[0], "application/pdf", f"audit-trail-{sr.id}.pdf")
        return Download(_merge(lines_by_signer), "application/pdf", f"audit-trails-{sr.id}.pdf")
    return _zip(
        [(f"audit-trail-{s.id}.pdf", _signer_trail(state, sr, s)) for s in signers],
        f"audit-trails-{sr.id}.zip",
    )


def _merge(pdfs: list[bytes]) -> bytes:
    writer = PdfWriter()
    for content in pdfs:
        writer.append(PdfReader(io.BytesIO(content)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
