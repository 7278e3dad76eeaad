"""What a process says when a service it needs is not there at start-up: one line naming the
variable to check, instead of a traceback (a supervisor restarts it; the line says why)."""

from __future__ import annotations

import asyncpg

from config.settings import Settings


def startup_problem(error: BaseException, settings: Settings) -> str | None:
    """The line for a missing dependency; None for anything else (a bug keeps its traceback)."""
    if isinstance(error, RuntimeError) and "Failed client connect" in str(error):
        reason = str(error).removeprefix("Failed client connect: ").splitlines()[0][:200]
        return f"cannot reach Temporal at {settings.temporal_address} (TEMPORAL_ADDRESS): {reason}"
    if isinstance(error, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError):
        where = "DATABASE_URL" if settings.database_url else "the embedded server, DATA_DIR"
        # The error names host, port or user at most: never the URL, which may hold the password.
        return f"cannot use PostgreSQL ({where}): {type(error).__name__}: {error}"
    return None
