"""The embedded PostgreSQL of `make run` (pgserver), owned by the supervisor and stopped last."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any


def forget_dead_handles(pgdata: Path, *, keep_own: bool = False) -> None:
    """pgserver stops PostgreSQL when its last user exits; users killed without cleanup stay listed.
    Our own entry goes too before we register (a pid reused from an earlier run), not once we have."""
    import psutil  # a dependency of pgserver
    from pgserver.postgres_server import PostgresServer

    path = pgdata / ".handle_pids.json"
    # pgserver's lock across processes: a user registering meanwhile is not dropped from the list.
    with PostgresServer._lock, contextlib.suppress(OSError, ValueError):
        pids = json.loads(path.read_text())
        ours = [os.getpid()] if keep_own else []
        alive = [pid for pid in pids if pid in ours or (pid != os.getpid() and psutil.pid_exists(pid))]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_for_exit(pid: int, interval: float = 1.0) -> None:
    """Until process `pid` has ended: PostgreSQL runs as pgserver's daemon, not as our child, so
    its end is seen by looking, not by waiting on it."""
    while _running(pid):  # noqa: ASYNC110 (nothing to wait on: another process's end is polled)
        await asyncio.sleep(interval)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.log = pgdata / "log"
        self._server: Any = None
        self._starting: asyncio.Future[str] | None = None

    async def start(self) -> str:
        """Start (or reuse) the server in a thread; its URL (a Unix socket in `pgdata`)."""
        self._starting = asyncio.get_running_loop().run_in_executor(None, self._start)
        return await asyncio.shield(self._starting)  # a cancelled start-up still lets it finish

    def _start(self) -> str:
        import pgserver  # only the embedded set-up needs it

        self.pgdata.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(self.pgdata)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        return None

    async def stop(self) -> bool | None:
        """Stop it (pg_ctl stop), waiting for a start in progress first: whether it was still
        running; None if it never started."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        if self._server is None:
            return None
        server, self._server = self._server, None
        pid = self.postmaster_pid()
        running = pid is not None and _running(pid)  # not if it died (the stack says so apart)
        # A user killed since the start (a CLI run on the same data, say) would keep it running.
        await asyncio.to_thread(forget_dead_handles, self.pgdata, keep_own=True)
        await asyncio.to_thread(server.cleanup)
        return running
