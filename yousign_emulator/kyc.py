"""Identity-document verification: pending on upload, done after `kyc_delay_seconds` with a planned outcome.

Outcomes: image unreadable -> inconclusive IDDV_1103; smaller than 320x256 -> IDDV_1104;
over 20 Mpx -> IDDV_1105 (codes from YouSign's status page); then demo names:
last_name containing FAILED -> failed IDDV_1706, INCONCLUSIVE -> inconclusive IDDV_1200; otherwise verified.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from . import serializers
from .errors import ApiError, invalid
from .models import IdentityDocument, new_id
from .timeutil import now_utc
from .uploads import IdentityUpload

if TYPE_CHECKING:
    from .state import EmulatorState

FINAL_STATUSES = ("verified", "failed", "inconclusive")
MIN_SIZE = (320, 256)
MAX_PIXELS = 20_000_000


def _image_problem(content_type: str, content: bytes) -> str | None:
    if content_type == "application/pdf":
        return None  # nothing sensible to measure on a PDF
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
    except Exception:
        return "IDDV_1103"
    if max(width, height) < MIN_SIZE[0] or min(width, height) < MIN_SIZE[1]:  # either orientation
        return "IDDV_1104"
    if width * height > MAX_PIXELS:
        return "IDDV_1105"
    return None


def plan_outcome(upload: IdentityUpload) -> tuple[str, list[str]]:
    codes = [code for code in (_image_problem(t, c) for t, c in upload.files) if code]
    if codes:
        return "inconclusive", sorted(set(codes))
    last_name = (upload.last_name or "").upper()
    if "FAILED" in last_name:
        return "failed", ["IDDV_1706"]
    if "INCONCLUSIVE" in last_name:
        return "inconclusive", ["IDDV_1200"]
    return "verified", []


def create(state: EmulatorState, upload: IdentityUpload) -> IdentityDocument:
    status, codes = plan_outcome(upload)
    created = now_utc()
    verification = IdentityDocument(
        id=new_id(),
        workspace_id=upload.workspace_id or state.settings.workspace_id,
        created_at=created,
        updated_at=created,
        first_name=upload.first_name,
        last_name=upload.last_name,
        type=upload.type,
        planned_status=status,
        planned_codes=codes,
    )
    state.identity_documents[verification.id] = verification
    _schedule_completion(state, verification, state.settings.kyc_delay_seconds)
    return verification


def resume_pending(state: EmulatorState) -> None:
    """After a restart, finish the verifications still pending: their timers died with the last process."""
    for verification in state.identity_documents.values():
        if verification.status == "pending":
            elapsed = (now_utc() - verification.created_at).total_seconds()
            _schedule_completion(state, verification, max(0.0, state.settings.kyc_delay_seconds - elapsed))


def _schedule_completion(state: EmulatorState, verification: IdentityDocument, delay: float) -> None:
    state.schedule(
        f"kyc:{verification.id}",
        delay,
        lambda: complete(state, verification, verification.planned_status, verification.planned_codes),
    )


def complete(state: EmulatorState, verification: IdentityDocument, status: str, codes: list[str]) -> None:
    """Finish a verification (automatically or from the control API) and send the webhook once."""
    if status not in FINAL_STATUSES:
        raise invalid("status", f"Value must be in {list(FINAL_STATUSES)}.")
    if verification.status != "pending":
        raise ApiError(
            400,
            "identity_document.status_not_compatible",
            f'The verification "{verification.id}" is already {verification.status}.',
        )
    state.cancel_scheduled(f"kyc:{verification.id}")
    verification.status = status
    verification.status_codes = codes
    verification.updated_at = now_utc()
    state.emit(
        "verification.identity_document.done",
        {"identity_document": serializers.identity_document_webhook(verification)},
    )
