"""Bulk sends: generate and send the mandates of many dossiers at once, with progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import RuleViolation, Unavailable
from domain.pacing import MAX_CALLS_PER_ACTIVITY, remaining_time, sends_until_done, stalled_since
from starter.api.deps import AppSettings, Db, FirmId, Temporal
from starter.api.problems import located, problem_responses
from starter.api.schemas import NEXT_CURSOR, PositionCursor
from starter.bulk_runs import start_bulk_send_workflow
from store import bulk
from workflows.bulk import bulk_workflow_id

router = APIRouter(
    prefix="/v1/bulk-sends",
    tags=["bulk"],
    responses=problem_responses(400, 401, 404, 408, 413, 415, 422, 503),
)


class BulkSendCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dossier_ids: list[UUID] = Field(
        min_length=1,
        max_length=10_000,
        description="The dossiers whose mandate to generate and send (repeats count once)",
    )


class BulkSendCreated(BaseModel):
    id: UUID = Field(description="The bulk send's id: its progress is at GET /v1/bulk-sends/{id}")
    total: int = Field(description="How many dossiers it takes (each once)")


class BulkItemOut(BaseModel):
    dossier_id: UUID = Field(description="The dossier")
    name: str | None = Field(description="The dossier's name (null for an id that is none of the firm's)")
    siret: str | None = Field(description="The dossier's SIRET, if it has one")
    outcome: str = Field(
        description="`queued`, `sending` (its mandate is on its way to YouSign), `sent` (YouSign has it;"
        " what the client does next shows on the dossier), `skipped` (not eligible: `reason` says why) or"
        " `failed` (`reason` says why)"
    )
    reason: str | None = Field(description="Why it was skipped or failed")
    mandate_id: UUID | None = Field(description="The mandate it sends (the firm's draft, if it had one)")


class BulkSendSummaryOut(BaseModel):
    id: UUID = Field(description="The bulk send's id")
    total: int = Field(description="How many dossiers it takes")
    sent: int = Field(description="Mandates sent to their client")
    skipped: int = Field(description="Dossiers not eligible (missing information, mandate already sent...)")
    failed: int = Field(description="Mandates that could not be generated or sent")
    in_progress: int = Field(description="Dossiers still queued or being sent")
    done: bool = Field(description="True once every dossier is sent, skipped or failed")
    created_at: datetime = Field(description="When it was requested")
    finished_at: datetime | None = Field(
        description="When its run had started every mandate (the last ones may still be sending)"
    )

    @classmethod
    def of(cls, batch: bulk.BulkSend, counts: dict[str, int], **more: Any) -> Any:
        in_progress = bulk.in_progress(counts)
        return cls(
            id=batch.id,
            total=batch.total,
            sent=counts["sent"],
            skipped=counts["skipped"],
            failed=counts["failed"],
            in_progress=in_progress,
            done=batch.finished_at is not None and in_progress == 0,
            created_at=batch.created_at,
            finished_at=batch.finished_at,
            **more,
        )


class BulkSendPage(BaseModel):
    items: list[BulkSendSummaryOut] = Field(description="The firm's bulk sends, newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class BulkSendOut(BulkSendSummaryOut):
    eta: datetime | None = Field(
        description="When the last dossier is expected sent, at YouSign's pace; null once done, and while"
        " `stalled_since` is set"
    )
    stalled_since: datetime | None = Field(
        description="Set while nothing has moved, in this batch or any send of the service, for longer"
        " than pacing explains (YouSign out of reach or making us wait, or the service stopped): the"
        " time of the last move. The batch goes on by itself after; sends that YouSign leaves"
        " unanswered for a week fail."
    )
    items: list[BulkItemOut] = Field(description="Its dossiers' outcomes, in the order requested")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


@router.post(
    "", status_code=202, response_model=BulkSendCreated, responses=located(202, "Where its progress is")
)
async def create_bulk_send(
    body: BulkSendCreate,
    db: Db,
    temporal: Temporal,
    settings: AppSettings,
    firm_id: FirmId,
    response: Response,
) -> BulkSendCreated:
    """Generate and send the mandate of every selected dossier that is ready, paced under YouSign's
    limits (a large batch takes hours); the others are skipped with their reason. Follow it at the
    `Location` given. Sending the same dossiers again is safe: none is sent twice."""
    batch = await bulk.create_bulk_send(db, firm_id, body.dossier_ids)
    response.headers["Location"] = f"/v1/bulk-sends/{batch.id}"  # where its progress is
    if not bulk.in_progress(await bulk.outcome_counts(db, batch.id)):
        # None of them is the firm's dossier: each is skipped already, no run is needed.
        await bulk.finish(db, batch.id, datetime.now(UTC))
        return BulkSendCreated(id=batch.id, total=batch.total)
    try:
        await start_bulk_send_workflow(temporal, settings, batch)
    except RPCError as error:
        handle = temporal.get_workflow_handle(bulk_workflow_id(batch.id))
        try:
            await handle.describe()
        except RPCError as check:
            if check.status != RPCStatusCode.NOT_FOUND:
                # Temporal cannot tell (slow, or down): the batch is kept. If its start was lost,
                # the reconciliation sweep starts it; closing it here could race its run.
                raise Unavailable(
                    f"the bulk send {batch.id} may not have started ({error.message}): GET"
                    f" /v1/bulk-sends/{batch.id} tells; it starts later if not (sending again is safe)"
                ) from error
            # Certainly not started: close it, every dossier skipped with the reason.
            await bulk.skip_all_queued(db, batch.id, "the bulk send could not be started: send again")
            await bulk.finish(db, batch.id, datetime.now(UTC))
            raise Unavailable(f"the bulk send could not be started: {error.message}") from error
        # Only its answer was lost: the batch runs.
    return BulkSendCreated(id=batch.id, total=batch.total)


@router.get("/{bulk_send_id}", response_model=BulkSendOut)
async def get_bulk_send(
    bulk_send_id: UUID,
    db: Db,
    settings: AppSettings,
    firm_id: FirmId,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
    cursor: PositionCursor = None,
) -> BulkSendOut:
    """A bulk send's progress: counted from the database, with each dossier's outcome a page at a
    time, and when it should end."""
    batch = await bulk.get_bulk_send(db, firm_id, bulk_send_id)
    counts = await bulk.outcome_counts(db, batch.id)
    # One more than the page: a cursor only when something follows (a full last page has none).
    page = await bulk.items(db, batch.id, after=-1 if cursor is None else int(cursor), limit=limit + 1)
    more, page = len(page) > limit, page[:limit]
    eta = stalled = None
    if bulk.in_progress(counts):
        limits = (
            settings.yousign_requests_per_minute,
            settings.yousign_requests_per_hour,
            MAX_CALLS_PER_ACTIVITY,
        )
        stalled = stalled_since(*await bulk.last_progress(db, batch.id), *limits)
        if not stalled:  # a time counted from a pace that is not being kept would only move on
            own, others = await bulk.backlogs(db, batch)  # this batch's in_progress among its firm's
            eta = datetime.now(UTC) + timedelta(
                seconds=remaining_time(sends_until_done(own, others), *limits)
            )
    return BulkSendOut.of(
        batch,
        counts,
        eta=eta,
        stalled_since=stalled,
        items=[BulkItemOut.model_validate(i.model_dump()) for i in page],
        next_cursor=str(page[-1].position) if more else None,
    )


@router.get("", response_model=BulkSendPage)
async def list_bulk_sends(
    db: Db,
    firm_id: FirmId,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page")
    ] = None,
) -> BulkSendPage:
    """The firm's bulk sends, newest first, with their counts (a batch whose answer was lost, too)."""
    try:
        page, next_cursor = await bulk.list_bulk_sends(db, firm_id, limit=limit, cursor=cursor)
    except ValueError as error:
        raise RuleViolation("cursor", str(error)) from None
    return BulkSendPage(items=[BulkSendSummaryOut.of(b, b.counts) for b in page], next_cursor=next_cursor)
