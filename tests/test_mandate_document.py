"""What a mandate prints is read from the store when it is rendered: for a bulk mandate, hours after
it was numbered. Rendering must print the verified representative and refuse a number naming
another platform than the text."""

from datetime import date

import pytest

from domain.errors import Unprintable
from domain.models import LegalRepresentative, Platform
from store import dossiers, firms, kyc, mandates
from store.mandate_content import document_data, ensure_still_current
from store.records import KycFile
from tests.helpers import FIRM_REP, verified_firm_with_dossier

NEWCOMER = LegalRepresentative(first_name="Nouveau", last_name="Gérant", email="nouveau@cabinet.fr")


async def reserved(db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 3, 1))
    dossier, _ = await dossiers.get_dossier(db, firm.id, dossier.id)
    return mandate, dossier


async def test_the_verified_representative_is_printed_while_a_newer_one_is_checked(db, firm):
    mandate, dossier = await reserved(db, firm)
    files = [KycFile(side="front", content_type="image/png", content=b"x")]
    newer = await kyc.create_submission(db, firm.id, NEWCOMER, "passport", files)

    data = await document_data(db, mandate, dossier)
    assert data.firm_representative.last_name == FIRM_REP.last_name  # not the unverified newcomer

    await kyc.complete_submission(
        db, newer.id, status="verified", reason=None, status_codes=[], completed_at=newer.created_at
    )
    assert (await document_data(db, mandate, dossier)).firm_representative.last_name == "Gérant"


async def test_a_mandate_numbered_for_another_platform_is_not_rendered(db, firm):
    mandate, dossier = await reserved(db, firm)
    assert "_552081317_" in mandate.number
    await firms.set_platform(db, firm.id, Platform(name="Autre PA", matricule="0815"))
    with pytest.raises(Unprintable, match="changed after this mandate was numbered for 552081317"):
        await document_data(db, mandate, dossier)


async def test_a_platform_siren_stored_before_zeros_were_refused_fails_the_print_for_good(db, firm):
    mandate, dossier = await reserved(db, firm)
    await db.execute("UPDATE firms SET platform_siren = '000000000' WHERE id = $1", firm.id)
    with pytest.raises(Unprintable, match=r"cannot be printed: platform\.siren"):
        await document_data(db, mandate, dossier)


async def test_a_draft_is_checked_even_without_its_fingerprint(db, firm):
    mandate, dossier = await reserved(db, firm)
    await ensure_still_current(db, mandate, dossier)  # nothing rendered yet, nothing changed: fine
    # A draft rendered before fingerprints were kept: its number still says which platform.
    await firms.set_platform(db, firm.id, Platform(name="Autre PA", matricule="0815"))
    with pytest.raises(Unprintable, match="changed after this mandate was numbered"):
        await ensure_still_current(db, mandate, dossier)


async def test_a_draft_is_not_sent_while_a_new_representative_is_checked(db, firm):
    mandate, dossier = await reserved(db, firm)
    files = [KycFile(side="front", content_type="image/png", content=b"x")]
    await kyc.create_submission(db, firm.id, NEWCOMER, "passport", files)
    # Met by the send's activity too (a submission after the gateway's check, or during a retry).
    with pytest.raises(Unprintable, match=r"not verified \(pending\): wait until"):
        await ensure_still_current(db, mandate, dossier)


def test_an_unprintable_mandate_fails_its_activity_for_good():
    from temporalio.exceptions import ApplicationError

    from activities.mandate_document import unprintable_is_final

    with pytest.raises(ApplicationError, match="changed since") as e, unprintable_is_final():
        raise Unprintable("the firm's platform changed since")
    assert (e.value.type, e.value.non_retryable) == ("IncompleteData", True)
