"""The worker: every workflow and activity, configured from the environment. `python worker.py`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bulk import BulkActivities
from activities.kyc import KycActivities
from activities.mandates import MandateActivities
from activities.reconciliation import ReconciliationActivities
from activities.yousign import YouSignActivities
from clients.mailer import Mailer
from clients.yousign import YouSignClient
from config.logging import configure_logging
from config.settings import Settings, settings_or_exit
from config.startup import Unreachable
from domain.pacing import MAX_CALLS_PER_ACTIVITY, activity_rate_limit
from starter.deployment import (
    LIVE_POLLER,
    connect_deployment,
    warn_if_yousign_cap_differs,
    yousign_poll_marks,
)
from starter.workflows import ensure_reconciliation_schedule
from workflows.bulk import BulkSendWorkflow
from workflows.kyc import KycWorkflow
from workflows.mandate import MandateWorkflow
from workflows.reconciliation import YouSignReconciliationWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS: Sequence[type] = (MandateWorkflow, KycWorkflow, BulkSendWorkflow, YouSignReconciliationWorkflow)

# The sandbox re-imports every module a workflow uses for each new run unless passed through; ours
# hold no mutable module state, and re-importing them was a sixth of the worker's CPU in a bulk
# send. Passed through, our workflow modules are not checked by the sandbox here: the replay tests,
# which run them in the full sandbox, are what check them.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows", "activities", "domain", "clients", "config", "documents", "store"
    )
)

# A bulk page starts a hundred children at once: pollers that scale with the backlog take their tasks
# as they come (bench b: median workflow-task queue time 0.68 s -> 0.13 s) instead of five at a time.
AUTOSCALED_POLLERS = {
    "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
    "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
}


# How long running activities get to finish when the worker is told to stop (docker-compose's
# stop_grace_period is longer).
SHUTDOWN_GRACE = timedelta(seconds=10)


def worker_configs(
    client: Client, settings: Settings, db: asyncpg.Pool, yousign: YouSignClient, mailer: Mailer | None
) -> list[dict[str, Any]]:
    """Two workers: workflows and local I/O on the main queue; YouSign calls on their own, rate-capped one."""
    mandate_activities = MandateActivities(db, mailer)
    yousign_activities = YouSignActivities(db, yousign)
    kyc_activities = KycActivities(db)
    bulk_activities = BulkActivities(db)
    reconciliation_activities = ReconciliationActivities(db, client, settings)
    shutdown = SHUTDOWN_GRACE
    main = {
        "task_queue": settings.temporal_task_queue,
        "workflows": list(WORKFLOWS),
        "workflow_runner": WORKFLOW_RUNNER,
        "activities": [
            mandate_activities.generate_mandate_document,
            mandate_activities.record_mandate_status,
            mandate_activities.record_unconfirmed_reminder,
            mandate_activities.recorded_signature_request,
            mandate_activities.send_signed_confirmation,
            kyc_activities.record_kyc_outcome,
            bulk_activities.reserve_bulk_page,
            bulk_activities.finish_bulk_send,
            reconciliation_activities.notify_settled_mandates,
            reconciliation_activities.resume_stalled_identity_checks,
            reconciliation_activities.resume_unstarted_bulk_sends,
        ],
        "graceful_shutdown_timeout": shutdown,
        **AUTOSCALED_POLLERS,
    }
    yousign_queue = {
        "task_queue": settings.yousign_task_queue,
        "activities": [
            yousign_activities.send_mandate_for_signature,
            yousign_activities.list_settled_signature_requests,
            yousign_activities.cancel_signature_request,
            yousign_activities.withdraw_signature_request,
            yousign_activities.get_signature_request_state,
            yousign_activities.send_signature_reminder,
            yousign_activities.archive_signed_mandate,
            yousign_activities.submit_identity_document,
            yousign_activities.get_identity_verification,
        ],
        # Enforced by the server across all workers on the queue, so N workers share one budget.
        "max_task_queue_activities_per_second": yousign_activity_rate(settings),
        "graceful_shutdown_timeout": shutdown,
        **AUTOSCALED_POLLERS,
    }
    return [main, yousign_queue]


def yousign_activity_rate(settings: Settings) -> float:
    return activity_rate_limit(
        settings.yousign_requests_per_minute, settings.yousign_requests_per_hour, MAX_CALLS_PER_ACTIVITY
    )


def build_workers(
    client: Client, settings: Settings, db: asyncpg.Pool, yousign: YouSignClient, mailer: Mailer | None
) -> list[Worker]:
    return [Worker(client, **config) for config in worker_configs(client, settings, db, yousign, mailer)]


def yousign_client(settings: Settings, runtime: Runtime | None = None) -> YouSignClient:
    if not settings.yousign_base_url:
        raise SystemExit("YOUSIGN_BASE_URL is not set (the embedded stack sets it to its emulator)")
    observe = None
    if runtime is not None:
        # Exported with the SDK's metrics: calls by method and outcome (status code, timeout...).
        calls = runtime.metric_meter.create_counter("yousign_requests_total", "YouSign API calls by outcome")

        def observe(method: str, outcome: str) -> None:
            calls.add(1, {"method": method, "outcome": outcome})

    return YouSignClient(
        settings.yousign_base_url,
        settings.yousign_api_key.get_secret_value(),
        timeout=settings.yousign_timeout_seconds,
        observe=observe,
    )


def metrics_runtime(settings: Settings) -> Runtime | None:
    """The SDK's Prometheus endpoint (workflow/activity metrics, plus ours) when an address is set."""
    address = settings.worker_metrics_address
    if not address:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as error:  # the SDK's words for a port in use or an address not of this host
        reason = str(error).removeprefix("Failed starting Prometheus exporter: ")
        raise Unreachable(
            f"cannot serve metrics on {address} (WORKER_METRICS_ADDRESS): {reason}; give each worker"
            " of a host its own port, or set it empty to serve none"
        ) from None


def mailer_for(settings: Settings) -> Mailer | None:
    return Mailer(settings.smtp_url.get_secret_value(), settings.mail_from) if settings.smtp_url else None


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    runtime = metrics_runtime(settings)
    db, client, installation = await connect_deployment(settings, runtime)
    try:
        async with yousign_client(settings, runtime) as yousign:
            workers = build_workers(client, settings, db, yousign, mailer_for(settings))
            marks = await yousign_poll_marks(client, settings.yousign_task_queue)
            schedule = partial(ensure_reconciliation_schedule, client, settings, installation)
            checks = _checks_once_polled(
                client, settings, marks, await _set_schedule(schedule), schedule, stop
            )
            later = asyncio.ensure_future(checks)
            try:
                await asyncio.gather(*(w.run() for w in workers), _stop_on(stop, workers))
            finally:
                later.cancel()
            if later.done() and not later.cancelled() and (problem := later.result()):
                raise problem  # the namespace turned out to be another database's: say so, exit 1
    finally:
        await db.close()


async def _set_schedule(schedule: Callable[[], Awaitable[None]]) -> bool:
    """Whether the sweep's schedule is set; Temporal failing to, it is tried again later."""
    try:
        await schedule()
        return True
    except RPCError as error:
        # Mandates still run (webhooks, expiry checks); only the safety-net sweep may be missing.
        log.warning("reconciliation schedule not set", error=str(error))
        return False


async def _checks_once_polled(
    client: Client,
    settings: Settings,
    marks: dict[str, datetime],
    schedule_set: bool,
    schedule: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
) -> Unreachable | None:
    """A while after start, once every live worker has polled again: whether they cap the YouSign
    queue otherwise, and the sweep's schedule again if Temporal did not take it at start. A schedule
    found to be another database's by then stops this worker (returned, then raised)."""
    await asyncio.sleep(LIVE_POLLER.total_seconds())
    try:
        rate = yousign_activity_rate(settings)
        await warn_if_yousign_cap_differs(client, settings.yousign_task_queue, rate, marks)
        if not schedule_set:
            await _set_schedule(schedule)
    except Unreachable as problem:
        stop.set()
        return problem
    except Exception:  # a bug here is said now, not at the shutdown
        log.exception("start-up checks failed")
    return None


async def _stop_on(stop: asyncio.Event, workers: list[Worker]) -> None:
    await stop.wait()
    log.info("worker shutting down")
    await asyncio.gather(*(w.shutdown() for w in workers))


def main() -> None:
    settings = settings_or_exit("worker")
    configure_logging(settings.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "worker starting", task_queue=settings.temporal_task_queue, yousign=settings.yousign_task_queue
        )
        await run_worker(settings, stop)

    try:
        asyncio.run(serve())
    except Unreachable as problem:
        print(f"worker: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
