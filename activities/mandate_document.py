"""The mandate PDF of a stored mandate: its data read from the database, rendered, stored."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.models import GeneratedDocument
from clients.yousign_models import DateMention, MentionPlacement, SignatureFieldPlacement
from documents.mandate_pdf import date_line_under, face_of, render_mandate_pdf
from documents.mandate_text import DATE_MENTION
from documents.models import CompanyParty, MandateDocumentData, Person, PlatformParty, SignatureField
from domain.errors import RuleViolation
from domain.firm_verification import why_not_verified
from domain.mandate_number import issued_on_of, numbered_for_another_platform
from domain.models import Platform
from store import firms, kyc, mandates
from store.records import Dossier, Mandate


def _person(rep) -> Person:
    return Person(
        first_name=rep.first_name,
        last_name=rep.last_name,
        birth_name=rep.birth_name,
        email=rep.email,
        position=getattr(rep, "position", None),  # a client's; the firm's check does not ask for it
    )


def _platform_party(platform: Platform) -> PlatformParty:
    return PlatformParty(name=platform.name, siren=platform.siren, matricule=platform.matricule)


async def document_data(db: asyncpg.Pool, mandate: Mandate, dossier: Dossier) -> MandateDocumentData:
    firm = await firms.get_firm(db, mandate.firm_id)
    submission = await kyc.verified_submission(db, mandate.firm_id)
    if dossier.legal_representative is None or dossier.siret is None or firm.platform is None:
        raise ApplicationError("dossier or firm is incomplete", type="IncompleteData", non_retryable=True)
    if submission is None:
        raise ApplicationError(
            "the firm has no verified legal representative", type="IncompleteData", non_retryable=True
        )
    try:
        changed = numbered_for_another_platform(mandate.number, firm.platform.siren, firm.platform.matricule)
    except RuleViolation as stored_before_the_rule:  # a platform SIREN the API refuses now
        raise ApplicationError(
            f"the mandate cannot be printed: {stored_before_the_rule}",
            type="IncompleteData",
            non_retryable=True,
        ) from None
    if changed:
        raise ApplicationError(changed, type="IncompleteData", non_retryable=True)
    try:
        return MandateDocumentData(
            mandate_number=mandate.number,
            # The number's day, so number and date agree even across midnight; effective when signed.
            issued_on=issued_on_of(mandate.number),
            client=CompanyParty(name=dossier.name, siren=dossier.siren, siret=dossier.siret),
            client_representative=_person(dossier.legal_representative),
            firm=CompanyParty(name=firm.name, siren=firm.siren, address=firm.address),
            firm_representative=_person(submission.representative),
            platform=_platform_party(firm.platform),
            previous_platform=_platform_party(dossier.previous_platform)
            if dossier.previous_platform
            else None,
        )
    except ValidationError as invalid:
        # Stored before the API refused it (a character the PDF cannot print...): retrying cannot help.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise ApplicationError(
            f"the mandate cannot be printed: {problems}", type="IncompleteData", non_retryable=True
        ) from None


async def render_and_store(
    db: asyncpg.Pool, mandate: Mandate, dossier: Dossier
) -> tuple[bytes, GeneratedDocument]:
    """Render the mandate's PDF and store it as its `generated` document (same data, same bytes)."""
    # ~4 ms of pure Python: on the event loop. A thread would hold the GIL just the same, and handing
    # over to it cost more than it spared (bench b: 33.0 -> 34.7 mandates/s inline, p90 latencies lower).
    # A mandate in the embedded face takes ~75 ms: in a thread, which lets the loop run meanwhile.
    data = await document_data(db, mandate, dossier)
    if face_of(data).core:
        rendered = render_mandate_pdf(data)
    else:
        rendered = await asyncio.to_thread(render_mandate_pdf, data)
    digest = await mandates.save_document(db, mandate.id, "generated", rendered.pdf, fingerprint(data))
    return rendered.pdf, GeneratedDocument(
        sha256=digest,
        page_count=rendered.page_count,
        signature_field=SignatureFieldPlacement(**rendered.signature_field.model_dump()),
    )


def fingerprint(data: MandateDocumentData) -> str:
    """What a mandate says, as a SHA-256: equal as long as its data is (whatever the renderer's
    version; a field added later with its default changes nothing)."""
    return hashlib.sha256(data.model_dump_json(exclude_defaults=True).encode()).hexdigest()


async def ensure_still_current(db: asyncpg.Pool, mandate: Mandate, dossier: Dossier) -> None:
    """A draft is sent only while the firm's representative is verified (not while a new one is
    checked) and if it still says what the dossier and the firm say now (their platform,
    representative, names...); else the firm deletes it and generates a new one (its number too).
    The gateway refuses a send so, and the send's activity checks again before YouSign has it."""
    if reason := why_not_verified(await kyc.verification_state(db, mandate.firm_id)):
        raise ApplicationError(reason, type="IncompleteData", non_retryable=True)
    data = await document_data(db, mandate, dossier)  # a number for another platform is refused there
    stored = await mandates.document_source(db, mandate.id)
    if stored is not None and stored != fingerprint(data):  # none for drafts older than fingerprints
        raise ApplicationError(
            "the draft no longer says what the dossier and the firm say now (their platform, "
            "representative or names changed since): delete it and generate a new one",
            type="IncompleteData",
            non_retryable=True,
        )


def date_mention_under(field: SignatureFieldPlacement) -> DateMention:
    """The signature date, which YouSign writes on the line the PDF leaves blank under the box."""
    line = date_line_under(SignatureField(**field.model_dump()))
    return DateMention(text=DATE_MENTION, placement=MentionPlacement(**line.model_dump()))
