"""A bare Temporal workflow of the mandate's shape, the baseline of scenario (b).

`BareChild`: one activity, then wait for a signal with a month-long timer, then one activity.
`BareParent`: starts the children the way `BulkSendWorkflow` does: a page of `start_child_workflow`
with parent close policy ABANDON in one workflow task, then continue-as-new with the next offset.
No database, no PDF, no HTTP: only what Temporal itself costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

STEP = {"start_to_close_timeout": timedelta(seconds=30)}
MONTH = timedelta(days=30)


@dataclass
class BareParentInput:
    prefix: str
    total: int
    page_size: int
    task_queue: str
    next_position: int = 0


class Progress:
    """First steps completed in this worker process, written to a file the benchmark polls."""

    first_steps = 0


@activity.defn
async def bare_step(step: str) -> str:
    if step == "first":
        Progress.first_steps += 1
    return step


@workflow.defn
class BareChild:
    def __init__(self) -> None:
        self._signalled = False

    @workflow.run
    async def run(self, position: int) -> int:
        await workflow.execute_activity(bare_step, "first", **STEP)
        try:
            await workflow.wait_condition(lambda: self._signalled, timeout=MONTH)
        except TimeoutError:
            pass
        await workflow.execute_activity(bare_step, "second", **STEP)
        return position

    @workflow.signal
    def signed(self) -> None:
        self._signalled = True


@workflow.defn
class BareParent:
    @workflow.run
    async def run(self, input: BareParentInput) -> None:
        end = min(input.total, input.next_position + input.page_size)
        await asyncio.gather(
            *(
                workflow.start_child_workflow(
                    BareChild.run,
                    position,
                    id=f"{input.prefix}-{position}",
                    task_queue=input.task_queue,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
                for position in range(input.next_position, end)
            )
        )
        if end < input.total:
            workflow.continue_as_new(replace(input, next_position=end))


async def run_bare_worker(address: str, task_queue: str, progress_file: Path) -> None:
    """The baseline's worker process: one Worker with the SDK defaults, like each of the project's."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    worker = Worker(client, task_queue=task_queue, workflows=[BareParent, BareChild], activities=[bare_step])

    async def report() -> None:
        while True:
            tmp = progress_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"first_steps": Progress.first_steps, "at": time.time()}))
            os.replace(tmp, progress_file)
            await asyncio.sleep(0.2)

    reporter = asyncio.ensure_future(report())
    try:
        await worker.run()
    finally:
        reporter.cancel()
