"""A bare Temporal workflow of the mandate's shape, the baseline of scenario (b).

`BareChild`: one activity, then wait for a signal with a month-long timer, then one activity.
`BareParent`: starts the children the way `BulkSendWorkflow` does: a page of `start_child_workflow`
with parent close policy ABANDON in one workflow task, then continue-as-new with the next offset.
No database, no PDF, no HTTP: only what Temporal itself costs.

`MANDATE_SHAPED` adds what the mandate asks of Temporal itself, still with empty activities: the
first activity on a second, rate-capped task queue (so no eager start), the mandate's search
attributes at the child's start and its status upserted after the activity, a static summary. Its
rate against the plain one is the most a mandate can reach however cheap its own work.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from config.temporal import BULK_SEND_ID, DOSSIER_ID, FIRM_ID, MANDATE_STATUS

STEP = {"start_to_close_timeout": timedelta(seconds=30)}
MONTH = timedelta(days=30)


@dataclass
class BareShape:
    """The mandate's Temporal features a bare run has: none for the plain baseline."""

    activity_queue: str | None = None  # the first activity there, not on the workflow's queue
    search_attributes: bool = False  # the mandate's four at start, the status upserted after


@dataclass
class BareParentInput:
    prefix: str
    total: int
    page_size: int
    task_queue: str
    next_position: int = 0
    shape: BareShape = field(default_factory=BareShape)


@dataclass
class BareChildInput:
    position: int
    shape: BareShape


def mandate_shaped(queue: str) -> BareShape:
    return BareShape(activity_queue=f"{queue}-capped", search_attributes=True)


def feature_shapes(queue: str) -> dict[str, BareShape]:
    """The mandate's Temporal features one at a time: what each costs of the ceiling."""
    return {
        "the search attributes": BareShape(search_attributes=True),
        "the capped second queue": BareShape(activity_queue=f"{queue}-capped"),
    }


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
    async def run(self, input: BareChildInput) -> int:
        await workflow.execute_activity(bare_step, "first", task_queue=input.shape.activity_queue, **STEP)
        if input.shape.search_attributes:
            workflow.upsert_search_attributes([MANDATE_STATUS.value_set("pending")])
        try:
            await workflow.wait_condition(lambda: self._signalled, timeout=MONTH)
        except TimeoutError:
            pass
        await workflow.execute_activity(bare_step, "second", **STEP)
        return input.position

    @workflow.signal
    def signed(self) -> None:
        self._signalled = True


@workflow.defn
class BareParent:
    @workflow.run
    async def run(self, input: BareParentInput) -> None:
        end = min(input.total, input.next_position + input.page_size)
        shaped = input.shape.search_attributes
        await asyncio.gather(
            *(
                workflow.start_child_workflow(
                    BareChild.run,
                    BareChildInput(position, input.shape),
                    id=f"{input.prefix}-{position}",
                    task_queue=input.task_queue,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=_search_attributes(input.prefix, position) if shaped else None,
                    static_summary=f"Mandate {input.prefix}-{position}" if shaped else None,
                )
                for position in range(input.next_position, end)
            )
        )
        if end < input.total:
            workflow.continue_as_new(replace(input, next_position=end))


def _search_attributes(prefix: str, position: int) -> TypedSearchAttributes:
    ids = [FIRM_ID, DOSSIER_ID, BULK_SEND_ID]
    pairs = [SearchAttributePair(key, f"{prefix}-{position}-{key.name}") for key in ids]
    return TypedSearchAttributes([*pairs, SearchAttributePair(MANDATE_STATUS, "sending")])


async def run_bare_worker(address: str, task_queue: str, progress_file: Path, capped_rate: float) -> None:
    """The baseline's worker process: one Worker with the SDK defaults, like each of the project's,
    and one on the mandate-shaped runs' second queue, capped at `capped_rate` as the project's is."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    worker = Worker(client, task_queue=task_queue, workflows=[BareParent, BareChild], activities=[bare_step])
    capped = Worker(
        client,
        task_queue=mandate_shaped(task_queue).activity_queue,
        activities=[bare_step],
        max_task_queue_activities_per_second=capped_rate,
    )

    async def report() -> None:
        while True:
            tmp = progress_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"first_steps": Progress.first_steps, "at": time.time()}))
            os.replace(tmp, progress_file)
            await asyncio.sleep(0.2)

    reporter = asyncio.ensure_future(report())
    try:
        await asyncio.gather(worker.run(), capped.run())
    finally:
        reporter.cancel()
