"""The firm: its Plateforme Agréée and its verified legal representative."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from temporalio.service import RPCError

from domain.errors import RuleViolation, TooLarge, Unavailable
from domain.identity_documents import MAX_UPLOAD_BYTES, TWO_SIDED, check_identity_file
from domain.models import LegalRepresentative
from starter.api.deps import AppSettings, Db, FirmId, Temporal
from starter.api.problems import problem_responses
from starter.api.schemas import DesignatedPlatformIn, FirmOut
from starter.kyc_runs import kyc_run_is_for, start_kyc_workflow
from store import firms, kyc
from store.records import KycFile

# 415: JSON for the platform, multipart/form-data for the representative (the identity document).
WRONG_BODY_TYPE = "A body of another type than the operation takes (JSON, or multipart/form-data)"
router = APIRouter(
    prefix="/v1/firm",
    tags=["firm"],
    responses=problem_responses(400, 401, 408, 413, 415, 422, 503, meanings={415: WRONG_BODY_TYPE}),
)


DocumentType = Literal["identity_card", "passport", "residence_permit", "driving_licence"]


@router.get("", response_model=FirmOut)
async def get_firm(db: Db, firm_id: FirmId) -> FirmOut:
    """The firm (the API key's): its platform and its legal representative's verification."""
    return FirmOut.of(await firms.get_firm(db, firm_id), await kyc.current_submission(db, firm_id))


@router.put("/platform", response_model=FirmOut)
async def set_platform(platform: DesignatedPlatformIn, db: Db, firm_id: FirmId) -> FirmOut:
    """The Plateforme Agréée the firm designates for its clients, printed on every mandate generated
    after; a draft (or a bulk send's mandate waiting its turn) made before fails when sent: delete it
    and generate it again."""
    firm = await firms.set_platform(db, firm_id, platform)
    return FirmOut.of(firm, await kyc.current_submission(db, firm_id))


# At most two photos decoded at once, whatever the number of uploads (each may take up to ~560 MB:
# a progressive CMYK JPEG of 59 megapixels; an RGB photo of that size about 270 MB).
_IMAGE_WORK = ThreadPoolExecutor(max_workers=2, thread_name_prefix="identity-image")


async def _read_checked(field: str, upload: UploadFile) -> KycFile:
    # The parser has spooled the part to disk; its size is known before reading it into memory.
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise TooLarge(field, "the file is larger than 20 MB")
    content = await upload.read()
    # Decoding and re-encoding a photo takes a core for a while: off the event loop.
    checked = await asyncio.get_running_loop().run_in_executor(
        _IMAGE_WORK, check_identity_file, field, content
    )
    return KycFile(side=field, content_type=checked.content_type, content=checked.content)


@router.put("/legal-representative", status_code=202, response_model=FirmOut)
async def submit_legal_representative(
    db: Db,
    temporal: Temporal,
    settings: AppSettings,
    firm_id: FirmId,
    first_name: Annotated[str, Form(description="First name(s), exactly as on the document")],
    last_name: Annotated[str, Form(description="Last name, exactly as on the document")],
    email: Annotated[str, Form(description="E-mail address")],
    document_type: Annotated[DocumentType, Form(description="The kind of identity document")],
    front: Annotated[UploadFile, File(description="JPEG, PNG or PDF, at most 20 MB, images >= 320 x 256 px")],
    birth_name: Annotated[str | None, Form(description="Birth name, when it differs")] = None,
    back: Annotated[UploadFile | None, File(description="Required for an identity card")] = None,
) -> FirmOut:
    """The firm's legal representative and an identity document (identity card front and back,
    passport, residence permit or driving licence), verified through YouSign; `verification.status`
    follows. A new submission replaces the previous one: until it is verified, no mandate can be
    generated or sent. Everything is checked before anything is stored."""
    try:
        representative = LegalRepresentative(
            first_name=first_name, last_name=last_name, birth_name=birth_name or None, email=email
        )
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None
    if document_type in TWO_SIDED and back is None:
        raise RuleViolation("back", "the back of an identity card is required")
    files = [await _read_checked("front", front)]
    if back is not None:
        files.append(await _read_checked("back", back))
    async with kyc.one_submission_at_a_time(db, firm_id) as conn:
        # The older pending one is superseded only once this one's verification has started: until
        # then it is still the firm's (its own verification runs on).
        submission = await kyc.create_submission(
            conn, firm_id, representative, document_type, files, supersede=False
        )
        try:
            await start_kyc_workflow(temporal, settings, submission)
        except RPCError as error:
            try:
                started = await kyc_run_is_for(temporal, submission)  # only its answer was lost?
            except RPCError:
                # Temporal cannot tell (slow, or down): the submission is kept, as a late start of
                # its run expects; if its start was lost, the reconciliation sweep starts it.
                raise Unavailable(
                    f"the verification may not have started ({error.message}): it starts later if not"
                    " (submitting the document again is safe)"
                ) from error
            if not started:
                # Nothing will verify it: the firm's submissions stay as they were, and no identity
                # file is kept.
                await kyc.discard_submission(conn, submission.id)
                raise Unavailable(
                    f"the verification could not be started ({error.message}): submit the document again"
                ) from error
        await kyc.supersede_older(conn, submission)
    return FirmOut.of(await firms.get_firm(db, firm_id), submission)
