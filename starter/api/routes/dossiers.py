"""Dossiers: the firm's client companies, listed from indexed SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from domain.errors import RuleViolation
from domain.models import PlainText
from domain.status import CurrentMandateStatus, DossierStatus, MandateStatus
from starter import mandate_actions
from starter.api.deps import Db, FirmId, Temporal
from starter.api.problems import located, problem_responses
from starter.api.schemas import DossierCreate, DossierOut, DossierPage, DossierPatch
from store import dossiers

router = APIRouter(
    prefix="/v1/dossiers",
    tags=["dossiers"],
    responses=problem_responses(400, 401, 404, 408, 409, 413, 415, 422, 503),
)


@router.post("", status_code=201, response_model=DossierOut, responses=located(201, "The new dossier"))
async def create_dossier(body: DossierCreate, db: Db, firm_id: FirmId, response: Response) -> DossierOut:
    """A client company. Its SIRET and legal representative may come later: until both are there,
    it is `missing_information`. A SIRET already in another of the firm's dossiers is a 409."""
    dossier = await dossiers.create_dossier(
        db,
        firm_id,
        name=body.name,
        siret=body.siret,
        legal_representative=body.legal_representative,
        external_ref=body.external_ref,
        previous_platform=body.previous_platform,
    )
    response.headers["Location"] = f"/v1/dossiers/{dossier.id}"
    return DossierOut.of(dossier, None)


@router.get("", response_model=DossierPage)
async def list_dossiers(
    db: Db,
    firm_id: FirmId,
    status: Annotated[list[DossierStatus] | None, Query(description="Repeat to filter on several")] = None,
    search: Annotated[
        PlainText | None, Query(max_length=200, description="Part of the name, or the start of the SIRET")
    ] = None,
    mandate_status: Annotated[
        list[CurrentMandateStatus] | None,
        Query(
            description="Only dossiers whose current mandate is in this status (`failed`, say); repeat"
            " for several (a deleted mandate is no dossier's current one)"
        ),
    ] = None,
    archived: Annotated[
        bool, Query(description="`true` lists the archived dossiers (clients who left) instead")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page")
    ] = None,
) -> DossierPage:
    """The firm's dossiers, oldest first, a page at a time, with their status and current mandate
    (archived ones only with `archived=true`)."""
    try:
        page, next_cursor = await dossiers.list_dossiers(
            db,
            firm_id,
            statuses=status,
            search=search or None,
            mandate_statuses=[MandateStatus(s) for s in mandate_status or []],
            archived=archived,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as error:
        raise RuleViolation("cursor", str(error)) from None
    return DossierPage(items=[DossierOut.of(d, m) for d, m in page], next_cursor=next_cursor)


@router.get("/status-counts", response_model=dict[DossierStatus, int])
async def status_counts(db: Db, firm_id: FirmId) -> dict[DossierStatus, int]:
    """How many of the firm's dossiers are in each status (every status listed, 0 included; archived
    dossiers are not counted)."""
    return await dossiers.status_counts(db, firm_id)


@router.get("/{dossier_id}", response_model=DossierOut)
async def get_dossier(dossier_id: UUID, db: Db, firm_id: FirmId) -> DossierOut:
    """One dossier, with its status and current mandate."""
    return DossierOut.of(*await dossiers.get_dossier(db, firm_id, dossier_id))


@router.delete("/{dossier_id}", status_code=204, response_class=Response)
async def delete_dossier(dossier_id: UUID, db: Db, firm_id: FirmId) -> Response:
    """Delete a dossier created by mistake, or a client gone before any mandate. One that ever had a
    mandate is kept (409), with its mandates' history: archive it instead."""
    await dossiers.delete_dossier(db, firm_id, dossier_id)
    return Response(status_code=204)


@router.post("/{dossier_id}/archive", response_model=DossierOut)
async def archive_dossier(dossier_id: UUID, db: Db, firm_id: FirmId) -> DossierOut:
    """A client who left: the dossier leaves the list and the status counts, and is kept with its
    mandates (a signed one stays readable). Until restored, it cannot be changed, and no mandate is
    generated or sent in bulk for it. Refused (409) while its mandate is a draft, being sent, awaiting
    signature, refused, expired or failed: delete that mandate first (or wait for the signature).
    Archiving an archived dossier changes nothing."""
    await dossiers.archive_dossier(db, firm_id, dossier_id)
    return DossierOut.of(*await dossiers.get_dossier(db, firm_id, dossier_id))


@router.post("/{dossier_id}/restore", response_model=DossierOut)
async def restore_dossier(dossier_id: UUID, db: Db, firm_id: FirmId) -> DossierOut:
    """A client who came back: the archived dossier is on the list again, as it was."""
    await dossiers.restore_dossier(db, firm_id, dossier_id)
    return DossierOut.of(*await dossiers.get_dossier(db, firm_id, dossier_id))


@router.patch("/{dossier_id}", response_model=DossierOut)
async def patch_dossier(
    dossier_id: UUID, body: DossierPatch, db: Db, temporal: Temporal, firm_id: FirmId
) -> DossierOut:
    """Change the dossier (not an archived one: restore it first); a draft mandate showing the old
    data is discarded (generate a new one).
    While its mandate is being sent, awaits signature or is signed, what the mandate prints cannot
    change (409); the firm's reference can."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    if changes.get("name", "") is None:
        raise RuleViolation("name", "the name cannot be removed")
    if changes.get("siret"):  # refused before a draft showing the old one is discarded for it
        await dossiers.refuse_duplicate_siret(db, firm_id, changes["siret"], dossier_id)
    printed = {field: value for field, value in changes.items() if field != "external_ref"}
    await mandate_actions.discard_draft_outdated_by(
        db, temporal, firm_id, dossier_id, printed, now=datetime.now(UTC)
    )
    await dossiers.update_dossier(db, firm_id, dossier_id, **changes)
    return DossierOut.of(*await dossiers.get_dossier(db, firm_id, dossier_id))
