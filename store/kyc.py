"""Submissions of the firm's legal representative for identity verification, and their files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from domain.errors import Conflict
from domain.models import LegalRepresentative
from store.database import Db, transaction
from store.records import KycFile, KycSubmission


@asynccontextmanager
async def one_submission_at_a_time(
    db: asyncpg.Pool, firm_id: UUID, wait_seconds: float = 15.0
) -> AsyncIterator[asyncpg.Connection]:
    """Held while a submission is stored and its verification started: of two at once (a double
    click), the later is stored after, and started after, the first, so it is the one verified.

    Its connection is the one to store with: waiting for a second one while holding the lock
    could empty the pool when many firms submit at once. A submission waits `wait_seconds` at
    most (Conflict then): a firm's burst of uploads cannot hold the pool's connections for long.
    """
    async with db.acquire() as conn:
        try:
            await conn.execute(f"SET lock_timeout = {int(wait_seconds * 1000)}")
            try:
                await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"kyc:{firm_id}")
            except asyncpg.LockNotAvailableError:
                raise Conflict(
                    "another identity document of the firm is being submitted: try again in a moment"
                ) from None
            await conn.execute("RESET lock_timeout")
            yield conn
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"kyc:{firm_id}")
        except BaseException:
            # Failed or cancelled (maybe while the lock was being granted): closing the session is
            # the sure way to release it; the pool replaces the connection.
            conn.terminate()
            raise


async def create_submission(
    db: Db,
    firm_id: UUID,
    representative: LegalRepresentative,
    document_type: str,
    files: list[KycFile],
    *,
    supersede: bool = True,
) -> KycSubmission:
    """Record a new submission with its files; a pending older one is superseded, unless told not
    to yet (then `supersede_older` does it once the new verification has started)."""
    async with transaction(db) as conn:
        if supersede:
            await _supersede_pending(conn, firm_id)
        row = await conn.fetchrow(
            "INSERT INTO kyc_submissions (firm_id, first_name, last_name, birth_name, email, document_type)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            firm_id,
            representative.first_name,
            representative.last_name,
            representative.birth_name,
            str(representative.email),
            document_type,
        )
        await conn.executemany(
            "INSERT INTO kyc_files (submission_id, side, content_type, content) VALUES ($1, $2, $3, $4)",
            [(row["id"], f.side, f.content_type, f.content) for f in files],
        )
    return KycSubmission.from_row(row)


async def _supersede_pending(conn: asyncpg.Connection, firm_id: UUID, keep: UUID | None = None) -> None:
    """Pending submissions (but `keep`) are kept as superseded, without their identity files: their
    verification stops here."""
    superseded = await conn.fetch(
        "UPDATE kyc_submissions SET status = 'superseded', completed_at = now()"
        " WHERE firm_id = $1 AND status = 'pending' AND id IS DISTINCT FROM $2 RETURNING id",
        firm_id,
        keep,
    )
    await conn.execute(
        "DELETE FROM kyc_files WHERE submission_id = ANY($1::uuid[])", [r["id"] for r in superseded]
    )


async def supersede_older(db: Db, submission: KycSubmission) -> None:
    async with transaction(db) as conn:
        await _supersede_pending(conn, submission.firm_id, keep=submission.id)


async def discard_submission(db: Db, submission_id: UUID) -> None:
    """A submission whose verification never started: as if never made (its files go with it)."""
    async with transaction(db) as conn:
        await conn.execute("DELETE FROM kyc_submissions WHERE id = $1", submission_id)


async def current_submission(db: asyncpg.Pool, firm_id: UUID) -> KycSubmission | None:
    row = await db.fetchrow(
        "SELECT * FROM kyc_submissions WHERE firm_id = $1 AND status <> 'superseded'"
        " ORDER BY created_at DESC LIMIT 1",
        firm_id,
    )
    return KycSubmission.from_row(row) if row else None


async def verification_state(db: asyncpg.Pool, firm_id: UUID) -> str:
    """The firm's current submission's status, or `not_submitted`."""
    submission = await current_submission(db, firm_id)
    return submission.status if submission else "not_submitted"


async def stalled_submissions(db: asyncpg.Pool, older_than: timedelta) -> list[KycSubmission]:
    """Firms' current submissions still without a YouSign verification after `older_than`: their
    check was never started (the gateway stopped in between), or it is being retried."""
    rows = await db.fetch(
        "SELECT s.* FROM kyc_submissions s WHERE s.status = 'pending' AND s.verification_id IS NULL"
        " AND s.created_at < now() - $1::interval AND NOT EXISTS (SELECT 1 FROM kyc_submissions n"
        " WHERE n.firm_id = s.firm_id AND n.status <> 'superseded' AND n.created_at > s.created_at)",
        older_than,
    )
    return [KycSubmission.from_row(row) for row in rows]


async def verified_submission(db: asyncpg.Pool, firm_id: UUID) -> KycSubmission | None:
    """The latest submission YouSign verified: the firm's representative its mandates print, even
    while a newer one is being checked."""
    row = await db.fetchrow(
        "SELECT * FROM kyc_submissions WHERE firm_id = $1 AND status = 'verified'"
        " ORDER BY created_at DESC LIMIT 1",
        firm_id,
    )
    return KycSubmission.from_row(row) if row else None


async def get_submission(db: asyncpg.Pool, submission_id: UUID) -> KycSubmission | None:
    row = await db.fetchrow("SELECT * FROM kyc_submissions WHERE id = $1", submission_id)
    return KycSubmission.from_row(row) if row else None


async def submission_for_verification(db: asyncpg.Pool, verification_id: str) -> KycSubmission | None:
    row = await db.fetchrow("SELECT * FROM kyc_submissions WHERE verification_id = $1", verification_id)
    return KycSubmission.from_row(row) if row else None


async def load_files(db: asyncpg.Pool, submission_id: UUID) -> list[KycFile]:
    rows = await db.fetch(
        "SELECT side, content_type, content FROM kyc_files WHERE submission_id = $1 ORDER BY side DESC",
        submission_id,
    )
    return [KycFile.from_row(r) for r in rows]


async def set_verification_id(db: asyncpg.Pool, submission_id: UUID, verification_id: str) -> str:
    """YouSign has the document now: its files are deleted with it (data minimisation). Returns the
    verification kept: the first recorded, should two attempts of the upload have run at once (one
    that timed out, still alive), so that both tell the workflow the one YouSign's events name."""
    async with transaction(db) as conn:
        kept = await conn.fetchval(
            "UPDATE kyc_submissions SET verification_id = coalesce(verification_id, $2) WHERE id = $1"
            " RETURNING verification_id",
            submission_id,
            verification_id,
        )
        await conn.execute("DELETE FROM kyc_files WHERE submission_id = $1", submission_id)
    return kept


async def complete_submission(
    db: Db,
    submission_id: UUID,
    *,
    status: str,
    reason: str | None,
    status_codes: list[str],
    completed_at: datetime,
) -> None:
    """Record the outcome and drop the identity files: they are not needed once YouSign decided."""
    async with transaction(db) as conn:
        await conn.execute(
            "UPDATE kyc_submissions SET status = $2, reason = $3, status_codes = $4, completed_at = $5"
            " WHERE id = $1 AND status = 'pending'",
            submission_id,
            status,
            reason,
            status_codes,
            completed_at,
        )
        await conn.execute("DELETE FROM kyc_files WHERE submission_id = $1", submission_id)
