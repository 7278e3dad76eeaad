"""A dossier's current mandate: generate, read, preview, send, remind, delete."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from domain.errors import Conflict
from domain.status import MandateStatus
from starter import mandate_actions
from starter.api.deps import AppSettings, Db, FirmId, Temporal
from starter.api.problems import located, problem_responses
from starter.api.schemas import MandateHistory, MandateOut, PositionCursor, ReminderAcceptedOut
from store import dossiers, mandates

router = APIRouter(
    prefix="/v1/dossiers/{dossier_id}/mandate",
    tags=["mandate"],
    responses=problem_responses(400, 401, 404, 408, 409, 413, 422, 429, 503),
)


# How long a preview asked for while the draft is being generated waits for its PDF.
GENERATION_WAIT_SECONDS = 5.0


async def _out(db, mandate) -> MandateOut:
    # Refused or expired, or so and then deleted (in the history): the reason kept with it.
    reasons = {
        field: await mandates.outcome_reason(db, mandate.id, status)
        for field, status, at in (
            ("refusal_reason", MandateStatus.REFUSED, mandate.refused_at),
            ("expiry_reason", MandateStatus.EXPIRED, mandate.expired_at),
        )
        if at is not None
    }
    return MandateOut.of(mandate, await mandates.reminders(db, mandate.id), **reasons)


history_router = APIRouter(
    prefix="/v1/dossiers/{dossier_id}/mandates",
    tags=["mandate"],
    responses=problem_responses(401, 404, 422, 503),
)


@history_router.get("", response_model=MandateHistory)
async def mandate_history(
    dossier_id: UUID,
    db: Db,
    firm_id: FirmId,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    cursor: PositionCursor = None,
) -> MandateHistory:
    """The dossier's mandates over time: why an earlier one was refused stays readable after it was
    deleted to generate a new one."""
    await dossiers.get_dossier(db, firm_id, dossier_id)  # another firm's: 404
    before = int(cursor) if cursor else None
    page = await mandates.history(db, dossier_id, before_seq=before, limit=limit + 1)
    more, page = len(page) > limit, page[:limit]
    return MandateHistory(
        items=[await _out(db, m) for m in page], next_cursor=str(page[-1].seq) if more else None
    )


@router.post("", status_code=201, response_model=MandateOut, responses=located(201, "The dossier's mandate"))
async def generate_mandate(
    dossier_id: UUID, db: Db, temporal: Temporal, settings: AppSettings, firm_id: FirmId, response: Response
) -> MandateOut:
    """Generate the dossier's mandate as a draft to preview (GET .../document), then send. The
    dossier needs its SIRET and representative, the firm its platform and a verified legal
    representative. Delete a refused or expired mandate first; a draft (send or delete it) or a
    failed mandate YouSign had (delete it) is a 409; one that failed before YouSign had it is replaced."""
    mandate = await mandate_actions.generate(
        db, temporal, settings, firm_id, dossier_id, now=datetime.now(UTC)
    )
    response.headers["Location"] = f"/v1/dossiers/{dossier_id}/mandate"
    return await _out(db, mandate)


@router.get("", response_model=MandateOut)
async def get_mandate(dossier_id: UUID, db: Db, firm_id: FirmId) -> MandateOut:
    """The dossier's current mandate (404 when it has none)."""
    return await _out(db, await mandate_actions.current_mandate(db, firm_id, dossier_id))


@router.get(
    "/document",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The mandate PDF (signed once signed)"}
    },
)
async def get_document(dossier_id: UUID, db: Db, temporal: Temporal, firm_id: FirmId) -> Response:
    """The mandate PDF: the draft to preview, the one sent, or once signed the signed copy."""
    mandate = await mandate_actions.current_mandate(db, firm_id, dossier_id)
    signed = await mandates.get_document(db, mandate.id, "signed")
    pdf = signed or await mandates.get_document(db, mandate.id, "generated")
    waited = 0.0
    while pdf is None and mandate.status == MandateStatus.DRAFT and waited < GENERATION_WAIT_SECONDS:
        # Asked right after generating: the PDF takes a moment; answer with it rather than a 409.
        await asyncio.sleep(0.1)
        waited += 0.1
        mandate = await mandates.get_mandate(db, mandate.id)
        pdf = await mandates.get_document(db, mandate.id, "generated")
    if pdf is None and mandate.status == MandateStatus.FAILED:
        reason = f" ({mandate.failure_reason})" if mandate.failure_reason else ""
        made = f"the mandate failed before its document was made{reason}"
        raise Conflict(f"{made}; delete it and generate a new one")
    if pdf is None and await mandate_actions.run_is_gone(temporal, mandate, datetime.now(UTC)):
        raise Conflict(
            "the mandate's workflow is not running, so its document will not be made:"
            " delete it and generate a new one"
        )
    if pdf is None:
        raise Conflict("the mandate document is being generated; try again in a moment")
    filename = f"mandat-{mandate.number}{'-signe' if signed else ''}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


@router.post("/send", status_code=202, response_model=MandateOut)
async def send_mandate(dossier_id: UUID, db: Db, temporal: Temporal, firm_id: FirmId) -> MandateOut:
    """Send the draft, as previewed, for e-signature: YouSign e-mails the client a link to sign or
    decline. Answers once it is `sending`; it turns `pending` when YouSign has it. A draft numbered
    for the firm's former Plateforme Agréée is refused (409: delete it, generate a new one)."""
    return await _out(db, await mandate_actions.send(db, temporal, firm_id, dossier_id))


@router.post("/reminders", status_code=202, response_model=ReminderAcceptedOut)
async def remind(dossier_id: UUID, db: Db, temporal: Temporal, firm_id: FirmId) -> ReminderAcceptedOut:
    """Have YouSign e-mail the client again: one reminder a day per mandate (Paris time), else a 429
    saying from when; only for a `pending` mandate. When YouSign did not confirm it (it may have
    e-mailed the client), a 503 says so, and from when the next one is allowed: the day is spent."""
    accepted = await mandate_actions.remind(db, temporal, firm_id, dossier_id)
    return ReminderAcceptedOut.model_validate(accepted.model_dump())


@router.delete("", status_code=204, response_class=Response)
async def delete_mandate(dossier_id: UUID, db: Db, temporal: Temporal, firm_id: FirmId) -> Response:
    """Delete a draft, refused, expired or failed mandate, so that a new one can be generated (its
    history is kept). A sending, pending or signed mandate cannot be deleted (409), except one a
    bulk send reserved and never started because its run was stopped."""
    await mandate_actions.delete(db, temporal, firm_id, dossier_id, now=datetime.now(UTC))
    return Response(status_code=204)
