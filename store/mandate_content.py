"""What a stored mandate says: the data its PDF prints, read from the store (the dossier, the firm,
its verified representative), the fingerprint kept with its document, and whether a draft still
says what the dossier and the firm say now. Shared by the gateway (a send refused at once) and the
activities (which render it, and check again before YouSign has it)."""

from __future__ import annotations

import hashlib

import asyncpg
from pydantic import ValidationError

from documents.models import CompanyParty, MandateDocumentData, Person, PlatformParty
from domain.errors import RuleViolation, Unprintable
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
        raise Unprintable("dossier or firm is incomplete")
    if submission is None:
        raise Unprintable("the firm has no verified legal representative")
    try:
        changed = numbered_for_another_platform(mandate.number, firm.platform.siren, firm.platform.matricule)
    except RuleViolation as stored_before_the_rule:  # a platform SIREN the API refuses now
        raise Unprintable(f"the mandate cannot be printed: {stored_before_the_rule}") from None
    if changed:
        raise Unprintable(changed)
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
        raise Unprintable(f"the mandate cannot be printed: {problems}") from None


def fingerprint(data: MandateDocumentData) -> str:
    """What a mandate says, as a SHA-256: equal as long as its data is (whatever the renderer's
    version; a field added later with its default changes nothing)."""
    return hashlib.sha256(data.model_dump_json(exclude_defaults=True).encode()).hexdigest()


async def ensure_still_current(db: asyncpg.Pool, mandate: Mandate, dossier: Dossier) -> None:
    """A draft is sent only while the firm's representative is verified (not while a new one is
    checked) and if it still says what the dossier and the firm say now (their platform,
    representative, names...); else the firm deletes it and generates a new one (its number too)."""
    if reason := why_not_verified(await kyc.verification_state(db, mandate.firm_id)):
        raise Unprintable(reason)
    data = await document_data(db, mandate, dossier)  # a number for another platform is refused there
    stored = await mandates.document_source(db, mandate.id)
    if stored is not None and stored != fingerprint(data):  # none for drafts older than fingerprints
        raise Unprintable(
            "the draft no longer says what the dossier and the firm say now (their platform, "
            "representative or names changed since): delete it and generate a new one"
        )
