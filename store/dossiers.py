"""Dossiers (a firm's client companies): writes keep the stored e-invoicing status current."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from domain.errors import Conflict, NotFound
from domain.models import ClientRepresentative, Platform
from domain.status import (
    ARCHIVED,
    LOCKING_MANDATE_STATUSES,
    DossierStatus,
    MandateStatus,
    dossier_status,
    why_not_archivable,
)
from store.cursors import decode_cursor, encode_cursor
from store.records import Dossier, Mandate

# Another firm's dossier reads as no dossier at all (404, never 403); a bulk send's reason too.
DOSSIER_NOT_FOUND = "dossier not found"

_UNSET: Any = object()
_WITH_MANDATE = (
    "SELECT d.*, to_jsonb(m) AS mandate FROM dossiers d"
    " LEFT JOIN mandates m ON m.dossier_id = d.id AND m.status <> 'deleted'"
)


def _rep_columns(rep: ClientRepresentative | None) -> tuple[str | None, ...]:
    if rep is None:
        return (None, None, None, None, None)
    return (rep.first_name, rep.last_name, rep.birth_name, str(rep.email), rep.position)


def _previous_platform_columns(platform: Platform | None) -> tuple[str | None, ...]:
    return (platform.name, platform.siren, platform.matricule) if platform else (None, None, None)


def _with_mandate(row: asyncpg.Record) -> tuple[Dossier, Mandate | None]:
    mandate = row["mandate"]
    return Dossier.from_row(row), Mandate.model_validate(mandate) if mandate else None


async def lock_dossier(conn: asyncpg.Connection, dossier_id: UUID) -> None:
    """Lock the dossier's row, the first lock every writer of a dossier or its mandates takes (then
    its mandate's, its bulk item's): two transactions never wait on each other's second lock."""
    await conn.execute("SELECT 1 FROM dossiers WHERE id = $1 FOR UPDATE", dossier_id)


async def _locked(conn: asyncpg.Connection, firm_id: UUID, dossier_id: UUID) -> asyncpg.Record:
    """The firm's dossier's row, locked as reserving a mandate locks it: no mandate starts meanwhile."""
    row = await conn.fetchrow(
        "SELECT * FROM dossiers WHERE firm_id = $1 AND id = $2 FOR UPDATE", firm_id, dossier_id
    )
    if row is None:
        raise NotFound(DOSSIER_NOT_FOUND)
    return row


async def _locked_with_mandate_status(
    conn: asyncpg.Connection, firm_id: UUID, dossier_id: UUID
) -> tuple[asyncpg.Record, MandateStatus | None]:
    """The dossier's row, locked, and its live mandate's status.

    Two statements: a join locking the dossier would, once it waited for a reservation, re-read the
    dossier but not the mandates, and miss the mandate that reservation just made.
    """
    row = await _locked(conn, firm_id, dossier_id)
    status = await conn.fetchval(
        "SELECT status FROM mandates WHERE dossier_id = $1 AND status <> 'deleted'", dossier_id
    )
    return row, MandateStatus(status) if status else None


async def refresh_status(conn: asyncpg.Connection, dossier_id: UUID) -> DossierStatus:
    """Recompute the dossier's status from its data and live mandate (call inside the writing transaction).

    The dossier's row is locked first: a concurrent edit of the dossier (say, its representative
    removed) then waits, or is waited for, instead of being overwritten with a status read before it.
    """
    await lock_dossier(conn, dossier_id)
    row = await conn.fetchrow(
        "SELECT d.siret, d.rep_first_name, m.status AS mandate_status FROM dossiers d"
        " LEFT JOIN mandates m ON m.dossier_id = d.id AND m.status <> 'deleted' WHERE d.id = $1",
        dossier_id,
    )
    status = dossier_status(
        has_siret=row["siret"] is not None,
        has_legal_representative=row["rep_first_name"] is not None,
        mandate_status=MandateStatus(row["mandate_status"]) if row["mandate_status"] else None,
    )
    await conn.execute(
        "UPDATE dossiers SET einvoicing_status = $2, updated_at = now() WHERE id = $1",
        dossier_id,
        status.value,
    )
    return status


async def refuse_duplicate_siret(
    db: asyncpg.Pool | asyncpg.Connection, firm_id: UUID, siret: str | None, dossier_id: UUID | None = None
) -> None:
    """One dossier per SIRET in a firm: a second would get a second mandate for the same company.

    Inside the writing transaction, the lock makes two concurrent writes of one SIRET take turns;
    outside (a check before other changes), it is released at once.
    """
    if siret is None:
        return
    await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))", str(firm_id), siret)
    existing = await db.fetchrow(
        "SELECT id, archived_at FROM dossiers"
        " WHERE firm_id = $1 AND siret = $2 AND id IS DISTINCT FROM $3 LIMIT 1",
        firm_id,
        siret,
        dossier_id,
    )
    if existing is not None:
        archived = ", archived: restore it" if existing["archived_at"] else ""
        raise Conflict(
            f"siret: the firm already has a dossier with SIRET {siret} (dossier {existing['id']}{archived})"
        )


async def create_dossier(
    db: asyncpg.Pool,
    firm_id: UUID,
    *,
    name: str,
    siret: str | None,
    legal_representative: ClientRepresentative | None,
    external_ref: str | None = None,
    previous_platform: Platform | None = None,
) -> Dossier:
    async with db.acquire() as conn, conn.transaction():
        await refuse_duplicate_siret(conn, firm_id, siret)
        dossier_id = await conn.fetchval(
            "INSERT INTO dossiers (firm_id, name, siret, rep_first_name, rep_last_name, rep_birth_name,"
            " rep_email, rep_position, external_ref, previous_platform_name, previous_platform_siren,"
            " previous_platform_matricule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " RETURNING id",
            firm_id,
            name,
            siret,
            *_rep_columns(legal_representative),
            external_ref,
            *_previous_platform_columns(previous_platform),
        )
        await refresh_status(conn, dossier_id)
        return Dossier.from_row(await conn.fetchrow("SELECT * FROM dossiers WHERE id = $1", dossier_id))


async def get_dossier(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> tuple[Dossier, Mandate | None]:
    row = await db.fetchrow(_WITH_MANDATE + " WHERE d.firm_id = $1 AND d.id = $2", firm_id, dossier_id)
    if row is None:
        raise NotFound(DOSSIER_NOT_FOUND)
    return _with_mandate(row)


def changes_printed_data(dossier: Dossier, changes: dict[str, Any]) -> bool:
    """Whether `changes` (name, siret, legal_representative, previous_platform) alter what the
    dossier's mandate prints."""
    return any(_plain(getattr(dossier, field)) != _plain(value) for field, value in changes.items())


def _plain(value: Any) -> Any:
    # Compare models by their values: the API's PlatformIn and the stored Platform differ in class only.
    return value.model_dump() if isinstance(value, BaseModel) else value


async def update_dossier(
    db: asyncpg.Pool,
    firm_id: UUID,
    dossier_id: UUID,
    *,
    name: str = _UNSET,
    siret: str | None = _UNSET,
    legal_representative: ClientRepresentative | None = _UNSET,
    previous_platform: Platform | None = _UNSET,
    external_ref: str | None = _UNSET,
) -> Dossier:
    """Change the given fields; what the mandate prints is refused while a mandate is being sent,
    pending or signed, and while a draft shows it (the gateway discards that draft first). The firm's
    own reference, never printed, changes whatever the mandate's state."""
    requested = {
        field: value
        for field, value in (
            ("name", name),
            ("siret", siret),
            ("legal_representative", legal_representative),
            ("previous_platform", previous_platform),
        )
        if value is not _UNSET
    }
    async with db.acquire() as conn, conn.transaction():
        row, mandate_status = await _locked_with_mandate_status(conn, firm_id, dossier_id)
        current = Dossier.from_row(row)
        new_ref = external_ref is not _UNSET and external_ref != current.external_ref
        printed = changes_printed_data(current, requested)
        if not (printed or new_ref):
            # The same values again (a form saved unchanged): nothing to refuse, nothing written.
            return current
        if current.archived_at:
            raise Conflict(ARCHIVED)
        if not printed:
            await conn.execute(
                "UPDATE dossiers SET external_ref = $2, updated_at = now() WHERE id = $1",
                dossier_id,
                external_ref,
            )
            return Dossier.from_row(await conn.fetchrow("SELECT * FROM dossiers WHERE id = $1", dossier_id))
        if mandate_status in LOCKING_MANDATE_STATUSES:
            raise Conflict(f"the dossier cannot change while its mandate is {mandate_status}")
        if mandate_status == MandateStatus.DRAFT:
            raise Conflict("the dossier's draft mandate shows the data this would change: delete it first")
        if siret is not _UNSET and siret != row["siret"]:
            await refuse_duplicate_siret(conn, firm_id, siret, dossier_id)
        changes: dict[str, Any] = {k: v for k, v in requested.items() if k in ("name", "siret")}
        if new_ref:
            changes["external_ref"] = external_ref
        if legal_representative is not _UNSET:
            keys = ("rep_first_name", "rep_last_name", "rep_birth_name", "rep_email", "rep_position")
            changes.update(zip(keys, _rep_columns(legal_representative), strict=True))
        if previous_platform is not _UNSET:
            keys = ("previous_platform_name", "previous_platform_siren", "previous_platform_matricule")
            changes.update(zip(keys, _previous_platform_columns(previous_platform), strict=True))
        if changes:
            assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
            await conn.execute(
                f"UPDATE dossiers SET {assignments} WHERE id = $1", dossier_id, *changes.values()
            )
        await refresh_status(conn, dossier_id)
        return Dossier.from_row(await conn.fetchrow("SELECT * FROM dossiers WHERE id = $1", dossier_id))


async def delete_dossier(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> None:
    """Delete a dossier created by mistake (or a client gone before any mandate). One that ever had
    a mandate is kept: its mandates' event log is append-only, the firm's record of what was done."""
    async with db.acquire() as conn, conn.transaction():
        if (await _locked(conn, firm_id, dossier_id))["mandate_count"]:
            raise Conflict(
                "the dossier had a mandate: it is kept with its mandates' history (archive it to take"
                " it off the list)"
            )
        await conn.execute("DELETE FROM dossiers WHERE id = $1", dossier_id)


async def archive_dossier(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> None:
    """Take a client who left off the list and the counts, keeping it and its mandates (a signed
    one stays readable). Refused while its mandate still waits for the firm or the client."""
    async with db.acquire() as conn, conn.transaction():
        # No mandate is reserved meanwhile, and one reserved just before is seen.
        row, mandate_status = await _locked_with_mandate_status(conn, firm_id, dossier_id)
        if row["archived_at"]:
            return
        if refusal := why_not_archivable(mandate_status):
            raise Conflict(f"the dossier cannot be archived: {refusal}")
        await conn.execute(
            "UPDATE dossiers SET archived_at = now(), updated_at = now() WHERE id = $1", dossier_id
        )


async def restore_dossier(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> None:
    """Back on the list: a client who returned (its SIRET was never given to another dossier)."""
    restored = await db.fetchval(
        "UPDATE dossiers SET archived_at = NULL, updated_at = now()"
        " WHERE firm_id = $1 AND id = $2 AND archived_at IS NOT NULL RETURNING id",
        firm_id,
        dossier_id,
    )
    if restored is None and not await db.fetchval(
        "SELECT 1 FROM dossiers WHERE firm_id = $1 AND id = $2", firm_id, dossier_id
    ):
        raise NotFound(DOSSIER_NOT_FOUND)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(search: str) -> str:
    return f"%{_like_escaped(search)}%"


async def list_dossiers(
    db: asyncpg.Pool,
    firm_id: UUID,
    *,
    statuses: list[DossierStatus] | None = None,
    search: str | None = None,
    mandate_statuses: list[MandateStatus] | None = None,
    archived: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[tuple[Dossier, Mandate | None]], str | None]:
    """One page in creation order, and the cursor of the next page (None on the last page): the
    firm's current clients, or with `archived` those who left."""
    after = decode_cursor(cursor) if cursor else None
    search = (search or "").strip() or None  # only spaces: no search (not "every SIRET")
    search_digits = "".join(search.split()) if search else None  # any spaces, as SIRETs are typed
    # Part of the name ("Garage 2000" for "2000" too), or the start of the SIRET, spaces aside.
    # Both escaped for LIKE: a "%" searched is a "%", not "anything".
    name_pattern = _like_pattern(search) if search else None
    rows = await db.fetch(
        _WITH_MANDATE + " WHERE d.firm_id = $1"
        " AND ($2::text[] IS NULL OR d.einvoicing_status = ANY($2))"
        " AND ($4::text IS NULL OR d.siret LIKE $4 || '%' OR d.name ILIKE $3)"
        " AND ($5::timestamptz IS NULL OR (d.created_at, d.id) > ($5, $6))"
        " AND (d.archived_at IS NOT NULL) = $8"
        " AND ($9::text[] IS NULL OR m.status = ANY($9))"
        " ORDER BY d.created_at, d.id LIMIT $7",
        firm_id,
        [s.value for s in statuses] if statuses else None,
        name_pattern,
        _like_escaped(search_digits) if search_digits is not None else None,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
        archived,
        [s.value for s in mandate_statuses] if mandate_statuses else None,
    )
    page = [_with_mandate(r) for r in rows[:limit]]
    next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id) if len(rows) > limit else None
    return page, next_cursor


async def status_counts(db: asyncpg.Pool, firm_id: UUID) -> dict[DossierStatus, int]:
    rows = await db.fetch(
        "SELECT einvoicing_status, count(*) AS n FROM dossiers WHERE firm_id = $1 AND archived_at IS NULL"
        " GROUP BY 1",
        firm_id,
    )
    counts = dict.fromkeys(DossierStatus, 0)
    counts.update({DossierStatus(r["einvoicing_status"]): r["n"] for r in rows})
    return counts
