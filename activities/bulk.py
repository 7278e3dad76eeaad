"""Activities of a bulk send: reserving a page of mandates (or skipping with a reason), finishing."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio import activity

from activities.models import BulkPage, BulkPageInput, BulkRef, MandateToStart
from domain.calendar import paris_day
from domain.status import MandateStatus
from store import bulk, kyc


class BulkActivities:
    def __init__(self, db: asyncpg.Pool) -> None:
        self._db = db

    @activity.defn
    async def reserve_bulk_page(self, page: BulkPageInput) -> BulkPage:
        row = await self._db.fetchrow("SELECT firm_id FROM bulk_sends WHERE id = $1", page.bulk_send_id)
        batch = await bulk.get_bulk_send(self._db, row["firm_id"], page.bulk_send_id)
        submission = await kyc.current_submission(self._db, batch.firm_id)
        if submission is None or submission.status != "verified":
            await bulk.skip_all_queued(self._db, batch.id, "the firm's legal representative is not verified")
            return BulkPage(mandates=[], more=False)
        now = datetime.now(UTC)
        mandates, more = await bulk.reserve_page(
            self._db,
            batch,
            start=page.start,
            size=page.size,
            at=now,
            issued_on=paris_day(now),
            on_item=activity.heartbeat,  # a worker lost mid-page is seen in seconds, not minutes
        )
        replaced = await bulk.replaced_workflow_ids(self._db, batch.id, [m.dossier_id for m in mandates])
        return BulkPage(
            mandates=[
                MandateToStart(
                    mandate_id=m.id,
                    number=m.number,
                    firm_id=m.firm_id,
                    dossier_id=m.dossier_id,
                    workflow_id=m.workflow_id,
                    draft=m.status == MandateStatus.DRAFT,
                )
                for m in mandates
            ],
            more=more,
            replaced_workflow_ids=replaced,
        )

    @activity.defn
    async def finish_bulk_send(self, ref: BulkRef) -> None:
        await bulk.finish(self._db, ref.bulk_send_id, datetime.now(UTC))
