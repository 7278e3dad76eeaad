"""De-duplication of YouSign webhook deliveries by their event id."""

import asyncpg


async def seen_webhook_event(db: asyncpg.Pool, event_id: str) -> bool:
    return bool(await db.fetchval("SELECT true FROM webhook_events WHERE event_id = $1", event_id))


async def record_webhook_event(
    db: asyncpg.Pool, event_id: str, event_name: str, subject_id: str | None
) -> bool:
    """Record an event handed on (redeliveries are then duplicates): True the first time."""
    inserted = await db.fetchval(
        "INSERT INTO webhook_events (event_id, event_name, subject_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event_id,
        event_name,
        subject_id,
    )
    return bool(inserted)
