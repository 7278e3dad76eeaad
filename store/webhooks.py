"""De-duplication of YouSign webhook deliveries by their event id."""

import asyncpg


async def record_webhook_event(
    db: asyncpg.Pool, event_id: str, event_name: str, subject_id: str | None
) -> bool:
    """True the first time an event id is seen, False for a redelivery."""
    inserted = await db.fetchval(
        "INSERT INTO webhook_events (event_id, event_name, subject_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event_id,
        event_name,
        subject_id,
    )
    return bool(inserted)


async def forget_webhook_event(db: asyncpg.Pool, event_id: str) -> None:
    """Let a redelivery through again when handing the event on failed (YouSign will retry)."""
    await db.execute("DELETE FROM webhook_events WHERE event_id = $1", event_id)
