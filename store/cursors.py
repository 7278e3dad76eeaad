"""Page cursors of the lists in creation order: the last row's (created_at, id), opaque to clients."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import UUID


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        # In UTC here, as PostgreSQL would: a forged offset at the edge of time fails now, not there.
        return datetime.fromisoformat(created_at).astimezone(UTC), UUID(row_id)
    except (ValueError, OverflowError) as error:
        raise ValueError("cursor is not one this API returned") from error
