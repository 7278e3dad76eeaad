"""`python -m starter.api`: serve the API on API_PORT."""

import asyncio
import socket
import sys
from uuid import UUID

import structlog
import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError

from config.logging import configure_logging
from config.settings import Settings, settings_or_exit
from config.startup import Unreachable
from starter.api.app import create_app
from starter.deployment import LIVE_POLLER, connect_deployment, foreign_claim

log = structlog.get_logger("api")


def listening_socket(settings: Settings) -> socket.socket:
    """The API's socket, bound before anything else so that a port in use is one line naming it."""
    family = socket.AF_INET6 if ":" in settings.api_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds its own
    try:
        sock.bind((settings.api_host, settings.api_port))
        # Ours from here: a second process's bind passes until one of them listens.
        sock.listen(2048)  # uvicorn's backlog
    except OSError as error:
        sock.close()
        raise Unreachable(
            f"cannot listen on {settings.api_host}:{settings.api_port} (API_HOST, API_PORT):"
            f" {error.strerror or error}"
        ) from None
    return sock


async def serve(settings: Settings) -> None:
    """Take the port and connect first (a port in use, a missing database or Temporal is said
    plainly), then serve until a signal; the app's shutdown closes the pool (uvicorn re-raises the
    signal once it has stopped)."""
    sockets = [listening_socket(settings)]
    db, temporal, installation = await connect_deployment(settings)
    if settings.codec_allow_any_client and settings.codec_auth_token is None:
        # Whoever reaches the API can decrypt and encrypt payloads: say it where operators look.
        log.warning(
            "the codec server answers any client (CODEC_ALLOW_ANY_CLIENT, no CODEC_AUTH_TOKEN):"
            " keep the API's port unreachable beyond this machine, or set CODEC_AUTH_TOKEN",
            api_host=settings.api_host,
        )
    app = create_app(settings, db=db, temporal=temporal)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # its records go through ours: JSON, access log without query strings
    )
    server = uvicorn.Server(config)
    watch = asyncio.ensure_future(stop_if_namespace_taken(server, temporal, installation))
    try:
        await server.serve(sockets=sockets)
    finally:
        watch.cancel()
    if watch.done() and not watch.cancelled() and (problem := watch.result()):
        raise problem  # another deployment's workers marked the namespace: say so, exit 1


async def stop_if_namespace_taken(
    server: uvicorn.Server, temporal: Client, installation: UUID, every: float = LIVE_POLLER.total_seconds()
) -> Unreachable | None:
    """An API that started before any worker marked a new namespace is checked again, as long as it
    runs: starting runs in another deployment's namespace would have its workers fail them."""
    while True:
        await asyncio.sleep(every)
        try:
            problem = await foreign_claim(temporal, installation)
        except RPCError:  # no schedule yet, or Temporal does not say: next time
            continue
        if problem is not None:
            log.error(str(problem))
            server.should_exit = True
            return problem


def main() -> None:
    settings = settings_or_exit("api")
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except Unreachable as problem:
        print(f"api: {problem}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # Ctrl-C: the server has stopped, as uvicorn.run would say nothing more
        pass


if __name__ == "__main__":
    main()
