"""Mandates: reservation, status transitions with their event log, documents and reminders."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from domain.errors import Conflict, NotFound, RuleViolation
from domain.mandate_number import mandate_number
from domain.status import (
    ARCHIVED,
    FINAL_MANDATE_STATUSES,
    DossierStatus,
    MandateStatus,
    why_no_mandate,
    why_not_another,
)
from store.database import Db, transaction
from store.dossiers import DOSSIER_NOT_FOUND, lock_dossier, refresh_status
from store.records import Mandate, MandateEvent

# Columns a transition may set besides the status; each is named explicitly so no caller
# can write an arbitrary column.
TRANSITION_FIELDS = frozenset(
    {
        "sent_at",
        "expires_at",
        "signed_at",
        "refused_at",
        "expired_at",
        "deleted_at",
        "failure_reason",
        "signature_request_id",
        "signer_id",
    }
)


# What a bulk send reports for a mandate reaching these statuses (a draft it adopted can be deleted).
BULK_OUTCOMES = {
    MandateStatus.PENDING: "sent",
    MandateStatus.FAILED: "failed",
    MandateStatus.DELETED: "skipped",
}


def workflow_id_for(dossier_id: UUID, seq: int) -> str:
    return f"mandate-{dossier_id}-{seq}"


def replaced_by_bulk_send(bulk_send_id: UUID) -> str:
    """The cause recorded on a failed mandate a bulk send replaced (found by it again on a retry)."""
    return f"replaced by bulk send {bulk_send_id}"


# A mandate's workflow is started right after its row is reserved: one missing after this never started.
STARTING_GRACE = timedelta(minutes=1)


async def reserve_mandate(
    db: Db,
    firm_id: UUID,
    dossier_id: UUID,
    *,
    issued_on: date,
    bulk_send_id: UUID | None = None,
    replace_failed_at: datetime | None = None,
) -> Mandate:
    """Create the dossier's next mandate row with its number and workflow id.

    A draft is generated for the firm to preview; a bulk send's mandate is `sending` from the start
    (it is rendered and sent in one step, and its dossier shows a pending mandate meanwhile).
    With `replace_failed_at`, a bulk send's mandate replaces one that failed before YouSign had it
    (nothing to withdraw), deleted in the same transaction, as a single generate replaces it.
    """
    async with transaction(db) as conn:
        dossier = await conn.fetchrow(
            "SELECT d.*, f.platform_siren, f.platform_matricule, f.platform_name FROM dossiers d"
            " JOIN firms f ON f.id = d.firm_id WHERE d.firm_id = $1 AND d.id = $2 FOR UPDATE OF d",
            firm_id,
            dossier_id,
        )
        if dossier is None:
            raise NotFound(DOSSIER_NOT_FOUND)
        if dossier["archived_at"]:
            raise Conflict(ARCHIVED)
        if dossier["platform_name"] is None:
            raise Conflict("the firm has no Plateforme Agréée yet: set it with PUT /v1/firm/platform")
        current = await conn.fetchrow(
            "SELECT id, status, signature_request_id, bulk_send_id FROM mandates"
            " WHERE dossier_id = $1 AND status <> 'deleted'",
            dossier_id,
        )
        if dossier["einvoicing_status"] != DossierStatus.READY_FOR_MANDATE:
            raise Conflict(
                why_no_mandate(
                    DossierStatus(dossier["einvoicing_status"]),
                    has_siret=dossier["siret"] is not None,
                    has_legal_representative=dossier["rep_first_name"] is not None,
                    bulk_send_id=current["bulk_send_id"] if current else None,
                )
            )
        if current is not None:
            failed_unsent = (
                current["status"] == MandateStatus.FAILED and current["signature_request_id"] is None
            )
            if not (failed_unsent and bulk_send_id and replace_failed_at):
                raise Conflict(
                    why_not_another(
                        MandateStatus(current["status"]),
                        at_yousign=current["signature_request_id"] is not None,
                    )
                )
            await transition(
                conn,
                current["id"],
                MandateStatus.DELETED,
                cause=replaced_by_bulk_send(bulk_send_id),
                at=replace_failed_at,
            )
        seq = dossier["mandate_count"] + 1
        platform_id = dossier["platform_siren"] or dossier["platform_matricule"]
        try:
            prefix = mandate_number(dossier["siren"], platform_id, issued_on, 1)[:-2]
        except RuleViolation as violation:
            # Stored before today's rules (a SIRET whose first 9 digits are no SIREN): the firm corrects it.
            raise Conflict(
                f"the dossier's {violation.field} cannot number a mandate: {violation.message}"
            ) from None
        # The DGFiP counter runs per company, PA and day: one reservation of a prefix at a time (two
        # establishments of a company, two firms with the same client), each taking the highest + 1.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", prefix)
        last = await conn.fetchval(
            "SELECT max(substr(number, length($1) + 1)::int) FROM mandates"
            ' WHERE number COLLATE "C" >= $1 AND number COLLATE "C" < $1 || \'~\'',
            prefix,
        )
        number = mandate_number(dossier["siren"], platform_id, issued_on, (last or 0) + 1)
        status, cause = (
            (MandateStatus.SENDING, "bulk send") if bulk_send_id else (MandateStatus.DRAFT, "generated")
        )
        row = await conn.fetchrow(
            "INSERT INTO mandates (dossier_id, firm_id, seq, number, workflow_id, bulk_send_id, status)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            dossier_id,
            firm_id,
            seq,
            number,
            workflow_id_for(dossier_id, seq),
            bulk_send_id,
            status.value,
        )
        await conn.execute("UPDATE dossiers SET mandate_count = $2 WHERE id = $1", dossier_id, seq)
        await conn.execute(
            "INSERT INTO mandate_events (mandate_id, occurred_at, to_status, cause) VALUES ($1, $2, $3, $4)",
            row["id"],
            row["created_at"],
            status.value,
            cause,
        )
        await refresh_status(conn, dossier_id)
        return Mandate.from_row(row)


async def discard_reservation(
    db: asyncpg.Pool, mandate_id: UUID, at: datetime, cause: str = "the workflow service did not accept it"
) -> None:
    """Set aside a reservation whose workflow was never started (nothing was sent): `deleted`, as
    its event log is append-only; the dossier can have a new mandate at once."""
    await transition(db, mandate_id, MandateStatus.DELETED, cause=cause, at=at)


async def get_mandate(db: asyncpg.Pool, mandate_id: UUID) -> Mandate:
    row = await db.fetchrow("SELECT * FROM mandates WHERE id = $1", mandate_id)
    if row is None:
        raise NotFound("mandate not found")
    return Mandate.from_row(row)


async def history(db: asyncpg.Pool, dossier_id: UUID, *, before_seq: int | None, limit: int) -> list[Mandate]:
    """The dossier's mandates, deleted ones too, newest first (by their number's order), from before
    `before_seq` when given."""
    rows = await db.fetch(
        "SELECT * FROM mandates WHERE dossier_id = $1 AND ($2::int IS NULL OR seq < $2)"
        " ORDER BY seq DESC LIMIT $3",
        dossier_id,
        before_seq,
        limit,
    )
    return [Mandate.from_row(row) for row in rows]


async def mandate_for_signature_request(db: asyncpg.Pool, signature_request_id: str) -> Mandate | None:
    row = await db.fetchrow("SELECT * FROM mandates WHERE signature_request_id = $1", signature_request_id)
    return Mandate.from_row(row) if row else None


async def pending_with_signature_requests(
    db: asyncpg.Pool, signature_request_ids: list[str]
) -> list[Mandate]:
    """The mandates still pending among those of these signature requests, in one query."""
    rows = await db.fetch(
        "SELECT * FROM mandates WHERE signature_request_id = ANY($1::text[]) AND status = 'pending'",
        signature_request_ids,
    )
    return [Mandate.from_row(row) for row in rows]


async def transition(
    db: Db,
    mandate_id: UUID,
    to_status: MandateStatus,
    *,
    cause: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
    **fields: Any,
) -> Mandate:
    """Move a mandate to `to_status`, log the event and refresh the dossier, in one transaction
    (the caller's, given a connection).

    Repeating the transition it is already in changes nothing (activities may run twice), and a
    final status only ever moves on to `deleted`.
    """
    async with transaction(db) as conn:  # (given a connection, a savepoint in the caller's transaction)
        unknown = set(fields) - TRANSITION_FIELDS
        if unknown:
            raise ValueError(f"not transition fields: {sorted(unknown)}")
        # The dossier's row first, then the mandate's, as every writer takes them (reserving a mandate,
        # editing a dossier): two transactions never wait on each other's second lock.
        dossier_id = await conn.fetchval("SELECT dossier_id FROM mandates WHERE id = $1", mandate_id)
        if dossier_id is None:
            raise NotFound("mandate not found")
        await lock_dossier(conn, dossier_id)
        current = await conn.fetchrow("SELECT * FROM mandates WHERE id = $1 FOR UPDATE", mandate_id)
        from_status = MandateStatus(current["status"])
        if from_status == to_status:
            return Mandate.from_row(current)
        final = FINAL_MANDATE_STATUSES | {MandateStatus.DELETED}
        if from_status in final and to_status != MandateStatus.DELETED:
            raise Conflict(f"mandate is {from_status}; it cannot become {to_status}")
        if to_status == MandateStatus.DELETED:
            fields.setdefault("deleted_at", at)
        columns = {"status": to_status.value, **fields}
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
        row = await conn.fetchrow(
            f"UPDATE mandates SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
            mandate_id,
            *columns.values(),
        )
        await conn.execute(
            "INSERT INTO mandate_events (mandate_id, occurred_at, from_status, to_status, cause, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            mandate_id,
            at,
            from_status.value,
            to_status.value,
            cause,
            detail or {},
        )
        await refresh_status(conn, row["dossier_id"])
        if row["bulk_send_id"] is not None and to_status in BULK_OUTCOMES:
            # A bulk send counts its progress from these rows, not from thousands of workflows.
            # Only the first outcome counts: a mandate sent, then refused and deleted, was sent.
            await conn.execute(
                "UPDATE bulk_send_items SET outcome = $3, reason = $4, updated_at = now()"
                " WHERE bulk_send_id = $1 AND mandate_id = $2 AND outcome = 'sending'",
                row["bulk_send_id"],
                mandate_id,
                BULK_OUTCOMES[to_status],
                cause if to_status == MandateStatus.DELETED else row["failure_reason"],
            )
        return Mandate.from_row(row)


async def claim_signature_request(db: asyncpg.Pool, mandate_id: UUID, signature_request_id: str) -> bool:
    """Record the mandate's YouSign request, unless it has another already, or is no longer being
    sent: False then.

    Of two attempts of a send running at once (one timed out but still alive), only the first to
    record its request may go on to activate it: the client is e-mailed once.
    """
    # Only while it is being sent: a mandate failed meanwhile may be replaced as never sent (a new
    # mandate for its dossier), and a late attempt must not then e-mail the client this one.
    claimed = await db.fetchval(
        "UPDATE mandates SET signature_request_id = $2, updated_at = now()"
        " WHERE id = $1 AND status IN ('draft', 'sending')"
        " AND (signature_request_id IS NULL OR signature_request_id = $2) RETURNING 1",
        mandate_id,
        signature_request_id,
    )
    return claimed is not None


async def still_being_sent(db: asyncpg.Pool, mandate_id: UUID, signature_request_id: str) -> bool:
    """Whether the mandate is still being sent with this request (what its activation waits for)."""
    found = await db.fetchval(
        "SELECT 1 FROM mandates WHERE id = $1 AND status IN ('draft', 'sending')"
        " AND signature_request_id = $2",
        mandate_id,
        signature_request_id,
    )
    return found is not None


async def events(db: asyncpg.Pool, mandate_id: UUID) -> list[MandateEvent]:
    rows = await db.fetch("SELECT * FROM mandate_events WHERE mandate_id = $1 ORDER BY id", mandate_id)
    return [MandateEvent.from_row(r) for r in rows]


async def outcome_reason(db: asyncpg.Pool, mandate_id: UUID, status: MandateStatus) -> str | None:
    """The reason kept in the event log with the mandate's move to `status`: why the client declined,
    in their words, as YouSign reported it; why it expired when the month passing is not all."""
    return await db.fetchval(
        "SELECT detail->>'reason' FROM mandate_events WHERE mandate_id = $1 AND to_status = $2"
        " ORDER BY id DESC LIMIT 1",
        mandate_id,
        status.value,
    )


async def save_document(
    db: asyncpg.Pool, mandate_id: UUID, kind: str, content: bytes, source_sha256: str | None = None
) -> str:
    digest = hashlib.sha256(content).hexdigest()
    await db.execute(
        "INSERT INTO mandate_documents (mandate_id, kind, content, sha256, source_sha256)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mandate_id, kind) DO UPDATE"
        " SET content = EXCLUDED.content, sha256 = EXCLUDED.sha256, source_sha256 = EXCLUDED.source_sha256",
        mandate_id,
        kind,
        content,
        digest,
        source_sha256,
    )
    return digest


async def document_source(db: asyncpg.Pool, mandate_id: UUID) -> str | None:
    """The fingerprint of the data the generated document was rendered from (None if unknown)."""
    return await db.fetchval(
        "SELECT source_sha256 FROM mandate_documents WHERE mandate_id = $1 AND kind = 'generated'", mandate_id
    )


async def get_document(db: asyncpg.Pool, mandate_id: UUID, kind: str) -> bytes | None:
    return await db.fetchval(
        "SELECT content FROM mandate_documents WHERE mandate_id = $1 AND kind = $2", mandate_id, kind
    )


async def record_reminder(db: asyncpg.Pool, mandate_id: UUID, sent_at: datetime) -> None:
    await db.execute(
        "INSERT INTO mandate_reminders (mandate_id, sent_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        mandate_id,
        sent_at,
    )


async def reminders(db: asyncpg.Pool, mandate_id: UUID) -> list[datetime]:
    rows = await db.fetch(
        "SELECT sent_at FROM mandate_reminders WHERE mandate_id = $1 ORDER BY sent_at", mandate_id
    )
    return [r["sent_at"] for r in rows]
