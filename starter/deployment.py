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
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
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

# A live worker polls each of its queues at least this often (a long poll lasts about a minute).
LIVE_POLLER = timedelta(seconds=90)

# What a restricted API key may not ask (Temporal Cloud): then the ownership is not checked.
_NOT_ALLOWED = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED)


async def installation_id(db: asyncpg.Pool) -> UUID:
    return await db.fetchval("SELECT id FROM installation")


def served_elsewhere(namespace: str, theirs: UUID, ours: UUID) -> Unreachable:
    return Unreachable(
        f"Temporal namespace {namespace!r} (TEMPORAL_NAMESPACE) is served by another database"
        f" (installation {theirs}; DATABASE_URL here is installation {ours}): give each deployment its"
        " own namespace"
    )


async def installation_in(client: Client, action: object) -> UUID | None:
    """The installation a schedule's action names: None without the mark (set by an earlier version)."""
    memo = action.memo if isinstance(action, ScheduleActionStartWorkflow) else None
    if not memo or INSTALLATION_MEMO not in memo:
        return None
    try:
        [value] = await client.data_converter.decode([memo[INSTALLATION_MEMO]], [str])
        return UUID(value)
    except Exception:  # sealed with keys this process lacks, or not ours at all
        raise Unreachable(
            f"Temporal namespace {client.namespace!r} (TEMPORAL_NAMESPACE) was set up with encryption"
            " keys this process does not have (PAYLOAD_ENCRYPTION_KEYS), or by another program:"
            " another deployment's namespace, or a key missing here"
        ) from None


async def refuse_foreign_namespace(client: Client, db: asyncpg.Pool) -> UUID:
    """This database's installation id, unless the namespace is another database's: Unreachable.
    (Workers check again as they update the schedule, the API every LIVE_POLLER.)"""
    ours = await installation_id(db)
    try:
        claim = await foreign_claim(client, ours)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # a new namespace: the first worker marks it
            return ours
        if error.status in _NOT_ALLOWED:
            log.warning("namespace ownership not checked", error=error.message)
            return ours
        raise Unreachable(
            f"Temporal refused to describe the namespace's schedule (TEMPORAL_ADDRESS,"
            f" TEMPORAL_NAMESPACE): {error.status.name}: {error.message}"
        ) from None
    if claim is not None:
        raise claim
    return ours


async def foreign_claim(client: Client, ours: UUID) -> Unreachable | None:
    """What to stop with if the namespace's schedule names another database (RPCError if Temporal
    cannot say)."""
    described = await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).describe()
    return await claim_of_action(client, described.schedule.action, ours)


async def claim_of_action(client: Client, action: object, ours: UUID) -> Unreachable | None:
    """What to stop with if the schedule's action names another database than ours, or cannot be
    read with this process's keys; None when it names ours or none."""
    try:
        theirs = await installation_in(client, action)
    except Unreachable as problem:
        return problem
    return served_elsewhere(client.namespace, theirs, ours) if theirs not in (None, ours) else None


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


async def yousign_poll_marks(client: Client, task_queue: str) -> dict[str, datetime]:
    """When each worker last polled the YouSign queue, by Temporal's clock ({} if it cannot say)."""
    try:
        return {p.identity: _polled_at(p) for p in await _pollers(client, task_queue)}
    except RPCError as error:
        log.warning("YouSign queue's pollers not read", error=error.message)
        return {}


async def warn_if_yousign_cap_differs(
    client: Client, task_queue: str, rate: float, marks_at_start: dict[str, datetime]
) -> None:
    """The server applies the cap the latest poller sent to every worker of the queue: a worker with
    other YouSign limits makes the whole deployment send too fast (429s) or too slowly. Asked a while
    after start, so that every live worker has polled again: only workers that polled since the marks
    taken at start count (not the ones a rollout replaced), whatever the clocks of the machines."""
    try:
        pollers = await _pollers(client, task_queue)
    except RPCError as error:
        log.warning("YouSign queue's cap not compared", error=error.message)
        return
    never = datetime.min.replace(tzinfo=UTC)
    live = [p for p in pollers if _polled_at(p) > marks_at_start.get(p.identity, never)]
    others = sorted({round(p.rate_per_second, 6) for p in live} - {round(rate, 6)})
    if others:
        log.error(
            "other workers cap the YouSign queue differently: the last to poll sets the cap for all;"
            " give every worker (and the API) the same YOUSIGN_REQUESTS_PER_MINUTE and"
            " YOUSIGN_REQUESTS_PER_HOUR, and replace them all at once to change them",
            task_queue=task_queue,
            this_worker_per_second=round(rate, 6),
            others_per_second=others,
        )


async def _pollers(client: Client, task_queue: str) -> list[PollerInfo]:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return list(described.pollers)


def _polled_at(poller: PollerInfo) -> datetime:
    return poller.last_access_time.ToDatetime(tzinfo=UTC)
