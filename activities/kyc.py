"""Recording the outcome of the firm representative's identity verification."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.models import KycOutcomeInput
from domain.yousign_outcomes import explain_kyc_codes
from store import kyc


class KycActivities:
    def __init__(self, db: asyncpg.Pool) -> None:
        self._db = db

    @activity.defn
    async def record_kyc_outcome(self, outcome: KycOutcomeInput) -> None:
        await kyc.complete_submission(
            self._db,
            outcome.submission_id,
            status=outcome.status,
            reason=outcome.reason or explain_kyc_codes(outcome.status, outcome.status_codes),
            status_codes=outcome.status_codes,
            completed_at=outcome.at,
        )
