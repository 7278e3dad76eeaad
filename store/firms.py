"""Firms, their Plateforme Agréée and their API keys (stored as SHA-256 hashes only)."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

import asyncpg

from domain.errors import Conflict
from domain.models import Platform
from store.records import Firm

KEY_PREFIX = "mk_"


def hash_api_key(key: str) -> bytes:
    # Keys are 256-bit random strings, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).digest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class SirenTaken(Conflict):
    """Firms with this SIREN exist already."""

    def __init__(self, firms: list[Firm]) -> None:
        super().__init__(f"a firm with SIREN {firms[0].siren} exists already")
        self.firms = firms


async def create_firm(
    db: asyncpg.Pool | asyncpg.Connection,
    *,
    name: str,
    siren: str,
    address: str | None = None,
    unique_siren: bool = False,
) -> Firm:
    """With `unique_siren`, refused (SirenTaken) if a firm has this SIREN: two creations of one
    SIREN at the same instant take turns, so the second sees the first."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await create_firm(conn, name=name, siren=siren, address=address, unique_siren=unique_siren)
    conn = db
    async with conn.transaction():  # (a savepoint within the caller's transaction)
        if unique_siren:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"firm siren {siren}")
            if existing := await firms_with_siren(conn, siren):
                raise SirenTaken(existing)
        row = await conn.fetchrow(
            "INSERT INTO firms (name, siren, address) VALUES ($1, $2, $3) RETURNING *", name, siren, address
        )
    return Firm.from_row(row)


async def firms_with_siren(db: asyncpg.Pool | asyncpg.Connection, siren: str) -> list[Firm]:
    return [
        Firm.from_row(r)
        for r in await db.fetch("SELECT * FROM firms WHERE siren = $1 ORDER BY created_at", siren)
    ]


async def get_firm(db: asyncpg.Pool, firm_id: UUID) -> Firm | None:
    row = await db.fetchrow("SELECT * FROM firms WHERE id = $1", firm_id)
    return Firm.from_row(row) if row else None


async def list_firms(db: asyncpg.Pool) -> list[Firm]:
    return [Firm.from_row(r) for r in await db.fetch("SELECT * FROM firms ORDER BY created_at")]


async def set_platform(db: asyncpg.Pool, firm_id: UUID, platform: Platform) -> Firm:
    row = await db.fetchrow(
        "UPDATE firms SET platform_name = $2, platform_siren = $3, platform_matricule = $4"
        " WHERE id = $1 RETURNING *",
        firm_id,
        platform.name,
        platform.siren,
        platform.matricule,
    )
    return Firm.from_row(row)


async def issue_api_key(db: asyncpg.Pool, firm_id: UUID, key: str | None = None) -> str:
    """Store the hash of a new key (or of `key`, for a configured demo key) and return the key."""
    key = key or new_api_key()
    await db.execute(
        "INSERT INTO api_keys (firm_id, key_hash, key_prefix) VALUES ($1, $2, $3)"
        " ON CONFLICT (key_hash) DO NOTHING",
        firm_id,
        hash_api_key(key),
        key[:8],
    )
    return key


async def firm_id_for_api_key(db: asyncpg.Pool, key: str) -> UUID | None:
    return await db.fetchval(
        "SELECT firm_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_api_key(key)
    )


async def revoke_api_keys(db: asyncpg.Pool, firm_id: UUID, key_prefix: str | None = None) -> int:
    result = await db.execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE firm_id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR key_prefix = $2)",
        firm_id,
        key_prefix,
    )
    return int(result.split()[-1])
