"""Does a reminder overtake a bulk send's backlog on the rate-capped YouSign queue?

    python bench/queue_priority.py [--backlog N] [--rate R]

On a fresh Temporal dev server (as `make run` starts it), a queue capped at R activities/s gets N
queued activities at the bulk sends' priority, then one at the reminders' priority, each scheduled
by a workflow the way the mandate workflow does (workflows/policies.py). Prints when the urgent one
started: its place among the dispatched activities and its wait, next to the same run with the
urgent one at the bulk priority. Nothing of the project runs but its priorities: this measures the
Temporal server's task-queue priority, which the project relies on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import _stack  # noqa: E402
from _stack import say  # noqa: E402
from temporalio import activity, workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.common import Priority  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from workflows.policies import YOUSIGN_BULK, YOUSIGN_INTERACTIVE  # noqa: E402

STARTED: dict[str, float] = {}


@activity.defn
async def call_yousign(name: str) -> None:
    STARTED[name] = time.monotonic()


@workflow.defn
class Schedules:
    @workflow.run
    async def run(self, args: tuple[str, int, int, str]) -> None:
        prefix, count, priority_key, task_queue = args
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    call_yousign,
                    f"{prefix}-{i}",
                    task_queue=task_queue,
                    start_to_close_timeout=timedelta(seconds=30),
                    priority=Priority(priority_key=priority_key),
                )
                for i in range(count)
            )
        )


async def one_run(
    client: Client, backlog: int, rate: float, urgent_key: int, bulk_key: int
) -> tuple[int, float]:
    STARTED.clear()
    capped = f"yousign-{uuid.uuid4().hex[:8]}"
    runner = UnsandboxedWorkflowRunner()  # the workflow lives in this script, not in the project
    async with Worker(client, task_queue="schedules", workflows=[Schedules], workflow_runner=runner):
        await client.start_workflow(
            Schedules.run, ("bulk", backlog, bulk_key, capped), id=f"bulk-{capped}", task_queue="schedules"
        )
        async with Worker(
            client, task_queue=capped, activities=[call_yousign], max_task_queue_activities_per_second=rate
        ):
            await asyncio.sleep(3 / rate)  # the backlog is being worked through at the cap
            asked = time.monotonic()
            urgent = await client.start_workflow(
                Schedules.run,
                ("urgent", 1, urgent_key, capped),
                id=f"urgent-{capped}",
                task_queue="schedules",
            )
            await urgent.result()
    order = sorted(STARTED, key=STARTED.get)
    return order.index("urgent-0") + 1, STARTED["urgent-0"] - asked


async def main(args: argparse.Namespace) -> None:
    bulk_key = YOUSIGN_BULK["priority"].priority_key
    urgent_key = YOUSIGN_INTERACTIVE["priority"].priority_key
    with tempfile.TemporaryDirectory(prefix="priority-bench-") as work:
        server = _stack.start_temporal(Path(work), None)
        try:
            client = await _stack.wait_for_temporal(server, lambda: Client.connect(server.address))
            say(f"queue capped at {args.rate}/s, {args.backlog} activities queued at priority {bulk_key}")
            for label, key in (("reminder priority", urgent_key), ("same priority", bulk_key)):
                place, wait = await one_run(client, args.backlog, args.rate, key, bulk_key)
                say(
                    f"urgent activity at {label} {key}: started {place} of {args.backlog + 1},"
                    f" {wait:.1f}s after it was scheduled"
                )
        finally:
            server.child.stop()
    print(f"command: python bench/queue_priority.py --backlog {args.backlog} --rate {args.rate}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=30)
    parser.add_argument("--rate", type=float, default=2.0)
    asyncio.run(main(parser.parse_args()))
