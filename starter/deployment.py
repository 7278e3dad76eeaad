"""What every process of one deployment must share, checked at start where a mismatch would do harm.

A Temporal namespace is served by one deployment: one database, one set of YouSign limits. A worker
pointed at another database takes the namespace's tasks and fails real mandates as "not found"; one
with other YouSign limits resets the cap the server applies to every worker of the queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from config.startup import Unreachable, connect_services
from workflows.reconciliation import RECONCILIATION_SCHEDULE_ID

log = structlog.get_logger(__name__)

# The reconciliation schedule's action carries the installation id of the database that set it.
INSTALLATION_MEMO = "installation"

# A poller that polled this recently is a live worker (a long poll lasts about a minute).
LIVE_POLLER = timedelta(seconds=90)


async def installation_id(db: asyncpg.Pool) -> UUID:
    return await db.fetchval("SELECT id FROM installation")


async def claimed_installation(client: Client) -> UUID | None:
    """The installation the namespace's reconciliation schedule was set by: None without schedule
    (a new namespace) or without the mark (set by an earlier version)."""
    try:
        described = await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    action = described.schedule.action
    memo = action.memo if isinstance(action, ScheduleActionStartWorkflow) else None
    if not memo or INSTALLATION_MEMO not in memo:
        return None
    try:
        [value] = await client.data_converter.decode([memo[INSTALLATION_MEMO]], [str])
    except Exception:  # sealed with keys this process lacks
        raise Unreachable(
            f"Temporal namespace {client.namespace!r} (TEMPORAL_NAMESPACE) was set up with encryption"
            " keys this process does not have (PAYLOAD_ENCRYPTION_KEYS): another deployment's"
            " namespace, or a key missing here"
        ) from None
    return UUID(value)


async def refuse_foreign_namespace(client: Client, db: asyncpg.Pool) -> UUID:
    """This database's installation id, unless the namespace is another database's: Unreachable."""
    ours = await installation_id(db)
    try:
        theirs = await claimed_installation(client)
    except RPCError as error:  # not allowed to read schedules (a restricted key): not checked
        log.warning("namespace ownership not checked", error=error.message)
        return ours
    if theirs is not None and theirs != ours:
        raise Unreachable(
            f"Temporal namespace {client.namespace!r} (TEMPORAL_NAMESPACE) is served by another"
            f" database (installation {theirs}; DATABASE_URL here is installation {ours}): give each"
            " deployment its own namespace"
        )
    return ours


async def connect_deployment(
    settings: Settings, runtime: Runtime | None = None
) -> tuple[asyncpg.Pool, Client, UUID]:
    """connect_services, then this database's installation id once the namespace is known to be its."""
    db, client = await connect_services(settings, runtime)
    try:
        return db, client, await refuse_foreign_namespace(client, db)
    except BaseException:
        await db.close()
        raise


async def live_pollers(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> list:
    """The pollers Temporal saw on the queue in the last minute and a half."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
        )
    )
    since = datetime.now(UTC) - LIVE_POLLER
    return [p for p in described.pollers if p.last_access_time.ToDatetime(tzinfo=UTC) >= since]


async def warn_if_yousign_cap_differs(client: Client, task_queue: str, rate: float) -> None:
    """The server applies the cap the latest poller sent to every worker of the queue: a worker with
    other YouSign limits makes the whole deployment send too fast (429s) or too slowly."""
    try:
        pollers = await live_pollers(client, task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    except RPCError as error:
        log.warning("YouSign queue's cap not compared", error=error.message)
        return
    others = sorted({round(p.rate_per_second, 6) for p in pollers} - {round(rate, 6)})
    if others:
        log.error(
            "other workers cap the YouSign queue differently: the last to poll sets the cap for all;"
            " give every worker (and the API) the same YOUSIGN_REQUESTS_PER_MINUTE and"
            " YOUSIGN_REQUESTS_PER_HOUR, and replace them all at once to change them",
            task_queue=task_queue,
            this_worker_per_second=round(rate, 6),
            others_per_second=others,
        )
