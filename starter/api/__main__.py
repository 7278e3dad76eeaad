"""`python -m starter.api`: serve the API on API_PORT."""

import uvicorn

from config.logging import configure_logging
from config.settings import settings_or_exit
from starter.api.app import create_app


def main() -> None:
    settings = settings_or_exit("api")
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
