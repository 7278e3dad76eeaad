"""`python -m starter.api`: serve the API on API_PORT."""

import asyncio
import sys

import uvicorn

from config.logging import configure_logging
from config.settings import Settings, settings_or_exit
from config.startup import startup_problem
from config.temporal import connect_temporal
from starter.api.app import create_app
from store.database import connect_database


async def serve(settings: Settings) -> None:
    """Connect first (a missing database or Temporal is said plainly), then serve until a signal."""
    dsn = settings.database_url.get_secret_value() if settings.database_url else None
    db = await connect_database(dsn, settings.data_dir)
    try:
        app = create_app(settings, db=db, temporal=await connect_temporal(settings))
        config = uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level.lower()
        )
        await uvicorn.Server(config).serve()
    finally:
        await db.close()


def main() -> None:
    settings = settings_or_exit("api")
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except Exception as error:
        if (problem := startup_problem(error, settings)) is None:
            raise
        print(f"api: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
