"""The PostgreSQL store on a real (embedded) server: round-trips and the invariants its constraints hold."""

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from domain.errors import Conflict, NotFound
from domain.models import ClientRepresentative, LegalRepresentative, Platform
from domain.status import DossierStatus, MandateStatus
from store import dossiers, firms, kyc, mandates, webhooks
from store.database import migrate
from store.records import KycFile
from tests.helpers import establishment_siret, eventually

REP = ClientRepresentative(first_name="Jeanne", last_name="Martin", birth_name="Durand", email="j@acme.fr")
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


async def ready_dossier(db, firm, name="ACME SAS", establishment=7):
    await firms.set_platform(db, firm.id, Platform(name="PA Exemple", siren="552081317"))
    return await dossiers.create_dossier(
        db,
        firm.id,
        name=name,
        siret=establishment_siret(establishment, "732829320"),
        legal_representative=REP,
    )


async def test_migrations_are_recorded_and_not_reapplied(db):
    assert await migrate(db) == []
    versions = [r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")]
    assert versions == [
        "0001_initial",
        "0002_unique_mandate_number",
        "0003_siret_prefix_index",
        "0004_previous_platform",
        "0005_document_source",
        "0006_bulk_item_by_mandate",
        "0007_bulk_items_in_progress",
        "0008_mandates_sent_at",
        "0009_dossier_archive",
        "0010_installation",
        "0011_representative_position",
    ]


async def test_api_keys_are_hashed_and_revocable(db, firm):
    key = await firms.issue_api_key(db, firm.id)
    assert await firms.firm_id_for_api_key(db, key) == firm.id
    stored = await db.fetchval("SELECT key_hash FROM api_keys WHERE firm_id = $1", firm.id)
    assert key.encode() not in stored and len(stored) == 32
    assert await firms.firm_id_for_api_key(db, key + "x") is None
    assert await firms.revoke_api_keys(db, firm.id) == 1
    assert await firms.firm_id_for_api_key(db, key) is None


async def test_firm_platform_round_trip(db, firm):
    updated = await firms.set_platform(db, firm.id, Platform(name="PA", matricule="0042"))
    assert updated.platform == Platform(name="PA", matricule="0042")
    assert (await firms.get_firm(db, firm.id)).platform.identifier() == "0042"


async def test_dossier_status_follows_its_data(db, firm):
    dossier = await dossiers.create_dossier(
        db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
    )
    assert dossier.einvoicing_status == DossierStatus.MISSING_INFORMATION
    dossier = await dossiers.update_dossier(db, firm.id, dossier.id, siret="73282932000074")
    assert dossier.einvoicing_status == DossierStatus.MISSING_INFORMATION
    dossier = await dossiers.update_dossier(db, firm.id, dossier.id, legal_representative=REP)
    assert dossier.einvoicing_status == DossierStatus.READY_FOR_MANDATE
    assert (dossier.siren, dossier.legal_representative) == ("732829320", REP)


async def test_dossier_of_another_firm_is_not_found(db, firm):
    dossier = await ready_dossier(db, firm)
    other = await firms.create_firm(db, name="Autre", siren="552081317")
    with pytest.raises(NotFound):
        await dossiers.get_dossier(db, other.id, dossier.id)
    with pytest.raises(NotFound):
        await dossiers.update_dossier(db, other.id, dossier.id, name="x")


async def test_list_filters_searches_and_paginates(db, firm):
    ready = [await ready_dossier(db, firm, name=f"Client {i}", establishment=i + 1) for i in range(5)]
    missing = await dossiers.create_dossier(
        db, firm.id, name="Boulangerie", siret=None, legal_representative=None
    )
    seen, cursor = [], None
    while True:
        page, cursor = await dossiers.list_dossiers(db, firm.id, limit=2, cursor=cursor)
        seen += [d.id for d, _ in page]
        if cursor is None:
            break
    assert seen == [d.id for d in ready] + [missing.id]
    page, _ = await dossiers.list_dossiers(db, firm.id, statuses=[DossierStatus.MISSING_INFORMATION])
    assert [d.id for d, _ in page] == [missing.id]
    page, _ = await dossiers.list_dossiers(db, firm.id, search="boulang")
    assert [d.id for d, _ in page] == [missing.id]
    page, _ = await dossiers.list_dossiers(db, firm.id, search="732 829")
    assert len(page) == 5
    garage = await dossiers.create_dossier(
        db, firm.id, name="Garage 2000", siret=None, legal_representative=None
    )
    page, _ = await dossiers.list_dossiers(db, firm.id, search="2000")  # digits in a name, too
    assert [d.id for d, _ in page] == [garage.id]
    await db.execute("DELETE FROM dossiers WHERE id = $1", garage.id)
    page, _ = await dossiers.list_dossiers(db, firm.id, search="100%_")
    assert page == []
    page, _ = await dossiers.list_dossiers(db, firm.id, search="   ")  # no search: not "every SIRET"
    assert len(page) == 6
    for wildcard in ("%", "_", "7_"):  # LIKE's wildcards are searched as such, in names and SIRETs
        page, _ = await dossiers.list_dossiers(db, firm.id, search=wildcard)
        assert page == [], wildcard
    counts = await dossiers.status_counts(db, firm.id)
    assert counts[DossierStatus.READY_FOR_MANDATE] == 5 and counts[DossierStatus.MISSING_INFORMATION] == 1
    assert counts[DossierStatus.MANDATE_PENDING] == 0


async def test_the_list_filters_on_the_current_mandates_status(db, firm):
    dossier = await ready_dossier(db, firm)
    other = await dossiers.create_dossier(db, firm.id, name="Autre", siret=None, legal_representative=None)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))

    async def listed(*statuses: MandateStatus) -> list:
        page, _ = await dossiers.list_dossiers(db, firm.id, mandate_statuses=list(statuses))
        return [d.id for d, _ in page]

    assert await listed(MandateStatus.DRAFT) == [dossier.id]
    assert await listed(MandateStatus.FAILED, MandateStatus.PENDING) == []
    assert await listed() == [dossier.id, other.id]  # no filter
    await mandates.transition(db, mandate.id, MandateStatus.FAILED, cause="test", at=datetime.now(UTC))
    assert await listed(MandateStatus.FAILED) == [dossier.id]  # ready_for_mandate, its mandate failed


async def test_only_a_dossier_whose_mandate_is_signed_or_deleted_is_archived(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    now = datetime.now(UTC)
    for status, archivable in (
        (MandateStatus.SENDING, False),
        (MandateStatus.PENDING, False),
        (MandateStatus.SIGNED, True),
    ):
        await mandates.transition(db, mandate.id, status, cause="test", at=now)
        if not archivable:
            with pytest.raises(Conflict, match="awaits the client's signature"):
                await dossiers.archive_dossier(db, firm.id, dossier.id)
    await dossiers.archive_dossier(db, firm.id, dossier.id)
    archived, signed = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert archived.archived_at and signed.status == MandateStatus.SIGNED  # readable, as it was
    assert archived.einvoicing_status == DossierStatus.READY_FOR_DESIGNATION
    with pytest.raises(Conflict, match="archived"):
        await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 11))


async def waiting_on_a_reservation(db, firm, dossier, write):
    """`write` started while a bulk mandate's reservation holds the dossier's lock (its mandate
    inserted, not yet committed); returned once that reservation commits."""
    async with db.acquire() as conn:
        reserving = conn.transaction()
        await reserving.start()
        await conn.execute("SELECT 1 FROM dossiers WHERE id = $1 FOR UPDATE", dossier.id)
        await conn.execute(
            "INSERT INTO mandates (dossier_id, firm_id, seq, number, workflow_id, status)"
            " VALUES ($1, $2, 1, $3, $4, 'sending')",
            dossier.id,
            firm.id,
            f"{dossier.siren}_552081317_20270110_{uuid4().int % 10**6:06d}",
            mandates.workflow_id_for(dossier.id, 1),
        )
        waiting = asyncio.ensure_future(write())
        await eventually(lambda: db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        assert not waiting.done()  # waits for the reservation's lock
        await reserving.commit()
    return waiting


async def test_an_archive_waiting_for_a_reservation_sees_its_mandate(db, firm):
    dossier = await ready_dossier(db, firm)
    archiving = await waiting_on_a_reservation(
        db, firm, dossier, lambda: dossiers.archive_dossier(db, firm.id, dossier.id)
    )
    with pytest.raises(Conflict, match="awaits the client's signature"):
        await archiving  # not archived with a mandate on its way to the client
    assert (await dossiers.get_dossier(db, firm.id, dossier.id))[0].archived_at is None


async def test_a_change_waiting_for_a_reservation_sees_its_mandate(db, firm):
    dossier = await ready_dossier(db, firm)
    renaming = await waiting_on_a_reservation(
        db, firm, dossier, lambda: dossiers.update_dossier(db, firm.id, dossier.id, name="Autre nom")
    )
    with pytest.raises(Conflict, match="cannot change while its mandate is sending"):
        await renaming  # what the mandate on its way prints stays as it is


async def test_bad_cursor_is_a_value_error(db, firm):
    with pytest.raises(ValueError, match="cursor"):
        await dossiers.list_dossiers(db, firm.id, cursor="not-a-cursor")


async def test_mandate_reservation_numbers_and_logs(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    assert re.fullmatch(r"732829320_552081317_20270110_\d{2,}", mandate.number)
    assert mandate.workflow_id == f"mandate-{dossier.id}-1"
    assert mandate.status == MandateStatus.DRAFT
    _, live = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert live.id == mandate.id
    with pytest.raises(Conflict, match="already has a draft mandate: delete it"):
        await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))


async def test_a_draft_keeps_what_it_prints_until_it_is_deleted(db, firm):
    dossier = await ready_dossier(db, firm)
    await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    # Unchanged values are no change (the gateway deletes the draft before a real one).
    await dossiers.update_dossier(db, firm.id, dossier.id, name="ACME SAS", legal_representative=REP)
    for change in ({"name": "ACME SA"}, {"siret": "55208131766522"}, {"legal_representative": None}):
        with pytest.raises(Conflict, match="draft mandate shows"):
            await dossiers.update_dossier(db, firm.id, dossier.id, **change)
    stored, draft = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert (stored.name, stored.siret, stored.legal_representative) == ("ACME SAS", "73282932000074", REP)
    assert draft.status == MandateStatus.DRAFT


async def test_reservation_needs_platform_and_ready_dossier(db, firm):
    dossier = await dossiers.create_dossier(
        db, firm.id, name="X", siret="73282932000074", legal_representative=REP
    )
    with pytest.raises(Conflict, match="Plateforme"):
        await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    await firms.set_platform(db, firm.id, Platform(name="PA", matricule="0042"))
    incomplete = await dossiers.create_dossier(db, firm.id, name="Y", siret=None, legal_representative=None)
    with pytest.raises(Conflict, match="missing_information"):
        await mandates.reserve_mandate(db, firm.id, incomplete.id, issued_on=date(2027, 1, 10))


async def test_transitions_update_dossier_and_event_log(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    await mandates.transition(db, mandate.id, MandateStatus.SENDING, cause="send requested", at=NOW)
    sent = await mandates.transition(
        db,
        mandate.id,
        MandateStatus.PENDING,
        cause="activated",
        at=NOW,
        sent_at=NOW,
        expires_at=NOW + timedelta(days=31),
        signature_request_id=f"sr-{uuid4()}",
    )
    assert sent.sent_at == NOW
    # Repeating a transition (an activity retried) writes nothing more.
    await mandates.transition(db, mandate.id, MandateStatus.PENDING, cause="activated", at=NOW)
    d, _ = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert d.einvoicing_status == DossierStatus.MANDATE_PENDING
    with pytest.raises(Conflict, match="cannot change"):
        await dossiers.update_dossier(db, firm.id, dossier.id, name="Renamed")
    await mandates.transition(
        db, mandate.id, MandateStatus.SIGNED, cause="webhook signer.done", at=NOW, signed_at=NOW
    )
    with pytest.raises(Conflict, match="cannot become"):
        await mandates.transition(db, mandate.id, MandateStatus.EXPIRED, cause="late timer", at=NOW)
    log = await mandates.events(db, mandate.id)
    assert [(e.from_status, e.to_status) for e in log] == [
        (None, "draft"),
        ("draft", "sending"),
        ("sending", "pending"),
        ("pending", "signed"),
    ]
    assert log[-1].cause == "webhook signer.done"
    d, _ = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert d.einvoicing_status == DossierStatus.READY_FOR_DESIGNATION


async def test_event_log_is_append_only(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("UPDATE mandate_events SET cause = 'rewritten' WHERE mandate_id = $1", mandate.id)
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("DELETE FROM mandate_events WHERE mandate_id = $1", mandate.id)


async def test_delete_then_regenerate(db, firm):
    dossier = await ready_dossier(db, firm)
    first = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    await mandates.transition(db, first.id, MandateStatus.DELETED, cause="deleted by firm", at=NOW)
    second = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    assert second.seq == 2 and second.number.split("_")[-1] > first.number.split("_")[-1]
    assert (await mandates.get_mandate(db, first.id)).deleted_at == NOW


async def test_constraints_hold_the_invariants(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    # A second live mandate for the same dossier, written behind the store's back.
    with pytest.raises(asyncpg.UniqueViolationError, match="mandates_one_live_per_dossier"):
        await db.execute(
            "INSERT INTO mandates (dossier_id, firm_id, seq, number, workflow_id)"
            " VALUES ($1, $2, 9, 'n', $3)",
            dossier.id,
            firm.id,
            f"wf-{uuid4()}",
        )
    # One signature request can never belong to two mandates.
    other = await ready_dossier(db, firm, name="Other", establishment=8)
    other_mandate = await mandates.reserve_mandate(db, firm.id, other.id, issued_on=date(2027, 1, 10))
    assert await mandates.claim_signature_request(db, mandate.id, "sr-shared")
    with pytest.raises(asyncpg.UniqueViolationError):
        await mandates.claim_signature_request(db, other_mandate.id, "sr-shared")
    # A mandate keeps the first request recorded: a second attempt's own is refused, its own again is not.
    assert not await mandates.claim_signature_request(db, mandate.id, "sr-of-a-stale-attempt")
    assert await mandates.claim_signature_request(db, mandate.id, "sr-shared")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE dossiers SET siret = '123' WHERE id = $1", dossier.id)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE mandates SET status = 'lost' WHERE id = $1", mandate.id)


async def test_documents_and_reminders(db, firm):
    dossier = await ready_dossier(db, firm)
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    await mandates.save_document(db, mandate.id, "generated", b"%PDF-1")
    await mandates.save_document(db, mandate.id, "generated", b"%PDF-2")
    assert await mandates.get_document(db, mandate.id, "generated") == b"%PDF-2"
    assert await mandates.get_document(db, mandate.id, "signed") is None
    await mandates.record_reminder(db, mandate.id, NOW)
    await mandates.record_reminder(db, mandate.id, NOW)  # a retried activity: still one reminder
    assert await mandates.reminders(db, mandate.id) == [NOW]


async def test_kyc_submission_supersedes_and_forgets_files(db, firm):
    files = [KycFile(side="front", content_type="image/png", content=b"front")]
    first = await kyc.create_submission(db, firm.id, REP, "passport", files)
    second = await kyc.create_submission(db, firm.id, REP, "passport", files)
    assert (await kyc.get_submission(db, first.id)).status == "superseded"
    assert await kyc.load_files(db, first.id) == []  # its verification stops: its identity files go
    assert (await kyc.current_submission(db, firm.id)).id == second.id
    assert len(await kyc.load_files(db, second.id)) == 1
    await kyc.set_verification_id(db, second.id, "ver-1")
    assert (await kyc.submission_for_verification(db, "ver-1")).id == second.id
    assert await kyc.load_files(db, second.id) == []  # YouSign has them: ours go
    await kyc.complete_submission(
        db, second.id, status="verified", reason=None, status_codes=[], completed_at=NOW
    )
    assert (await kyc.current_submission(db, firm.id)).status == "verified"


async def test_the_firms_submission_lock_is_released_when_its_holder_fails(db, firm):
    # The session holding it is closed (not handed back to the pool locked): the next one gets it.
    with pytest.raises(RuntimeError):
        async with kyc.one_submission_at_a_time(db, firm.id):
            raise RuntimeError("the verification could not be started")
    async with asyncio.timeout(5), kyc.one_submission_at_a_time(db, firm.id):
        pass
    assert await db.fetchval("SELECT 1") == 1  # the pool replaced the closed connection


async def test_webhook_events_are_recorded_once(db):
    event_id = str(uuid4())
    assert await webhooks.record_webhook_event(db, event_id, "signer.done", "sr-1") is True
    assert await webhooks.record_webhook_event(db, event_id, "signer.done", "sr-1") is False


async def test_mandate_numbers_count_per_company_and_day(db, firm):
    first = await ready_dossier(db, firm, name="Établissement A")
    second = await dossiers.create_dossier(
        db,
        firm.id,
        name="Établissement B",
        siret=establishment_siret(21, "732829320"),
        legal_representative=REP,
    )
    day = date(2031, 5, 6)  # a day no other test uses
    a = await mandates.reserve_mandate(db, firm.id, first.id, issued_on=day)
    b = await mandates.reserve_mandate(db, firm.id, second.id, issued_on=day)
    assert (a.number, b.number) == ("732829320_552081317_20310506_01", "732829320_552081317_20310506_02")


async def test_concurrent_reservations_of_one_company_take_the_next_numbers(db, firm):
    await ready_dossier(db, firm)
    establishments = [
        await dossiers.create_dossier(
            db,
            firm.id,
            name=f"Établissement {i}",
            siret=establishment_siret(30 + i, "732829320"),
            legal_representative=REP,
        )
        for i in range(6)
    ]
    day = date(2031, 5, 7)  # a day no other test uses
    # An earlier mandate of that day numbered _03 (the counter continues after the highest).
    await db.execute(
        "INSERT INTO mandates (dossier_id, firm_id, seq, number, workflow_id, status)"
        " VALUES ($1, $2, 1, '732829320_552081317_20310507_03', $3, 'draft')",
        establishments[0].id,
        firm.id,
        f"mandate-{uuid4()}",
    )
    reserved = await asyncio.gather(
        *(mandates.reserve_mandate(db, firm.id, d.id, issued_on=day) for d in establishments[1:])
    )
    assert sorted(m.number[-2:] for m in reserved) == ["04", "05", "06", "07", "08"]


async def test_a_status_computed_meanwhile_does_not_overwrite_a_dossier_edit(db, firm):
    dossier = await ready_dossier(db, firm)
    draft = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    async with db.acquire() as editing, editing.transaction():
        # An edit removing the representative, not yet committed, while the draft is deleted.
        await editing.execute(
            "UPDATE dossiers SET rep_first_name = NULL, rep_last_name = NULL, rep_birth_name = NULL,"
            " rep_email = NULL WHERE id = $1",
            dossier.id,
        )
        await dossiers.refresh_status(editing, dossier.id)
        deleting = asyncio.ensure_future(
            mandates.transition(db, draft.id, MandateStatus.DELETED, cause="deleted", at=NOW)
        )
        await eventually(lambda: db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))
    await deleting
    d, _ = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert d.einvoicing_status == DossierStatus.MISSING_INFORMATION


async def test_a_batchs_last_progress_is_its_own_or_the_services_latest_send(db, firm):
    from store import bulk

    dossier = await ready_dossier(db, firm)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    later, latest = datetime(2100, 1, 1, tzinfo=UTC), datetime(2100, 1, 2, tzinfo=UTC)
    # Far ahead of whatever other tests stamped; undone at the end, so they never see these times.
    async with db.acquire() as conn:
        undo = conn.transaction()
        await undo.start()
        try:
            await conn.execute(
                "UPDATE bulk_send_items SET updated_at = $2 WHERE bulk_send_id = $1", batch.id, later
            )
            assert (await bulk.last_progress(conn, batch.id))[0] == later  # its own item moved last
            # Another batch's (or a single) send since: the queue is moving, this batch waits its turn.
            await conn.execute("UPDATE mandates SET sent_at = $2 WHERE id = $1", mandate.id, latest)
            moved, now = await bulk.last_progress(conn, batch.id)
            assert moved == latest and now.tzinfo is not None
            # Polled with every progress answer: the latest send comes from an index, not a scan of
            # all mandates (the planner is told to avoid scans, as it would on a large table).
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN SELECT max(sent_at) FROM mandates"))
            assert "mandates_sent_at" in plan, plan
        finally:
            await undo.rollback()


async def test_ids_that_are_none_of_the_firms_dossiers_are_skipped_as_the_batch_is_recorded(db, firm):
    from store import bulk

    ours = await ready_dossier(db, firm)
    other = await firms.create_firm(db, name="Autre", siren="552081317")
    theirs = await ready_dossier(db, other)
    batch = await bulk.create_bulk_send(db, firm.id, [uuid4(), ours.id, theirs.id])
    items = await bulk.items(db, batch.id)
    assert [(i.outcome, i.reason) for i in items] == [
        ("skipped", "dossier not found"),
        ("queued", None),
        ("skipped", "dossier not found"),  # another firm's is no more ours than an unknown id
    ]
    # Its run has not started: the sweep still finds it (once old enough), skipped items and all.
    await db.execute("UPDATE bulk_sends SET created_at = now() - interval '1 hour' WHERE id = $1", batch.id)

    async def is_untouched() -> bool:
        found = await bulk.unfinished(db, older_than=timedelta(minutes=10))
        return {b.id: flag for b, flag in found}[batch.id]

    assert await is_untouched()
    await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=date(2027, 1, 10))
    assert not await is_untouched()  # its run has started (its dossier is being sent)


async def test_a_page_reserved_before_a_crash_is_adopted_not_skipped(db, firm):
    from store import bulk

    dossier = await ready_dossier(db, firm)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    # An earlier attempt reserved the mandate, then its worker died before recording it on the item.
    orphan = await mandates.reserve_mandate(
        db, firm.id, dossier.id, issued_on=date(2027, 1, 10), bulk_send_id=batch.id
    )
    seen: list[int] = []
    to_start, more = await bulk.reserve_page(
        db, batch, start=0, size=10, at=NOW, issued_on=date(2027, 1, 10), on_item=seen.append
    )
    assert ([m.id for m in to_start], more, seen) == ([orphan.id], False, [0])
    assert await bulk.outcome_counts(db, batch.id) == {
        "queued": 0,
        "sending": 1,
        "sent": 0,
        "skipped": 0,
        "failed": 0,
    }


async def test_a_previewed_draft_is_adopted_and_each_item_keeps_its_first_outcome(db, firm):
    from store import bulk

    previewed, unrendered, sent, orphaned = [
        await ready_dossier(db, firm, name=f"Client {i}", establishment=i + 1) for i in range(4)
    ]
    drafts = [
        await mandates.reserve_mandate(db, firm.id, d.id, issued_on=date(2027, 1, 10))
        for d in (previewed, unrendered, orphaned)
    ]
    await mandates.save_document(db, drafts[0].id, "generated", b"%PDF-")  # only the first is rendered yet
    # Reserved long ago and never rendered: its run never started (the gateway stopped in between).
    await db.execute(
        "UPDATE mandates SET created_at = now() - interval '2 minutes' WHERE id = $1", drafts[2].id
    )
    batch = await bulk.create_bulk_send(db, firm.id, [previewed.id, unrendered.id, sent.id, orphaned.id])
    to_start, _ = await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=date(2027, 1, 10))
    assert [(m.dossier_id, m.status) for m in to_start] == [(previewed.id, "draft"), (sent.id, "sending")]
    assert (await mandates.get_mandate(db, drafts[0].id)).bulk_send_id == batch.id
    # The firm deletes the adopted draft before it goes out: skipped, saying why.
    await mandates.transition(db, drafts[0].id, MandateStatus.DELETED, cause="deleted by the firm", at=NOW)
    # Sent, then refused and deleted: it was sent all the same.
    await mandates.transition(db, to_start[1].id, MandateStatus.PENDING, cause="sent for signature", at=NOW)
    await mandates.transition(db, to_start[1].id, MandateStatus.REFUSED, cause="declined", at=NOW)
    await mandates.transition(db, to_start[1].id, MandateStatus.DELETED, cause="deleted by the firm", at=NOW)
    items = {i.dossier_id: (i.outcome, i.reason) for i in await bulk.items(db, batch.id, after=-1, limit=10)}
    assert items[previewed.id] == ("skipped", "deleted by the firm")
    assert items[sent.id] == ("sent", None)
    # Its workflow may not run yet to be told to send it: not adopted, and the firm is told why.
    assert items[unrendered.id] == ("skipped", bulk.DRAFT_BEING_GENERATED)
    assert items[orphaned.id] == (
        "skipped",
        "the dossier already has a draft mandate: delete it before generating a new one",
    )


async def test_another_firms_batch_never_adopts_a_draft(db, firm):
    from store import bulk

    dossier = await ready_dossier(db, firm)
    draft = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
    await mandates.save_document(db, draft.id, "generated", b"%PDF-")
    other = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
    batch = await bulk.create_bulk_send(db, other.id, [dossier.id])  # our dossier's id, in their batch
    to_start, _ = await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=date(2027, 1, 10))
    assert to_start == [] and (await mandates.get_mandate(db, draft.id)).bulk_send_id is None
    [item] = await bulk.items(db, batch.id, after=-1, limit=10)
    assert (item.outcome, item.reason) == ("skipped", "dossier not found")


async def test_a_page_replaces_only_a_mandate_that_failed_before_yousign_had_it(db, firm):
    from store import bulk

    unsent, sent_then_failed, incomplete = [
        await ready_dossier(db, firm, name=f"Client {i}", establishment=i + 1) for i in range(3)
    ]
    failed = {}
    for dossier in (unsent, sent_then_failed, incomplete):
        mandate = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
        if dossier is sent_then_failed:  # YouSign may have it
            assert await mandates.claim_signature_request(db, mandate.id, "sr-1")
        failed[dossier.id] = await mandates.transition(
            db, mandate.id, MandateStatus.FAILED, cause="sending failed", at=NOW
        )
    await db.execute("UPDATE dossiers SET siret = NULL WHERE id = $1", incomplete.id)
    await dossiers.refresh_status(db, incomplete.id)
    batch = await bulk.create_bulk_send(db, firm.id, [unsent.id, sent_then_failed.id, incomplete.id])
    for _ in range(2):  # a retried page finds the same
        to_start, _ = await bulk.reserve_page(
            db, batch, start=0, size=10, at=NOW, issued_on=date(2027, 1, 11)
        )
        assert [m.dossier_id for m in to_start] == [unsent.id]
        replaced = await bulk.replaced_workflow_ids(db, batch.id, [m.dossier_id for m in to_start])
        assert replaced == [failed[unsent.id].workflow_id]
    statuses = {d: (await mandates.get_mandate(db, m.id)).status for d, m in failed.items()}
    assert statuses == {unsent.id: "deleted", sent_then_failed.id: "failed", incomplete.id: "failed"}
    items = {i.dossier_id: (i.outcome, i.reason) for i in await bulk.items(db, batch.id, after=-1, limit=10)}
    # Not replaced silently: YouSign has its request. The firm is told to delete it, and why.
    assert items[sent_then_failed.id] == (
        "skipped",
        "the dossier's mandate failed once YouSign had its request (its failure_reason says why):"
        " delete it, then generate a new one",
    )
    assert items[incomplete.id][0] == "skipped" and "missing_information" in items[incomplete.id][1]


async def test_two_firms_created_with_one_siren_at_once_take_turns(db):
    siren = "383474814"
    await db.execute("DELETE FROM firms WHERE siren = $1", siren)
    outcomes = await asyncio.gather(
        *(firms.create_firm(db, name=f"Cabinet {i}", siren=siren, unique_siren=True) for i in range(4)),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, firms.SirenTaken)]
    assert len(created) == 1 and len(refused) == 3
    assert all(r.firms == created for r in refused)
    # Asked for all the same, a second one is created.
    assert (await firms.create_firm(db, name="Cabinet bis", siren=siren)).siren == siren


async def test_replacing_a_failed_mandate_while_the_firm_deletes_it_never_deadlocks(db, firm):
    from store import bulk

    for i in range(8):
        dossier = await ready_dossier(db, firm, name=f"Course {i}", establishment=200 + i)
        failed = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 1, 10))
        await mandates.transition(db, failed.id, MandateStatus.FAILED, cause="sending failed", at=NOW)
        batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
        # Both lock the dossier, then the mandate: whichever comes second waits, neither fails.
        replacing, deleting = await asyncio.gather(
            mandates.reserve_mandate(
                db,
                firm.id,
                dossier.id,
                issued_on=date(2027, 1, 11),
                bulk_send_id=batch.id,
                replace_failed_at=NOW,
            ),
            mandates.transition(db, failed.id, MandateStatus.DELETED, cause="deleted by the firm", at=NOW),
            return_exceptions=True,
        )
        assert not isinstance(deleting, BaseException), deleting
        assert not isinstance(replacing, BaseException), replacing
        assert (await mandates.get_mandate(db, failed.id)).status == "deleted"


# An activity attempt can outlive its retry: Temporal gave up on it (its heartbeat or timeout), yet
# it still reaches the database, with what it read before the retry ran.


async def a_stale_page_attempt(db, batch, snapshot, monkeypatch):
    """The page attempt that read `snapshot`, then stalled while its retry did the page."""
    from store import bulk

    monkeypatch.setattr(bulk, "items", lambda *args, **kwargs: asyncio.sleep(0, snapshot))
    try:
        return await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=NOW.date())
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("settled", [MandateStatus.FAILED, MandateStatus.PENDING])
async def test_a_stale_bulk_page_attempt_leaves_the_items_its_retry_reserved(db, firm, monkeypatch, settled):
    from store import bulk

    dossier = await ready_dossier(db, firm)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    snapshot = await bulk.items(db, batch.id)  # the stale attempt's read: queued, no mandate
    [mandate], _ = await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=NOW.date())
    await mandates.transition(db, mandate.id, settled, cause="its run went on", at=NOW, failure_reason="x")

    await a_stale_page_attempt(db, batch, snapshot, monkeypatch)
    # No second mandate that no workflow would run (the dossier stuck `sending`), and the item keeps
    # its outcome: the batch is done.
    assert [m.id for m in await mandates.history(db, dossier.id, before_seq=None, limit=5)] == [mandate.id]
    [item] = await bulk.items(db, batch.id)
    assert (item.outcome, item.mandate_id) == ({"failed": "failed", "pending": "sent"}[settled], mandate.id)


async def test_a_stale_send_attempt_cannot_claim_a_request_for_a_failed_mandate(db, firm):
    dossier = await ready_dossier(db, firm)
    failed = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=NOW.date())
    await mandates.transition(db, failed.id, MandateStatus.SENDING, cause="send requested", at=NOW)
    await mandates.transition(db, failed.id, MandateStatus.FAILED, cause="sending failed", at=NOW)
    # Failed before YouSign had it: replaceable as never sent, so a late attempt must not e-mail it.
    assert not await mandates.claim_signature_request(db, failed.id, "sr-late")
    assert (await mandates.get_mandate(db, failed.id)).signature_request_id is None


async def test_two_identity_uploads_at_once_keep_the_first_verification(db, firm):
    rep = LegalRepresentative(first_name="Camille", last_name="Durand", email="camille@cabinet.example")
    files = [KycFile(side="front", content_type="image/png", content=b"x")]
    submission = await kyc.create_submission(db, firm.id, rep, "passport", files)
    assert await kyc.set_verification_id(db, submission.id, "first") == "first"
    assert await kyc.set_verification_id(db, submission.id, "late") == "first"
    assert (await kyc.get_submission(db, submission.id)).verification_id == "first"


async def test_a_submission_waits_a_bounded_time_for_the_firms_lock(db, firm):
    # A firm's earlier upload holds the lock (its verification being started): a burst of others
    # is refused after a short wait rather than each holding a pooled connection for as long.
    async with kyc.one_submission_at_a_time(db, firm.id):
        with pytest.raises(Conflict, match="being submitted"):
            async with kyc.one_submission_at_a_time(db, firm.id, wait_seconds=0.2):
                pass
    async with asyncio.timeout(5), kyc.one_submission_at_a_time(db, firm.id) as conn:
        assert await conn.fetchval("SHOW lock_timeout") == "0"  # the pool's connection as it was


async def test_a_bulk_page_retry_starts_what_a_stale_attempt_reserved_after_its_read(db, firm, monkeypatch):
    from store import bulk

    dossier = await ready_dossier(db, firm)
    batch = await bulk.create_bulk_send(db, firm.id, [dossier.id])
    snapshot = await bulk.items(db, batch.id)  # the retry's read: queued
    # Meanwhile the attempt it replaced, still alive, reserves the item.
    [reserved], _ = await bulk.reserve_page(db, batch, start=0, size=10, at=NOW, issued_on=NOW.date())
    # The retry, whose result Temporal keeps, must start that mandate (else no run ever sends it).
    started, _ = await a_stale_page_attempt(db, batch, snapshot, monkeypatch)
    assert [m.id for m in started] == [reserved.id]
