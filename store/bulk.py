"""Bulk sends and the outcome of each of their dossiers; progress is counted here, not in Temporal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from domain.errors import Conflict, NotFound
from store.cursors import decode_cursor, encode_cursor
from store.database import transaction
from store.dossiers import DOSSIER_NOT_FOUND, lock_dossier
from store.mandates import STARTING_GRACE, replaced_by_bulk_send, reserve_mandate
from store.records import Mandate, Record

OUTCOMES = ("queued", "sending", "sent", "skipped", "failed")
# A mandate a batch reserved whose run ended before it was sent: set aside (nothing was sent).
RUN_ENDED_UNSENT = "its bulk send's run ended before it was sent"
# A draft the firm asked for a moment ago: its run may not be there yet to be told to send it.
DRAFT_BEING_GENERATED = "its draft mandate is being generated: send this dossier again in a moment"
IN_PROGRESS = ("queued", "sending")  # a batch is done once none of its dossiers is in these


def in_progress(counts: dict[str, int]) -> int:
    return sum(counts[outcome] for outcome in IN_PROGRESS)


class BulkSend(Record):
    id: UUID
    firm_id: UUID
    total: int
    created_at: datetime
    finished_at: datetime | None


class BulkItem(Record):
    position: int
    dossier_id: UUID
    outcome: str
    reason: str | None
    mandate_id: UUID | None
    updated_at: datetime
    name: str | None = None  # the dossier's, what the firm knows a client by; none for an unknown id
    siret: str | None = None


async def create_bulk_send(db: asyncpg.Pool, firm_id: UUID, dossier_ids: list[UUID]) -> BulkSend:
    """Record the batch and one item per distinct dossier, in the order given: queued, or skipped at
    once when the id is none of the firm's dossiers (so that unknown ids cost the run nothing)."""
    unique = list(dict.fromkeys(dossier_ids))
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO bulk_sends (firm_id, total) VALUES ($1, $2) RETURNING *", firm_id, len(unique)
        )
        await conn.execute(
            "INSERT INTO bulk_send_items (bulk_send_id, position, dossier_id, outcome, reason)"
            " SELECT $1, t.p - 1, t.d,"
            " CASE WHEN d.id IS NULL THEN 'skipped' ELSE 'queued' END,"
            " CASE WHEN d.id IS NULL THEN $4 END"
            " FROM unnest($2::uuid[]) WITH ORDINALITY AS t(d, p)"
            " LEFT JOIN dossiers d ON d.id = t.d AND d.firm_id = $3",
            row["id"],
            unique,
            firm_id,
            DOSSIER_NOT_FOUND,
        )
    return BulkSend.from_row(row)


async def unfinished(db: asyncpg.Pool, *, older_than: timedelta) -> list[tuple[BulkSend, bool]]:
    """Unfinished batches older than that, each with whether none of its dossiers has left the
    queue yet (untouched). A started batch reserves (or skips) its first page within seconds, so an
    untouched one was never started (the gateway stopped between recording it and starting its
    run), or its run waits for a worker; a touched one is being paced, or its run was stopped (an
    operator terminated it) before it finished."""
    rows = await db.fetch(
        "SELECT b.*, NOT EXISTS (SELECT 1 FROM bulk_send_items i WHERE i.bulk_send_id = b.id"
        # (Ids that are no dossier of the firm are skipped as the batch is recorded: not a sign of a run.)
        "  AND i.outcome <> 'queued' AND i.reason IS DISTINCT FROM $2) AS untouched"
        " FROM bulk_sends b WHERE b.finished_at IS NULL AND b.created_at < now() - $1::interval"
        " ORDER BY b.created_at",
        older_than,
        DOSSIER_NOT_FOUND,
    )
    return [(BulkSend.from_row(row), row["untouched"]) for row in rows]


async def reserved_unsent(db: asyncpg.Pool, bulk: BulkSend) -> list[Mandate]:
    """The batch's mandates reserved as `sending` that YouSign never had: started since, or not."""
    rows = await db.fetch(
        "SELECT * FROM mandates WHERE firm_id = $1 AND status = 'sending' AND bulk_send_id = $2"
        " AND signature_request_id IS NULL",
        bulk.firm_id,
        bulk.id,
    )
    return [Mandate.from_row(row) for row in rows]


async def release_adopted_drafts(db: asyncpg.Pool, bulk: BulkSend, reason: str) -> None:
    """The firm's drafts the batch adopted but never got to send: the firm's own again, their items
    skipped (a draft adopted and sent is `sending` by now, its own run long since told)."""
    async with transaction(db) as conn:
        released = await conn.fetch(
            "UPDATE mandates SET bulk_send_id = NULL, updated_at = now()"
            " WHERE firm_id = $1 AND status = 'draft' AND bulk_send_id = $2 RETURNING id",
            bulk.firm_id,
            bulk.id,
        )
        await conn.execute(
            "UPDATE bulk_send_items SET outcome = 'skipped', reason = $3, updated_at = now()"
            " WHERE bulk_send_id = $1 AND mandate_id = ANY($2::uuid[]) AND outcome = 'sending'",
            bulk.id,
            [row["id"] for row in released],
            reason,
        )


async def get_bulk_send(db: asyncpg.Pool, firm_id: UUID, bulk_send_id: UUID) -> BulkSend:
    row = await db.fetchrow("SELECT * FROM bulk_sends WHERE id = $1 AND firm_id = $2", bulk_send_id, firm_id)
    if row is None:
        raise NotFound("bulk send not found")
    return BulkSend.from_row(row)


class BulkSendSummary(BulkSend):
    """A batch with the count of each outcome of its dossiers."""

    counts: dict[str, int]


async def list_bulk_sends(
    db: asyncpg.Pool, firm_id: UUID, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[BulkSendSummary], str | None]:
    """The firm's batches, newest first, and the cursor of the next page (None on the last)."""
    before = decode_cursor(cursor) if cursor else None
    rows = await db.fetch(
        "SELECT b.*, coalesce((SELECT jsonb_object_agg(outcome, n) FROM (SELECT outcome, count(*) AS n"
        " FROM bulk_send_items i WHERE i.bulk_send_id = b.id GROUP BY outcome) c), '{}') AS counts"
        " FROM bulk_sends b WHERE b.firm_id = $1"
        " AND ($2::timestamptz IS NULL OR (b.created_at, b.id) < ($2, $3))"
        " ORDER BY b.created_at DESC, b.id DESC LIMIT $4",
        firm_id,
        before[0] if before else None,
        before[1] if before else None,
        limit + 1,
    )
    page = [
        BulkSendSummary.model_validate({**dict(r), "counts": dict.fromkeys(OUTCOMES, 0) | r["counts"]})
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return page, next_cursor


async def outcome_counts(db: asyncpg.Pool, bulk_send_id: UUID) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT outcome, count(*) AS n FROM bulk_send_items WHERE bulk_send_id = $1 GROUP BY 1", bulk_send_id
    )
    return dict.fromkeys(OUTCOMES, 0) | {r["outcome"]: r["n"] for r in rows}


async def backlogs(db: asyncpg.Pool, bulk: BulkSend) -> tuple[int, list[int]]:
    """The sends still to go that this batch's end depends on: its firm's, in its batches up to this
    one (a firm's own go in order), and each other firm's backlog (firms take turns)."""
    rows = await db.fetch(
        "SELECT b.firm_id, count(*) AS n FROM bulk_send_items i JOIN bulk_sends b ON b.id = i.bulk_send_id"
        " WHERE i.outcome IN ('queued', 'sending') AND (b.firm_id <> $1 OR b.created_at <= $2)"
        " GROUP BY b.firm_id",
        bulk.firm_id,
        bulk.created_at,
    )
    own = sum(r["n"] for r in rows if r["firm_id"] == bulk.firm_id)
    return own, [r["n"] for r in rows if r["firm_id"] != bulk.firm_id]


async def last_progress(
    db: asyncpg.Pool | asyncpg.Connection, bulk_send_id: UUID
) -> tuple[datetime, datetime]:
    """The latest move of this batch's items (their creation, at the least) or of any mandate sent by
    this service (a batch waiting behind others moves when they do), and the database's time now:
    measured by the clock that stamped the moves, not the API host's."""
    row = await db.fetchrow(
        "SELECT greatest((SELECT max(updated_at) FROM bulk_send_items WHERE bulk_send_id = $1),"
        " (SELECT max(sent_at) FROM mandates)) AS moved, now() AS now",
        bulk_send_id,
    )
    return row["moved"], row["now"]


async def items(db: asyncpg.Pool, bulk_send_id: UUID, *, after: int = -1, limit: int = 100) -> list[BulkItem]:
    # The dossier's name and SIRET, from the firm's own dossiers only (an id of another firm's is
    # as unknown as any other).
    rows = await db.fetch(
        "SELECT i.position, i.dossier_id, i.outcome, i.reason, i.mandate_id, i.updated_at,"
        " d.name, d.siret FROM bulk_send_items i"
        " JOIN bulk_sends b ON b.id = i.bulk_send_id"
        " LEFT JOIN dossiers d ON d.id = i.dossier_id AND d.firm_id = b.firm_id"
        " WHERE i.bulk_send_id = $1 AND i.position > $2 ORDER BY i.position LIMIT $3",
        bulk_send_id,
        after,
        limit,
    )
    return [BulkItem.from_row(r) for r in rows]


async def _set_outcome(
    conn: Any, bulk_send_id: UUID, position: int, outcome: str, reason: str | None
) -> None:
    # Only a queued item: one settled meanwhile (by the retry of an attempt that outlived it) stays so.
    await conn.execute(
        "UPDATE bulk_send_items SET outcome = $3, reason = $4, updated_at = now()"
        " WHERE bulk_send_id = $1 AND position = $2 AND outcome = 'queued'",
        bulk_send_id,
        position,
        outcome,
        reason,
    )


async def skip_all_queued(db: asyncpg.Pool, bulk_send_id: UUID, reason: str) -> None:
    await db.execute(
        "UPDATE bulk_send_items SET outcome = 'skipped', reason = $2, updated_at = now()"
        " WHERE bulk_send_id = $1 AND outcome = 'queued'",
        bulk_send_id,
        reason,
    )


async def reserve_page(
    db: asyncpg.Pool,
    bulk: BulkSend,
    *,
    start: int,
    size: int,
    at: datetime,
    issued_on: date,
    on_item: Callable[[int], None] = lambda position: None,
) -> tuple[list[Mandate], bool]:
    """Reserve the mandates of items [start, start + size); skip the ineligible with their reason.

    Idempotent: an item already reserved (a retried activity) returns its mandate again.
    Returns the mandates to start and whether items remain after this page.
    """
    page = await items(db, bulk.id, after=start - 1, limit=size)
    to_start: list[Mandate] = []
    for item in page:
        on_item(item.position)
        if item.mandate_id is not None:
            row = await db.fetchrow("SELECT * FROM mandates WHERE id = $1", item.mandate_id)
            to_start.append(Mandate.from_row(row))
            continue
        if item.outcome != "queued":
            continue
        try:
            mandate = await _reserve_item(db, bulk, item, at=at, issued_on=issued_on)
        except (Conflict, NotFound) as refusal:
            # Reserved by an attempt of an earlier version, which recorded it on the item apart, or a
            # draft the firm previewed: either is this batch's to send.
            mandate = await _reserved_by(db, bulk.id, item.dossier_id)
            if mandate is not None:
                await _set_sending(db, bulk.id, item.position, mandate.id)
            else:
                mandate = await _adopt_draft(db, bulk, item)
            if mandate is None:
                being_generated = await _has_unrendered_draft(db, bulk.firm_id, item.dossier_id)
                reason = DRAFT_BEING_GENERATED if being_generated else str(refusal)
                await _set_outcome(db, bulk.id, item.position, "skipped", reason)
                continue
        if mandate is not None:
            to_start.append(mandate)
    more = bool(
        await db.fetchval(
            "SELECT 1 FROM bulk_send_items WHERE bulk_send_id = $1 AND position >= $2 LIMIT 1",
            bulk.id,
            start + size,
        )
    )
    return to_start, more


async def replaced_workflow_ids(db: asyncpg.Pool, bulk_send_id: UUID, dossier_ids: list[UUID]) -> list[str]:
    """The runs of the failed mandates this batch replaced among these dossiers (for every attempt
    of a page alike): each still waits to be deleted, and is told it was."""
    rows = await db.fetch(
        "SELECT m.workflow_id FROM mandates m WHERE m.dossier_id = ANY($1::uuid[])"
        " AND EXISTS (SELECT 1 FROM mandate_events e WHERE e.mandate_id = m.id"
        " AND e.to_status = 'deleted' AND e.cause = $2) ORDER BY m.created_at",
        dossier_ids,
        replaced_by_bulk_send(bulk_send_id),
    )
    return [r["workflow_id"] for r in rows]


async def _reserved_by(db: asyncpg.Pool, bulk_send_id: UUID, dossier_id: UUID) -> Mandate | None:
    row = await db.fetchrow(
        "SELECT * FROM mandates WHERE dossier_id = $1 AND bulk_send_id = $2 AND status <> 'deleted'",
        dossier_id,
        bulk_send_id,
    )
    return Mandate.from_row(row) if row else None


async def _set_sending(conn: Any, bulk_send_id: UUID, position: int, mandate_id: UUID) -> None:
    await conn.execute(
        "UPDATE bulk_send_items SET outcome = 'sending', mandate_id = $3, updated_at = now()"
        " WHERE bulk_send_id = $1 AND position = $2 AND outcome = 'queued'",
        bulk_send_id,
        position,
        mandate_id,
    )


class _Taken(Exception):
    """The item is no longer queued: its mandate, if it has one (to start again: starting a started
    run is refused, and logged), else None (settled without one)."""

    def __init__(self, mandate: Mandate | None) -> None:
        self.mandate = mandate


async def _lock_queued_item(conn: asyncpg.Connection, bulk_send_id: UUID, item: BulkItem) -> None:
    """Lock the item's dossier, then the item (in the order every writer takes them); raise _Taken
    if it is no longer queued. Two attempts of a page can overlap (one outlived its retry: Temporal
    gave up on it, the database still answers it): whichever comes second finds the item the other
    reserved, and starts its mandate too (starting a started run is a no-op), or finds it settled."""
    await lock_dossier(conn, item.dossier_id)
    row = await conn.fetchrow(
        "SELECT outcome, mandate_id FROM bulk_send_items"
        " WHERE bulk_send_id = $1 AND position = $2 FOR UPDATE",
        bulk_send_id,
        item.position,
    )
    if row["mandate_id"] is not None:
        raise _Taken(
            Mandate.from_row(await conn.fetchrow("SELECT * FROM mandates WHERE id = $1", row["mandate_id"]))
        )
    if row["outcome"] != "queued":
        raise _Taken(None)


async def _reserve_item(
    db: asyncpg.Pool, bulk: BulkSend, item: BulkItem, *, at: datetime, issued_on: date
) -> Mandate | None:
    """Reserve the item's mandate and mark the item, in one transaction; the mandate another attempt
    reserved for it, or None if it was settled."""
    try:
        async with transaction(db) as conn:
            await _lock_queued_item(conn, bulk.id, item)
            mandate = await reserve_mandate(
                conn,
                bulk.firm_id,
                item.dossier_id,
                issued_on=issued_on,
                bulk_send_id=bulk.id,
                replace_failed_at=at,
            )
            await _set_sending(conn, bulk.id, item.position, mandate.id)
    except _Taken as taken:
        return taken.mandate
    return mandate


# A mandate `m` whose PDF was generated: its workflow runs (it rendered it).
_RENDERED = "EXISTS (SELECT 1 FROM mandate_documents d WHERE d.mandate_id = m.id AND d.kind = 'generated')"


async def _adopt_draft(db: asyncpg.Pool, bulk: BulkSend, item: BulkItem) -> Mandate | None:
    """The firm's own draft for the dossier, once generated (so its workflow runs and waits to be
    sent), now this batch's: sent as the firm previewed it, number included. The item says so in
    the same transaction, so that the draft's deletion, whenever it comes, settles the item."""
    try:
        async with transaction(db) as conn:
            await _lock_queued_item(conn, bulk.id, item)
            row = await conn.fetchrow(
                "UPDATE mandates m SET bulk_send_id = $1, updated_at = now()"
                " WHERE m.dossier_id = $2 AND m.firm_id = $3 AND m.status = 'draft'"
                f" AND m.bulk_send_id IS NULL AND {_RENDERED} RETURNING m.*",
                bulk.id,
                item.dossier_id,
                bulk.firm_id,
            )
            if row is not None:
                await _set_sending(conn, bulk.id, item.position, row["id"])
    except _Taken as taken:
        return taken.mandate
    return Mandate.from_row(row) if row else None


async def _has_unrendered_draft(db: asyncpg.Pool, firm_id: UUID, dossier_id: UUID) -> bool:
    """A draft asked for within the starting grace, not rendered yet: its run may not be there yet."""
    return bool(
        await db.fetchval(
            "SELECT 1 FROM mandates m WHERE m.dossier_id = $1 AND m.firm_id = $2 AND m.status = 'draft'"
            f" AND m.created_at > now() - $3::interval AND NOT {_RENDERED}",
            dossier_id,
            firm_id,
            STARTING_GRACE,
        )
    )


async def finish(db: asyncpg.Pool, bulk_send_id: UUID, at: datetime) -> None:
    await db.execute(
        "UPDATE bulk_sends SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL", bulk_send_id, at
    )
