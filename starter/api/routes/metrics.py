"""Prometheus metrics of the gateway: mandates by status, bulk progress, webhook handling."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from domain.pacing import MAX_CALLS_PER_ACTIVITY, stall_patience
from domain.status import MandateStatus
from starter.api.deps import AppSettings, Db

REGISTRY = CollectorRegistry()
MANDATES = Gauge("mandates", "Mandates by status, all firms", ["status"], registry=REGISTRY)
BULK_ITEMS = Gauge(
    "bulk_send_items", "Items of bulk sends not done yet, by outcome", ["outcome"], registry=REGISTRY
)
# A batch is done once none of its items is queued or being sent (as the API says): its run ends
# when it has started its last page, earlier.
BATCHES_IN_PROGRESS = (
    "SELECT DISTINCT bulk_send_id FROM bulk_send_items WHERE outcome IN ('queued', 'sending')"
)
BULK_ITEM_COUNTS = (
    f"SELECT outcome, count(*) AS n FROM bulk_send_items WHERE bulk_send_id IN ({BATCHES_IN_PROGRESS})"
    " GROUP BY outcome"
)
BULK_IDLE = Gauge(
    "bulk_send_idle_seconds",
    "Seconds since bulk sends last moved (any item of a batch in progress, or any send of the"
    " service) while some are queued or being sent; 0 when none is",
    registry=REGISTRY,
)
BULK_STALL_AFTER = Gauge(
    "bulk_send_stall_after_seconds",
    "How long bulk sends may stand still at the configured YouSign limits before it is a stall (the"
    " API's stalled_since): alert on bulk_send_idle_seconds > bulk_send_stall_after_seconds",
    registry=REGISTRY,
)
# As a batch's stalled_since reads it, for every batch in progress at once.
BULK_IDLE_SINCE = (
    f"WITH busy AS ({BATCHES_IN_PROGRESS})"
    " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM busy) THEN 0 ELSE extract(epoch FROM now() - greatest("
    "(SELECT max(updated_at) FROM bulk_send_items WHERE bulk_send_id IN (SELECT bulk_send_id FROM busy)),"
    " (SELECT max(sent_at) FROM mandates))) END"
)
WEBHOOKS = Counter("yousign_webhooks", "YouSign webhook deliveries by result", ["result"], registry=REGISTRY)
WEBHOOK_SECONDS = Histogram(
    "yousign_webhook_seconds",
    "Time to verify, record and hand on a webhook (YouSign waits one second)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)

router = APIRouter(tags=["operations"])

# The counts scan two tables: at most once per interval, however often /metrics is asked for.
COUNTS_INTERVAL = 10.0
MANDATE_COUNTS = "SELECT status, count(*) AS n FROM mandates GROUP BY status"
_counted_at = -COUNTS_INTERVAL


@router.get("/metrics", response_class=Response)
async def metrics(db: Db, settings: AppSettings) -> Response:
    global _counted_at
    if time.monotonic() - _counted_at >= COUNTS_INTERVAL:
        _counted_at = time.monotonic()
        await _count(db, (settings.yousign_requests_per_minute, settings.yousign_requests_per_hour))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _count(db, limits: tuple[int, int]) -> None:
    # Read from the database at scrape time: the truth is there, whichever process wrote it.
    counts = {row["status"]: row["n"] for row in await db.fetch(MANDATE_COUNTS)}
    for status in MandateStatus:  # a status no mandate has any more reads 0, not its last count
        MANDATES.labels(status.value).set(counts.get(status.value, 0))
    BULK_ITEMS.clear()
    for row in await db.fetch(BULK_ITEM_COUNTS):
        BULK_ITEMS.labels(row["outcome"]).set(row["n"])
    BULK_IDLE.set(max(0.0, float(await db.fetchval(BULK_IDLE_SINCE) or 0)))
    BULK_STALL_AFTER.set(stall_patience(*limits, MAX_CALLS_PER_ACTIVITY).total_seconds())
